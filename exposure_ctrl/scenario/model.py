"""The scenario model: parameters, states, the fear hierarchy, targets and timing.

A scenario has K adjustable parameters. Each has an ordered list of *levels* in order of rising
fear (the designer's prior) and an intensity prior per level in 0..1. A *state* gives every
parameter a level; internally a state is a tuple of K level indices ("positions"). The state's
intensity is the weighted mean of its levels' priors (0..1).

The policy's action space is ``Discrete(1 + 2K)`` (DESIGN.md): action 0 holds; action
``1 + 2k`` moves parameter k one level up (more fear), ``2 + 2k`` one level down. Moves past the
ends are impossible and masked.

Models are frozen and strict (unknown keys are errors). Cross-field rules (every state names every
parameter with a legal value, the hierarchy rises, the window lies below the ceiling, timings fit
together) are in :func:`consistency_problems`, run by the model itself and by the YAML loader,
which adds file, line and column to each problem.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "Level",
    "State",
    "OrdinalParameter",
    "CategoricalParameter",
    "ContinuousParameter",
    "Parameter",
    "HierarchyStep",
    "Band",
    "Targets",
    "Timing",
    "Safety",
    "Scenario",
    "Problem",
    "consistency_problems",
    "did_you_mean",
    "HOLD",
]

Level = Union[str, float]
"""A parameter value: a string for ordinal and categorical parameters, a number for continuous."""

State = Mapping[str, Level]
"""A complete scene: parameter id → value."""

HOLD = 0
"""The action that changes nothing."""

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", min_length=1, max_length=64)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonEmptyText = Annotated[str, Field(min_length=1)]


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or a list of the options."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(repr(str(o)) for o in list(options)[:12])
    more = ", …" if len(options) > 12 else ""
    return f" (expected one of {shown}{more})"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- parameters ------------------------------------------------------------------------------


class _ParameterBase(_Strict):
    id: Identifier = Field(description="Identifier used in states, e.g. `size`.")
    title: str | None = Field(default=None, description="Human-readable name.")
    description: str | None = None
    role: Literal["stimulus", "soothing"] = Field(
        default="stimulus",
        description="`stimulus`: part of the feared situation; `soothing`: meant to calm "
        "(e.g. music). Levels are ordered by rising fear either way.",
    )
    weight: float = Field(
        default=1.0, gt=0.0, le=10.0, description="Weight of this parameter in the intensity."
    )
    unity_binding: NonEmptyText = Field(
        description="Name the Unity scene binds this parameter to, e.g. `Spider.Size`."
    )

    # Filled in by subclasses.
    @property
    def levels(self) -> tuple[Level, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def intensities(self) -> tuple[float, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def index_of(self, value: Any) -> int:
        """Position of ``value`` among the levels; ``ValueError`` with a suggestion if illegal."""
        raise NotImplementedError  # pragma: no cover

    def label(self, index: int) -> str:
        """Human-readable text of a level."""
        value = self.levels[index]
        return value if isinstance(value, str) else f"{value:g}"


class _DiscreteParameter(_ParameterBase):
    values: tuple[Identifier, ...] = Field(
        min_length=2, description="Values in order of rising fear (the designer's prior)."
    )
    intensity: tuple[Fraction, ...] = Field(
        description="Designer's prior of how fear-provoking each value is (0..1), one per value, "
        "non-decreasing."
    )

    @field_validator("values")
    @classmethod
    def _unique(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(values)) != len(values):
            dup = sorted({v for v in values if values.count(v) > 1})
            raise ValueError(f"values must be unique; repeated: {', '.join(dup)}")
        return values

    @field_validator("intensity")
    @classmethod
    def _one_per_value_rising(cls, intensity: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        values = info.data.get("values")
        if values is None:  # values themselves are invalid; reported there
            return intensity
        if len(intensity) != len(values):
            raise ValueError(
                f"intensity needs one number per value: {len(values)} values, "
                f"found {len(intensity)} intensities"
            )
        for i in range(1, len(intensity)):
            if intensity[i] < intensity[i - 1]:
                raise ValueError(
                    "values are listed in order of rising fear, so intensity must not fall: "
                    f"{values[i - 1]!r} has {intensity[i - 1]:g} but the next, "
                    f"{values[i]!r}, has {intensity[i]:g}"
                )
        return intensity

    @property
    def levels(self) -> tuple[Level, ...]:
        return tuple(self.values)

    @property
    def intensities(self) -> tuple[float, ...]:
        return tuple(self.intensity)

    def index_of(self, value: Any) -> int:
        if isinstance(value, str) and value in self.values:
            return self.values.index(value)
        raise ValueError(
            f"{value!r} is not a value of parameter {self.id!r}"
            + did_you_mean(str(value), self.values)
        )


class OrdinalParameter(_DiscreteParameter):
    """Values with a natural order (sizes, distances in named steps, audience sizes)."""

    kind: Literal["ordinal"]


class CategoricalParameter(_DiscreteParameter):
    """Values with no natural order (colours, attitudes), listed by the designer's fear prior."""

    kind: Literal["categorical"]


