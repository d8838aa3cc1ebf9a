"""Named cohorts of simulated patients, sampled reproducibly, with disjoint train/eval splits.

A cohort is a set of distributions for every patient parameter (:class:`CohortSpec`). A patient
is identified by ``(cohort, split, index)``; its parameters are a deterministic function of that
identity: the stream that draws them is seeded from the cohort's name, the split and the index
(``numpy.random.SeedSequence(entropy, spawn_key=(split, index))``). Training patients
(``split="train"``) and held-out evaluation patients (``split="eval"``) therefore come from
different streams and can never coincide, whatever the indices: disjoint by construction.
A third split, ``calibration``, is used only by the calibration protocols.
The environment draws a training patient's index from its own ``np_random``, so a seeded
environment meets the same patients every time.

Cohorts are scenario-agnostic (the response to the scene parameters is mapped generically by
:mod:`exposure_ctrl.sim.stimulus`). Every default is listed, with its source or marked as an
assumption, in ``docs/simulator.md``.

>>> from exposure_ctrl.sim.cohorts import COHORTS
>>> sorted(COHORTS)  # doctest: +NORMALIZE_WHITESPACE
['heights', 'mixed', 'social-anxiety', 'spider-moderate', 'spider-severe', 'trivial']
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal, Union

import numpy as np

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario.model import Scenario, did_you_mean
from exposure_ctrl.sim import kernels as K
from exposure_ctrl.sim.arrays import stack_rows
from exposure_ctrl.sim.patient import PatientParams
from exposure_ctrl.sim.stimulus import ResponseSpread, sample_response

__all__ = [
    "Dist",
    "Const",
    "Uniform",
    "Normal",
    "LogNormal",
    "CohortSpec",
    "COHORTS",
    "DEFAULT_COHORT",
    "EVAL_SIZE",
    "Split",
    "get_cohort",
    "cohort_for",
    "sample_patients",
    "patient_seed",
]

Split = Literal["train", "eval", "calibration"]
EVAL_SIZE = 1000
"""Number of held-out evaluation patients per cohort (indices 0..999)."""


# --- distributions ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Const:
    value: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, float(self.value))

    def describe(self) -> str:
        return f"{self.value:g}"


@dataclasses.dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=n)

    def describe(self) -> str:
        return f"uniform {self.low:g}–{self.high:g}"


@dataclasses.dataclass(frozen=True)
class Normal:
    mean: float
    sd: float
    low: float = -np.inf
    high: float = np.inf

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.maximum(self.mean + self.sd * rng.standard_normal(n), self.low), self.high)

    def describe(self) -> str:
        clip = f", clipped to {self.low:g}–{self.high:g}" if np.isfinite(self.low) or np.isfinite(self.high) else ""
        return f"normal {self.mean:g} ± {self.sd:g}{clip}"


@dataclasses.dataclass(frozen=True)
class LogNormal:
    median: float
    sd_log: float
    low: float = 0.0
    high: float = np.inf

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.maximum(self.median * np.exp(self.sd_log * rng.standard_normal(n)), self.low), self.high)

    def describe(self) -> str:
        clip = f", clipped to {self.low:g}–{self.high:g}" if np.isfinite(self.high) or self.low > 0 else ""
        return f"lognormal, median {self.median:g}, log-SD {self.sd_log:g}{clip}"


Dist = Union[Const, Uniform, Normal, LogNormal]

# The scalar parameters of PatientParams, in sampling order (the order is part of the
# reproducibility contract: changing it changes every patient). Kept with the kernels, the
# lowest module, whose packed parameter rows are derived from it.
SCALARS: tuple[str, ...] = K.SCALARS


@dataclasses.dataclass(frozen=True)
class CohortSpec:
    """A named population: a distribution per scalar parameter and the response spread."""

    name: str
    description: str
    scalars: Mapping[str, Dist]
    response: ResponseSpread = ResponseSpread()
    version: int = 2  # bump when a distribution changes: patients change with it

    def __post_init__(self) -> None:
        missing = [s for s in SCALARS if s not in self.scalars]
        extra = [s for s in self.scalars if s not in SCALARS]
        if missing or extra:
            raise ConfigError(
                f"cohort {self.name!r}: missing parameters {missing}, unknown parameters {extra}"
            )

    def with_(self, name: str, description: str, **changes: Dist) -> "CohortSpec":
        """A derived cohort with some distributions replaced."""
        return CohortSpec(name, description, {**self.scalars, **changes}, self.response, self.version)


# --- the shipped cohorts ---------------------------------------------------------------------------

_BASE: dict[str, Dist] = {
    # heart
    "hr_rest_bpm": Normal(70.0, 7.0, 55.0, 85.0),
    "hr_gain_bpm": LogNormal(22.0, 0.5, 2.0, 60.0),
    "drift_sd_bpm": Uniform(1.5, 3.0),
    "drift_tau_s": Uniform(180.0, 600.0),
    "settle_bpm": Uniform(0.0, 8.0),
    "settle_tau_s": Uniform(20.0, 60.0),
    "rsa_frac": LogNormal(0.045, 0.35, 0.01, 0.12),
    "rsa_fear_drop": Uniform(0.05, 0.2),
    "resp_hz": Uniform(0.2, 0.3),
    "jitter_ms": Uniform(5.0, 12.0),
    "ectopic_per_beat": Uniform(0.0, 0.002),
    # fear dynamics
    "onset_delay_s": Uniform(1.0, 3.0),
    "rise_tau_s": Uniform(5.0, 15.0),
    "decay_tau_s": Uniform(20.0, 60.0),
    "slow_tau_s": Uniform(180.0, 900.0),
    "slow_frac": Uniform(0.15, 0.35),
    # habituation and sensitisation
    "habituation_per_s": LogNormal(1.0 / 300.0, 0.4),
    "habituation_max": Uniform(0.6, 0.9),
    "sensitisation_per_s": LogNormal(1.0 / 300.0, 0.4),
    "sensitisation_max": Uniform(0.2, 0.5),
    "dishabituation": Uniform(0.05, 0.15),
    "activation": Uniform(0.1, 0.25),
    "tolerance": LogNormal(1.1, 0.2, 0.4, 3.0),
    "abort_after_s": Uniform(30.0, 60.0),
    "retention": Uniform(0.3, 0.7),
    # SUDS
    "suds_scale": LogNormal(1.6, 0.5),
    "suds_bias": Normal(0.0, 10.0),
    "suds_noise": Uniform(4.0, 10.0),
}

_MODERATE = CohortSpec(
    "spider-moderate",
    "Spider phobia of moderate severity: the top of the hierarchy is near the patient's "
    "tolerance; habituation proceeds at moderate fear.",
    _BASE,
)

_SEVERE = _MODERATE.with_(
    "spider-severe",
    "Severe spider phobia: larger heart-rate responses, tolerance well below the top of the "
    "hierarchy, slower habituation; the top is out of reach until lower steps are habituated.",
    hr_gain_bpm=LogNormal(28.0, 0.45, 2.0, 60.0),
    tolerance=LogNormal(0.75, 0.2, 0.3, 3.0),
    habituation_per_s=LogNormal(1.0 / 420.0, 0.4),
    sensitisation_per_s=LogNormal(1.0 / 200.0, 0.4),
    abort_after_s=Uniform(25.0, 50.0),
)

_SOCIAL = CohortSpec(
    "social-anxiety",
    "Social anxiety (performance type): moderate heart-rate responses, wide disagreement between "
    "heart rate and reported fear, non-monotone responses to audience size are common.",
    {
        **_BASE,
        "hr_gain_bpm": LogNormal(21.0, 0.5, 2.0, 60.0),
        "tolerance": LogNormal(1.1, 0.2, 0.4, 3.0),
        "suds_bias": Normal(5.0, 12.0),
    },
    ResponseSpread(bump_prob=0.3, categorical_sd=0.3),
)

_HEIGHTS = _MODERATE.with_(
    "heights",
    "Acrophobia: heart rate rises with height in phobic and non-phobic people alike, so heart "
    "rate separates less; reported fear matters more.",
    hr_gain_bpm=LogNormal(20.0, 0.5, 2.0, 60.0),
    tolerance=LogNormal(1.2, 0.2, 0.4, 3.0),
    suds_noise=Uniform(6.0, 12.0),
)

_TRIVIAL = CohortSpec(
    "trivial",
    "A deterministic, fully controllable patient for learnability smoke tests: no noise, no "
    "drift, no habituation, no aborts; heart rate follows the scene within seconds.",
    {
        "hr_rest_bpm": Const(70.0),
        "hr_gain_bpm": Const(20.0),
        "drift_sd_bpm": Const(0.0),
        "drift_tau_s": Const(300.0),
        "settle_bpm": Const(0.0),
        "settle_tau_s": Const(30.0),
        "rsa_frac": Const(0.02),
        "rsa_fear_drop": Const(0.1),
        "resp_hz": Const(0.25),
        "jitter_ms": Const(0.0),
        "ectopic_per_beat": Const(0.0),
        "onset_delay_s": Const(1.0),
        "rise_tau_s": Const(2.0),
        "decay_tau_s": Const(2.0),
        "slow_tau_s": Const(300.0),
        "slow_frac": Const(0.0),
        "habituation_per_s": Const(0.0),
        "habituation_max": Const(0.0),
        "sensitisation_per_s": Const(0.0),
        "sensitisation_max": Const(0.0),
        "dishabituation": Const(0.0),
        "activation": Const(0.2),
        "tolerance": Const(100.0),
        "abort_after_s": Const(1e9),
        "retention": Const(1.0),
        "suds_scale": Const(1.6),
        "suds_bias": Const(0.0),
        "suds_noise": Const(0.0),
    },
    ResponseSpread(
        sensitivity_sd=0.0,
        curve_sd=0.0,
        categorical_sd=0.0,
        bump_prob=0.0,
        interaction_sd=0.0,
        soothing_responder_prob=1.0,
        soothing_strength=(0.2, 0.2),
    ),
)


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A cohort that draws each patient from one of several cohorts with given weights."""

    name: str
    description: str
    parts: tuple[tuple[CohortSpec, float], ...]
    version: int = 1