class ContinuousParameter(_ParameterBase):
    """A number on a grid ``min, min+step, …, max``; fear rises with or against the value."""

    kind: Literal["continuous"]
    min: float = Field(description="Smallest value, in `unit`.")
    max: float = Field(description="Largest value, in `unit`.")
    step: float = Field(gt=0.0, description="Grid step; one action moves one step.")
    unit: str | None = Field(default=None, description="Unit of the value, e.g. `m`.")
    fear_rises: Literal["with_value", "against_value"] = Field(
        default="with_value",
        description="`with_value`: larger is more feared (height); `against_value`: smaller is "
        "more feared (distance).",
    )
    intensity: tuple[Fraction, Fraction] = Field(
        default=(0.0, 1.0),
        description="Prior intensity at the least and at the most feared end; linear between.",
    )

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, mx: float, info: ValidationInfo) -> float:
        mn = info.data.get("min")
        if mn is not None and not mx > mn:
            raise ValueError(f"max ({mx:g}) must be greater than min ({mn:g})")
        return mx

    @field_validator("step")
    @classmethod
    def _whole_grid(cls, step: float, info: ValidationInfo) -> float:
        mn, mx = info.data.get("min"), info.data.get("max")
        if mn is None or mx is None:
            return step
        n = (mx - mn) / step
        if abs(n - round(n)) > 1e-6:
            raise ValueError(
                f"(max - min) / step must be a whole number: ({mx:g} - {mn:g}) / {step:g} = {n:.4g}"
            )
        if round(n) + 1 > 1000:
            raise ValueError(f"the grid has {round(n) + 1} points; at most 1000 are allowed")
        return step

    @field_validator("intensity")
    @classmethod
    def _ends_rise(cls, intensity: tuple[float, float]) -> tuple[float, float]:
        if intensity[1] < intensity[0]:
            raise ValueError(
                "intensity is [least feared end, most feared end] and must not fall: "
                f"found [{intensity[0]:g}, {intensity[1]:g}]"
            )
        return intensity

    @cached_property
    def grid(self) -> tuple[float, ...]:
        n = int(round((self.max - self.min) / self.step))
        grid = [round(self.min + i * self.step, 10) for i in range(n + 1)]
        return tuple(grid if self.fear_rises == "with_value" else reversed(grid))

    @property
    def levels(self) -> tuple[Level, ...]:
        return self.grid

    @property
    def intensities(self) -> tuple[float, ...]:
        n = len(self.grid)
        lo, hi = self.intensity
        return tuple(lo + (hi - lo) * i / (n - 1) for i in range(n))

    def index_of(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"parameter {self.id!r} is continuous and takes a number from {self.min:g} to "
                f"{self.max:g} in steps of {self.step:g}; found {value!r}"
            )
        for i, g in enumerate(self.grid):
            if math.isclose(float(value), g, rel_tol=0, abs_tol=self.step * 1e-6):
                return i
        near = min(self.grid, key=lambda g: abs(g - float(value)))
        raise ValueError(
            f"{value:g} is not on the grid of parameter {self.id!r} ({self.min:g} to "
            f"{self.max:g} in steps of {self.step:g}); the nearest grid point is {near:g}"
        )

    def label(self, index: int) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.grid[index]:g}{unit}"


Parameter = Annotated[
    Union[OrdinalParameter, CategoricalParameter, ContinuousParameter],
    Field(discriminator="kind"),
]


# --- hierarchy, targets, timing --------------------------------------------------------------


class HierarchyStep(_Strict):
    name: NonEmptyText = Field(description="How a clinician names this step.")
    state: dict[str, Union[str, float]] = Field(description="The complete scene of this step.")
    note: str | None = None


class Band(_Strict):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> "Band":
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def middle(self) -> float:
        return 0.5 * (self.low + self.high)


class Targets(_Strict):
    arousal_window_bpm: Band = Field(
        description="Therapeutic window: heart rate above the patient's resting baseline, bpm."
    )
    ceiling_bpm: float = Field(
        gt=0,
        description="Above-baseline heart rate that, sustained for `ceiling_sustained_s`, makes "
        "the shield step down.",
    )
    ceiling_sustained_s: float = Field(default=5.0, ge=0, le=120)
    hard_max_bpm: float = Field(
        ge=80,
        le=230,
        description="Absolute heart rate at which the shield goes to the safe state at once.",
    )
    suds_window: Band = Field(
        default=Band(low=40, high=70), description="Therapeutic SUDS band (0..100)."
    )

    @field_validator("suds_window")
    @classmethod
    def _suds_range(cls, v: Band) -> Band:
        if v.low < 0 or v.high > 100:
            raise ValueError(f"SUDS runs from 0 to 100; found {v.low:g}..{v.high:g}")
        return v


class Timing(_Strict):
    baseline_s: float = Field(default=180, ge=30, le=1800, description="Resting baseline phase.")
    exposure_max_s: float = Field(default=1800, gt=0, le=4 * 3600)
    recovery_s: float = Field(
        default=300, ge=0, le=3600, description="Longest recovery phase (ends early near baseline)."
    )
    decision_period_s: float = Field(default=5, gt=0, le=120)
    min_dwell_s: float = Field(
        default=30, ge=0, le=1800, description="Least time between two scene changes by policy."
    )


class Safety(_Strict):
    stale_after_s: float = Field(
        default=5.0, gt=0, le=60, description="No clean heart-rate sample this long: blind."
    )
    blind_safe_after_s: float = Field(
        default=20.0, gt=0, le=600, description="Blind (heart rate or headset) this long: safe state."
    )


# --- the scenario ----------------------------------------------------------------------------


class Problem(tuple):
    """A (path, message) pair; ``path`` is a tuple of keys and indices into the document."""

    __slots__ = ()

    def __new__(cls, path: tuple[Any, ...], message: str) -> "Problem":
        return super().__new__(cls, (tuple(path), message))

    @property
    def path(self) -> tuple[Any, ...]:
        return self[0]

    @property
    def message(self) -> str:
        return self[1]