_MIXED = Mixture(
    "mixed",
    "A clinic's mix: 40 % spider-moderate, 20 % spider-severe, 20 % social-anxiety, 20 % heights "
    "(the physiology of each; the scene response is always mapped from the scenario at hand).",
    ((_MODERATE, 0.4), (_SEVERE, 0.2), (_SOCIAL, 0.2), (_HEIGHTS, 0.2)),
)

COHORTS: dict[str, Union[CohortSpec, Mixture]] = {
    c.name: c for c in (_MODERATE, _SEVERE, _SOCIAL, _HEIGHTS, _MIXED, _TRIVIAL)
}

DEFAULT_COHORT: dict[str, str] = {
    "spider": "spider-moderate",
    "public_speaking": "social-anxiety",
    "heights": "heights",
}
"""The cohort used for a scenario when none is given (``mixed`` for any other scenario)."""


def get_cohort(name: str | CohortSpec | Mixture) -> CohortSpec | Mixture:
    """A cohort by name (``ConfigError`` with a suggestion for unknown names)."""
    if isinstance(name, (CohortSpec, Mixture)):
        return name
    try:
        return COHORTS[name]
    except KeyError:
        raise ConfigError(f"unknown cohort {name!r}" + did_you_mean(name, sorted(COHORTS))) from None