class Scenario(_Strict):
    """A VR exposure scene: what can change, in what order, and the targets."""

    schema_: str | None = Field(
        default=None,
        alias="$schema",
        description="Optional JSON Schema reference for editors; ignored by the controller.",
    )
    id: Identifier = Field(description="Identifier; shipped policies live in policies/<id>/.")
    title: NonEmptyText
    description: NonEmptyText
    indication: NonEmptyText = Field(description="Phobia or indication, e.g. `arachnophobia`.")
    version: int = Field(default=1, ge=1, description="Bump when the scene's meaning changes.")
    parameters: tuple[Parameter, ...] = Field(min_length=1, max_length=32)
    start: dict[str, Union[str, float]] = Field(description="Scene shown when exposure begins.")
    safe_state: dict[str, Union[str, float]] = Field(
        description="Scene the headset shows on abort, panic or fail-safe (also the baseline)."
    )
    hierarchy: tuple[HierarchyStep, ...] = Field(
        min_length=2, description="The fear hierarchy: named complete states of rising intensity."
    )
    targets: Targets
    timing: Timing = Field(default_factory=Timing)
    safety: Safety = Field(default_factory=Safety)

    _source: str | None = PrivateAttr(default=None)
    _sha256: str | None = PrivateAttr(default=None)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Scenario":
        if info.context and info.context.get("defer_consistency"):
            return self
        problems = consistency_problems(self)
        if problems:
            raise ValueError(
                "; ".join(f"{_dotted(p.path)}: {p.message}" for p in problems)
            )
        return self

    # --- identity ------------------------------------------------------------------------

    @property
    def source(self) -> str | None:
        """The file this scenario was loaded from, if any."""
        return self._source

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the file's bytes, if loaded from a file (recorded with every session)."""
        return self._sha256

    def with_timing(self, **updates: float) -> "Scenario":
        """A copy with some ``timing`` fields replaced (e.g. a shorter baseline for a rehearsal),
        keeping the file's identity (source and hash); sessions record the override in their
        settings."""
        unknown = [k for k in updates if k not in Timing.model_fields]
        if unknown:
            raise ValueError(
                f"unknown timing field {unknown[0]!r}" + did_you_mean(unknown[0], list(Timing.model_fields))
            )
        out = self.model_copy(update={"timing": self.timing.model_copy(update=updates)})
        out._source, out._sha256 = self._source, self._sha256
        return out

    # --- parameters ----------------------------------------------------------------------

    @cached_property
    def parameter_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.parameters)

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def n_actions(self) -> int:
        """Size of the action space, ``1 + 2K``."""
        return 1 + 2 * len(self.parameters)

    def parameter(self, pid: str) -> Any:
        for p in self.parameters:
            if p.id == pid:
                return p
        raise KeyError(f"no parameter {pid!r} in scenario {self.id!r}" + did_you_mean(pid, self.parameter_ids))

    @cached_property
    def n_levels(self) -> np.ndarray:
        """Levels per parameter, shape (K,)."""
        return np.array([p.n_levels for p in self.parameters], dtype=np.int64)

    @cached_property
    def _weights(self) -> np.ndarray:
        w = np.array([p.weight for p in self.parameters], dtype=np.float64)
        return w / w.sum()

    @cached_property
    def intensity_table(self) -> np.ndarray:
        """Weighted intensity contribution, shape (K, max levels); padded with NaN."""
        k, m = len(self.parameters), int(self.n_levels.max())
        table = np.full((k, m), np.nan)
        for i, p in enumerate(self.parameters):
            table[i, : p.n_levels] = np.asarray(p.intensities) * self._weights[i]
        return table

    # --- states ↔ positions ----------------------------------------------------------------

    def positions(self, state: State) -> tuple[int, ...]:
        """Level index of every parameter; ``ValueError`` if the state is not complete and legal."""
        missing = [pid for pid in self.parameter_ids if pid not in state]
        extra = [k for k in state if k not in self.parameter_ids]
        if extra:
            raise ValueError(
                f"unknown parameter {extra[0]!r}" + did_you_mean(extra[0], self.parameter_ids)
            )
        if missing:
            raise ValueError(f"the state lacks parameter(s) {', '.join(missing)}")
        return tuple(p.index_of(state[p.id]) for p in self.parameters)

    def state_at(self, positions: Sequence[int]) -> dict[str, Level]:
        """The state with these level indices."""
        self._check_positions(positions)
        return {p.id: p.levels[int(i)] for p, i in zip(self.parameters, positions)}

    def _check_positions(self, positions: Sequence[int]) -> None:
        if len(positions) != len(self.parameters):
            raise ValueError(
                f"expected {len(self.parameters)} positions, found {len(positions)}"
            )
        for p, i in zip(self.parameters, positions):
            if not 0 <= int(i) < p.n_levels:
                raise ValueError(f"position {i} out of range for {p.id!r} (0..{p.n_levels - 1})")

    def describe(self, state: State) -> str:
        """One line, e.g. ``size=medium, distance_m=1.5 m``."""
        pos = self.positions(state)
        return ", ".join(f"{p.id}={p.label(i)}" for p, i in zip(self.parameters, pos))

    # --- intensity and hierarchy ---------------------------------------------------------

    def intensity(self, state: State) -> float:
        """The state's intensity, the weighted mean of its levels' priors (0..1)."""
        return float(self.intensity_of_positions(np.asarray(self.positions(state))))

    def intensity_of_positions(self, positions: np.ndarray) -> np.ndarray:
        """Batched intensity: positions of shape (..., K) → intensities of shape (...)."""
        pos = np.asarray(positions, dtype=np.int64)
        k = np.arange(len(self.parameters))
        return self.intensity_table[k, pos].sum(axis=-1)

    @cached_property
    def hierarchy_positions(self) -> np.ndarray:
        """Positions of every hierarchy step, shape (n_steps, K)."""
        return np.array([self.positions(s.state) for s in self.hierarchy], dtype=np.int64)

    @cached_property
    def hierarchy_intensities(self) -> np.ndarray:
        return self.intensity_of_positions(self.hierarchy_positions)

    def hierarchy_index(self, state: State) -> int:
        """Index of the highest hierarchy step whose intensity the state reaches; -1 below all.

        Progress is measured in this index. A state that *is* step i gives i.
        """
        return int(self.hierarchy_index_of_intensity(self.intensity(state)))

    def hierarchy_index_of_intensity(self, intensity: np.ndarray | float) -> np.ndarray:
        """Batched: how many steps are at or below each intensity, minus one."""
        x = np.asarray(intensity, dtype=np.float64)
        return np.searchsorted(self.hierarchy_intensities - 1e-9, x, side="right") - 1

    # --- actions ---------------------------------------------------------------------------

    def action_mask(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Legal actions at these positions: bool array of shape (..., 1 + 2K). Hold is legal."""
        pos = np.asarray(positions, dtype=np.int64)
        top = self.n_levels - 1
        mask = np.empty(pos.shape[:-1] + (self.n_actions,), dtype=bool)
        mask[..., 0] = True
        mask[..., 1::2] = pos < top
        mask[..., 2::2] = pos > 0
        return mask

    def apply_action(self, positions: Sequence[int] | np.ndarray, action: np.ndarray | int) -> np.ndarray:
        """Batched: positions (..., K) and actions (...) → new positions. Illegal moves hold."""
        pos = np.array(positions, dtype=np.int64, copy=True)
        act = np.asarray(action, dtype=np.int64)
        k = len(self.parameters)
        if np.any((act < 0) | (act >= self.n_actions)):
            raise ValueError(f"actions must lie in 0..{self.n_actions - 1}; found {act}")
        moving = act > 0
        param = np.where(moving, (act - 1) // 2, 0)
        delta = np.where(moving, np.where((act - 1) % 2 == 0, 1, -1), 0)
        onehot = (np.arange(k) == param[..., None]) & moving[..., None]
        new = pos + onehot * delta[..., None]
        legal = ((new >= 0) & (new < self.n_levels)).all(axis=-1)
        return np.where(legal[..., None], new, pos)

    def action_of(self, pid: str, direction: Literal["up", "down"]) -> int:
        """The action index that moves parameter ``pid`` one level ``up`` or ``down``."""
        k = self.parameter_ids.index(self.parameter(pid).id)
        return 1 + 2 * k + (0 if direction == "up" else 1)

    def describe_action(self, action: int, positions: Sequence[int] | None = None) -> str:
        """Human-readable action, e.g. ``size up (small → medium)``."""
        if action == HOLD:
            return "hold"
        if not 0 < action < self.n_actions:
            raise ValueError(f"actions lie in 0..{self.n_actions - 1}; found {action}")
        p = self.parameters[(action - 1) // 2]
        direction = "up" if (action - 1) % 2 == 0 else "down"
        if positions is None:
            return f"{p.id} {direction}"
        i = int(positions[(action - 1) // 2])
        j = i + (1 if direction == "up" else -1)
        if not 0 <= j < p.n_levels:
            return f"{p.id} {direction} (impossible: already at {p.label(i)})"
        return f"{p.id} {direction} ({p.label(i)} → {p.label(j)})"

    def step(self, state: State, pid: str, direction: Literal["up", "down"]) -> dict[str, Level]:
        """The state with parameter ``pid`` moved one level; ``ValueError`` past either end."""
        pos = list(self.positions(state))
        p = self.parameter(pid)
        k = self.parameter_ids.index(p.id)
        j = pos[k] + (1 if direction == "up" else -1)
        if not 0 <= j < p.n_levels:
            end = "most" if direction == "up" else "least"
            raise ValueError(f"{p.id} is already at its {end} feared level ({p.label(pos[k])})")
        pos[k] = j
        return self.state_at(pos)

    def neighbours(self, state: State) -> list[tuple[int, dict[str, Level]]]:
        """Every legal one-step change: (action, new state), hold excluded."""
        pos = np.asarray(self.positions(state))
        mask = self.action_mask(pos)
        out = []
        for a in range(1, self.n_actions):
            if mask[a]:
                out.append((a, self.state_at(self.apply_action(pos, a))))
        return out


# --- cross-field rules -----------------------------------------------------------------------


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _state_problems(sc: Scenario, state: Mapping[str, Any], path: tuple[Any, ...]) -> list[Problem]:
    problems: list[Problem] = []
    ids = sc.parameter_ids
    suggested: set[str] = set()
    for key, value in state.items():
        if key not in ids:
            hint = did_you_mean(key, ids)
            close = difflib.get_close_matches(key, ids, n=1, cutoff=0.6)
            suggested.update(close)
            problems.append(Problem(path + (key,), f"unknown parameter {key!r}" + hint))
            continue
        try:
            sc.parameter(key).index_of(value)
        except ValueError as e:
            problems.append(Problem(path + (key,), str(e)))
    missing = [pid for pid in ids if pid not in state and pid not in suggested]
    if missing:
        problems.append(
            Problem(path, "every state must set every parameter; missing: " + ", ".join(missing))
        )
    return problems


def consistency_problems(sc: Scenario) -> list[Problem]:
    """Every cross-field problem of a structurally valid scenario (empty when consistent)."""
    problems: list[Problem] = []
    ids = [p.id for p in sc.parameters]
    seen: set[str] = set()
    for i, pid in enumerate(ids):
        if pid in seen:
            problems.append(Problem(("parameters", i, "id"), f"parameter id {pid!r} is used twice"))
        seen.add(pid)
    bindings: dict[str, int] = {}
    for i, p in enumerate(sc.parameters):
        if p.unity_binding in bindings:
            problems.append(
                Problem(
                    ("parameters", i, "unity_binding"),
                    f"unity_binding {p.unity_binding!r} is already used by parameter "
                    f"{ids[bindings[p.unity_binding]]!r}",
                )
            )
        bindings.setdefault(p.unity_binding, i)
    if problems:
        return problems  # states cannot be checked against ambiguous parameters

    states_ok = True
    for path, state in [(("start",), sc.start), (("safe_state",), sc.safe_state)] + [
        (("hierarchy", i, "state"), s.state) for i, s in enumerate(sc.hierarchy)
    ]:
        found = _state_problems(sc, state, path)
        states_ok &= not found
        problems += found

    names = [s.name for s in sc.hierarchy]
    for i, n in enumerate(names):
        if names.index(n) != i:
            problems.append(Problem(("hierarchy", i, "name"), f"step name {n!r} is used twice"))

    if states_ok:
        hi = [sc.intensity(s.state) for s in sc.hierarchy]
        for i in range(1, len(hi)):
            if not hi[i] > hi[i - 1] + 1e-9:
                problems.append(
                    Problem(
                        ("hierarchy", i, "state"),
                        f"the hierarchy must rise: step {i + 1} ({names[i]!r}) has intensity "
                        f"{hi[i]:.3f}, not above step {i} ({names[i - 1]!r}) at {hi[i - 1]:.3f}",
                    )
                )
        safe = sc.intensity(sc.safe_state)
        if safe > hi[0] + 1e-9:
            problems.append(
                Problem(
                    ("safe_state",),
                    f"the safe state (intensity {safe:.3f}) must not be more intense than the "
                    f"first hierarchy step ({hi[0]:.3f})",
                )
            )
        start = sc.intensity(sc.start)
        if start > hi[0] + 1e-9:
            problems.append(
                Problem(
                    ("start",),
                    f"exposure must start at or below the first hierarchy step: start has "
                    f"intensity {start:.3f}, step 1 has {hi[0]:.3f}",
                )
            )

    t = sc.targets
    if not t.arousal_window_bpm.high < t.ceiling_bpm:
        problems.append(
            Problem(
                ("targets", "ceiling_bpm"),
                f"the ceiling ({t.ceiling_bpm:g} bpm above baseline) must lie above the window's "
                f"top ({t.arousal_window_bpm.high:g} bpm)",
            )
        )
    if t.arousal_window_bpm.low < 0:
        problems.append(
            Problem(
                ("targets", "arousal_window_bpm", "low"),
                f"the window is heart rate *above* baseline and cannot start below 0; found "
                f"{t.arousal_window_bpm.low:g}",
            )
        )
    tm = sc.timing
    if tm.min_dwell_s < tm.decision_period_s:
        problems.append(
            Problem(
                ("timing", "min_dwell_s"),
                f"min_dwell_s ({tm.min_dwell_s:g}) must be at least decision_period_s "
                f"({tm.decision_period_s:g}): a change can only happen at a decision",
            )
        )
    if tm.exposure_max_s < 2 * tm.min_dwell_s:
        problems.append(
            Problem(
                ("timing", "exposure_max_s"),
                f"exposure_max_s ({tm.exposure_max_s:g}) leaves room for fewer than two changes "
                f"at min_dwell_s = {tm.min_dwell_s:g}",
            )
        )
    if t.ceiling_sustained_s > 0 and t.ceiling_sustained_s < 1:
        problems.append(
            Problem(("targets", "ceiling_sustained_s"), "use 0 (immediate) or at least 1 second")
        )
    if sc.safety.blind_safe_after_s < sc.safety.stale_after_s:
        problems.append(
            Problem(
                ("safety", "blind_safe_after_s"),
                f"blind_safe_after_s ({sc.safety.blind_safe_after_s:g}) must be at least "
                f"stale_after_s ({sc.safety.stale_after_s:g})",
            )
        )
    return problems