def cohort_for(sc: Scenario, cohort: str | CohortSpec | Mixture | None) -> CohortSpec | Mixture:
    """The cohort to use with scenario ``sc`` (its default when ``cohort`` is None)."""
    if cohort is None:
        return COHORTS[DEFAULT_COHORT.get(sc.id, "mixed")]
    return get_cohort(cohort)


# --- sampling ----------------------------------------------------------------------------------

_SPLITS = {"train": 0, "eval": 1, "calibration": 2}


def patient_seed(cohort: CohortSpec | Mixture, split: Split, index: int) -> np.random.SeedSequence:
    """The seed sequence of patient ``index`` of ``split`` in ``cohort``."""
    if split not in _SPLITS:
        raise ConfigError(f"split must be one of {', '.join(_SPLITS)}; found {split!r}")
    if index < 0:
        raise ConfigError(f"patient index must be >= 0, found {index}")
    if split == "eval" and index >= EVAL_SIZE:
        raise ConfigError(f"evaluation patients are numbered 0..{EVAL_SIZE - 1}, found {index}")
    return np.random.SeedSequence(_cohort_entropy(cohort.name, cohort.version), spawn_key=(_SPLITS[split], int(index)))


@functools.lru_cache(maxsize=64)
def _cohort_entropy(name: str, version: int) -> int:
    digest = hashlib.sha256(f"exposure-ctrl cohort {name} v{version}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def _one(sc: Scenario, cohort: CohortSpec | Mixture, seq: np.random.SeedSequence) -> PatientParams:
    phys_seq, resp_seq, pick_seq = seq.spawn(3)
    if isinstance(cohort, Mixture):
        weights = np.array([w for _, w in cohort.parts], dtype=float)
        j = int(np.random.default_rng(pick_seq).choice(len(cohort.parts), p=weights / weights.sum()))
        spec = cohort.parts[j][0]
    else:
        spec = cohort
    rng = np.random.default_rng(phys_seq)
    values = {name: spec.scalars[name].sample(rng, 1) for name in SCALARS}
    tables = sample_response(sc, np.random.default_rng(resp_seq), 1, spec.response)
    return PatientParams(
        **values,
        level_drive=tables.level_drive,
        level_gain=tables.level_gain,
        interaction=tables.interaction,
        drive_scale=tables.drive_scale,
    )


def sample_patients(
    sc: Scenario,
    cohort: str | CohortSpec | Mixture,
    indices: Sequence[int] | np.ndarray,
    split: Split = "train",
) -> PatientParams:
    """Parameters of the patients ``indices`` of ``split`` in ``cohort``, for scenario ``sc``.

    The same (cohort, split, index) always gives the same patient; a patient's physiology does
    not depend on the scenario, only its response to the scene does.
    """
    spec = get_cohort(cohort)
    parts = [_one(sc, spec, patient_seed(spec, split, int(i))) for i in np.asarray(indices).reshape(-1)]
    return parts[0] if len(parts) == 1 else stack_rows(parts)


def describe_cohort(cohort: str | CohortSpec | Mixture) -> str:
    """A plain-text table of a cohort's distributions (for the docs and the CLI)."""
    spec = get_cohort(cohort)
    if isinstance(spec, Mixture):
        parts = ", ".join(f"{w:.0%} {c.name}" for c, w in spec.parts)
        return f"{spec.name}: {spec.description}\n  mixture of {parts}"
    lines = [f"{spec.name}: {spec.description}"]
    for name in SCALARS:
        lines.append(f"  {name:22s} {spec.scalars[name].describe()}")
    return "\n".join(lines)
