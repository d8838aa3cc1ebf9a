"""Online per-patient response model: how each scene parameter moves this patient's heart rate.

A Bayesian linear model with a first-order lag, learnt by a Kalman filter, batch-first (N
patients in lockstep, arrays ``mean`` (N, P) and ``cov`` (N, P, P)). Compiled kernels (numba)
update and read them, one patient at a time, so N = 1 and N = 1024 run the same code.

**Encoding.** A state (positions, one level index per parameter) maps to a design vector
``phi`` of P coefficients: an intercept (always 1), then per parameter

- ordinal and continuous, ``stimulus`` role: one coefficient, ``phi = (I_l - I_0) / (I_top -
  I_0)`` with ``I`` the designer's intensity prior of the level (the prior's shape, 0 at the
  least feared level, 1 at the most); its coefficient is the bpm the whole range adds;
- ordinal and continuous, ``soothing`` role: one coefficient, ``phi = (I_top - I_l) / (I_top -
  I_0)`` (1 at the most soothing level, 0 at the least); its coefficient is the bpm the most
  soothing level adds (negative when it soothes);
- categorical, ``stimulus``: one coefficient per value except the least feared (the
  reference), one-hot: "colour black: +6 bpm vs light_brown";
- categorical, ``soothing``: one coefficient per value except the least soothing (the
  reference is the last value): "music calm_music: -3 bpm vs silence".

(A flat intensity prior falls back to equal steps.)

**Dynamics.** Arousal (heart rate above baseline, bpm) follows the scene with a first-order lag:
``y(t) = theta . z(t) + noise`` where ``z`` is ``phi`` of the scenes shown, low-pass filtered
with time constant ``lag_s`` (exact for piecewise-constant scenes: ``z <- phi + (z - phi) *
exp(-dt / lag_s)``). The coefficients drift as a random walk (``drift_bpm_per_sqrt_min``): the
filter forgets, so sensitivities can fall with habituation. SUDS ratings (0..100) are a second,
noisier observation of the same lagged arousal, mapped linearly from the scenario's SUDS window
onto its arousal window and weighted with ``suds_noise_bpm``.

**Prior.** ``theta`` starts at the designer's prior: the predicted arousal of a state is
``prior_bpm_per_intensity * intensity(state)`` (default ``ceiling_bpm`` per unit intensity),
each coefficient with a standard deviation of ``max(prior_sd_floor_bpm, prior_sd_factor *
|prior mean|)``, the intercept with ``intercept_sd_bpm``.

**Outputs.** :meth:`ResponseModel.predict` (steady-state arousal of any state, mean and sd),
:meth:`ResponseModel.sensitivities` (readable, with sd), :meth:`ResponseModel.closest_action`
(the neighbour state whose prediction is closest to a target), and
:meth:`ResponseModel.observation` (a fixed-size vector for the policies, names in
:attr:`ResponseModel.observation_names`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np

from exposure_ctrl.arousal._inputs import ALL, BOOL, F8, as_vector

__all__ = ["ModelConfig", "ResponseModel", "Sensitivity"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Settings of the response model (see the module docstring)."""

    lag_s: float = 20.0
    hr_noise_bpm: float = 3.0
    suds_noise_bpm: float = 8.0
    prior_bpm_per_intensity: float | None = None  # default: the scenario's ceiling_bpm
    prior_sd_factor: float = 1.0
    prior_sd_floor_bpm: float = 3.0
    intercept_sd_bpm: float = 5.0
    drift_bpm_per_sqrt_min: float = 0.4
    intercept_drift_bpm_per_sqrt_min: float = 0.5
    gate_sigma: float = 5.0

    def __post_init__(self) -> None:
        for name in ("lag_s", "hr_noise_bpm", "suds_noise_bpm", "intercept_sd_bpm", "gate_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, found {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """One coefficient, readable: ``text`` is e.g. ``colour black: +6.0 ± 2.0 bpm vs light_brown``."""

    parameter: str
    level: str | None  # the value (categorical), None for a whole-range coefficient
    reference: str  # what it is compared with
    mean_bpm: float
    sd_bpm: float
    per_step_bpm: float | None
    text: str


class ResponseModel:
    """Online Kalman-filtered linear response model of N patients (see the module docstring).

    Args:
        scenario: the :class:`~exposure_ctrl.scenario.Scenario`.
        n: patients in lockstep.
        config: settings.
        positions: the scene at the start, (K,) or (N, K); default the scenario's safe state.
    """

    def __init__(
        self,
        scenario: Any,
        n: int = 1,
        config: ModelConfig | None = None,
        *,
        positions: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, found {n}")
        self.scenario = scenario
        self.n = int(n)
        self.config = cfg = config or ModelConfig()
        tg = scenario.targets
        # SUDS -> bpm: window low + (SUDS - SUDS window low) * bpm per SUDS point
        self._suds_map = np.array([
            float(tg.arousal_window_bpm.low),
            float(tg.suds_window.low),
            (tg.arousal_window_bpm.high - tg.arousal_window_bpm.low) / (tg.suds_window.high - tg.suds_window.low),
        ])  # fmt: skip
        scale = cfg.prior_bpm_per_intensity
        scale = float(tg.ceiling_bpm) if scale is None else float(scale)
        self._build_design(scale)
        p = self.n_coef
        n = self.n
        # patients on the first axis; the kernels work on one patient's rows at a time
        self._m = np.repeat(self.prior_mean[None, :], n, axis=0)  # (N, P)
        self._c = np.repeat(np.diag(self.prior_sd**2)[None], n, axis=0)  # (N, P, P)
        q = np.full(p, cfg.drift_bpm_per_sqrt_min**2 / 60.0)
        q[0] = cfg.intercept_drift_bpm_per_sqrt_min**2 / 60.0
        self._q_per_s = q
        if positions is None:
            positions = scenario.positions(scenario.safe_state)
        self.positions = np.broadcast_to(
            np.asarray(positions, dtype=np.int64), (n, scenario.n_parameters)
        ).copy()
        self._phi = self.design(self.positions)  # (N, P)
        self._z = self._phi.copy()
        self.t = np.full(n, np.nan)
        self.n_hr_updates = np.zeros(n, dtype=np.int64)
        self.n_suds_updates = np.zeros(n, dtype=np.int64)
        self.n_gated = np.zeros(n, dtype=np.int64)
        self._actions = np.arange(scenario.n_actions)
        self._gate = float(cfg.gate_sigma)
        self._lag = float(cfg.lag_s)

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean of the coefficients, (N, P) (the state itself)."""
        return self._m

    @property
    def cov(self) -> np.ndarray:
        """Posterior covariance of the coefficients, (N, P, P) (the state itself)."""
        return self._c

    @property
    def z(self) -> np.ndarray:
        """The lagged design vector, (N, P) (the state itself)."""
        return self._z

    # --- design --------------------------------------------------------------------------

    def _build_design(self, scale: float) -> None:
        """The design's structures (see :func:`_design`), shared by every model of the same
        scenario object and prior settings."""
        self.__dict__.update(_design(self.scenario, self.config, scale))

    def design(self, positions: np.ndarray) -> np.ndarray:
        """Design vectors of states: positions (..., K) → (..., P)."""
        pos = np.asarray(positions, dtype=np.int64)
        phi = self._table[pos + self._koff].sum(axis=-2)
        phi[..., 0] = 1.0
        return phi

    # --- time and inputs -----------------------------------------------------------------

    def _time(self, t: float | np.ndarray) -> np.ndarray:
        return as_vector(t, F8, self.n, "t")

    def set_scene(
        self,
        t: float | np.ndarray,
        positions: np.ndarray | Sequence[int],
        mask: np.ndarray | None = None,
    ) -> None:
        """The scene changed at ``t`` to ``positions`` ((N, K) or (K,)) for the patients in ``mask``."""
        pos = np.asarray(positions, dtype=np.int64)
        if pos.ndim != 2:
            pos = pos.reshape(-1, self.positions.shape[1])
        if not (pos.flags.c_contiguous and pos.flags.writeable):  # e.g. np.broadcast_to
            pos = pos.copy()  # one compiled version of the kernel, not one per kind of view
        if pos.shape[0] not in (1, self.n) or pos.shape[1] != self.positions.shape[1]:
            raise ValueError(
                f"positions must have shape ({self.n}, {self.positions.shape[1]}) or "
                f"({self.positions.shape[1]},), found {np.shape(positions)}"
            )
        m = ALL if mask is None else as_vector(mask, BOOL, self.n, "mask")
        ok = _set_scene_kernel(
            self._time(t), pos, m, self._table, self._lmax, self._q_per_s, self._lag,
            self.t, self._z, self._phi, self._c, self.positions,
        )  # fmt: skip
        if not ok:
            raise ValueError("the response model's time cannot go backwards")

    def observe_hr(
        self, t: float | np.ndarray, hr_above_bpm: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Learn from the smoothed heart rate above baseline at ``t`` (N,), where ``valid``."""
        self._kalman(t, hr_above_bpm, valid, self.config.hr_noise_bpm, self.n_hr_updates, _SAME)

    def observe_suds(
        self, t: float | np.ndarray, suds: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Learn from SUDS ratings (0..100) at ``t`` (N,), where ``valid`` (mapped to bpm with
        :meth:`suds_to_bpm`)."""
        self._kalman(
            t, suds, valid, self.config.suds_noise_bpm, self.n_suds_updates, self._suds_map
        )

    def suds_to_bpm(self, suds: np.ndarray | float) -> np.ndarray:
        """The arousal (bpm above baseline) a SUDS rating stands for in this model."""
        a, lo, b = self._suds_map
        return a + (np.asarray(suds, dtype=np.float64) - lo) * b

    def _kalman(
        self,
        t: float | np.ndarray,
        y: np.ndarray,
        valid: np.ndarray | None,
        noise: float,
        counter: np.ndarray,
        y_map: np.ndarray,
    ) -> None:
        ok = _kalman_kernel(
            self._time(t), as_vector(y, F8, self.n, "y"),
            ALL if valid is None else as_vector(valid, BOOL, self.n, "valid"), y_map, noise,
            self._gate, self._q_per_s, self._lag, self.t, self._z, self._phi, self._m, self._c,
            counter, self.n_gated,
        )  # fmt: skip
        if not ok:
            raise ValueError("the response model's time cannot go backwards")

    def put_rows(self, rows: np.ndarray | Sequence[int], src: ResponseModel) -> None:
        """Overwrite patients ``rows`` with the patients of ``src`` (a model of ``len(rows)``
        patients of the same scenario and settings)."""
        rows = np.asarray(rows, dtype=np.int64)
        if src.n != len(rows):
            raise ValueError(f"src holds {src.n} patients for {len(rows)} rows")
        if src.config != self.config or src.coef_names != self.coef_names:
            raise ValueError("put_rows needs models of the same scenario and settings")
        self._m[rows] = src._m
        self._c[rows] = src._c
        self._phi[rows] = src._phi
        self._z[rows] = src._z
        for name in ("positions", "t", "n_hr_updates", "n_suds_updates", "n_gated"):
            getattr(self, name)[rows] = getattr(src, name)

    # --- outputs -------------------------------------------------------------------------

    def predict(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steady-state arousal (bpm above baseline) of states ``positions`` of shape (N, ..., K):
        mean and sd of the *expected* value (model uncertainty, not the noise), each (N, ...)."""
        phi = self.design(positions)
        shape = phi.shape
        flat = phi.reshape(self.n, -1, self.n_coef)
        mean = np.einsum("nap,np->na", flat, self._m)
        cp = np.einsum("nap,npq->naq", flat, self._c)
        var = np.einsum("naq,naq->na", cp, flat)
        return mean.reshape(shape[:-1]), np.sqrt(np.maximum(var, 0.0)).reshape(shape[:-1])

    def predict_now(self) -> tuple[np.ndarray, np.ndarray]:
        """The lagged prediction of the current arousal (what the heart rate should read now)."""
        out = np.empty((self.n, 2))
        _now_kernel(self._m, self._c, self._z, out)
        return out[:, 0], out[:, 1]

    def next_positions(self) -> np.ndarray:
        """Positions after every action from the current scene: (N, 1 + 2K, K); illegal = hold."""
        pos = self.positions[:, None, :]
        na = len(self._actions)
        return self.scenario.apply_action(
            np.broadcast_to(pos, (self.n, na, pos.shape[-1])), self._actions[None, :]
        )

    def predict_next(self) -> tuple[np.ndarray, np.ndarray]:
        """Steady-state prediction of the state after every action (N, 1 + 2K): mean and sd.
        Illegal actions give the current state (as ``apply_action`` holds them)."""
        return self._next_pairs(True)

    def action_effects(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted steady-state change of arousal each action would cause from the current
        scene (bpm): mean and sd, each (N, 1 + 2K); hold and illegal actions give 0 ± 0."""
        return self._next_pairs(False)

    def _next_pairs(self, with_base: bool) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd (N, 1 + 2K) after every action: the state (``with_base``) or the change."""
        na = self.scenario.n_actions
        out = np.empty((self.n, 2 * na))
        _next_kernel(
            self._m, self._c, self._phi, self.positions, self._lmax, self._step_index,
            self._step_value, with_base, out,
        )  # fmt: skip
        return out[:, 0::2], out[:, 1::2]

    def closest_action(
        self, target_bpm: np.ndarray | float, *, include_hold: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The legal action whose next state's predicted arousal is closest to ``target_bpm``.

        Returns ``(action, mean, sd)``, each (N,).
        """
        mean, sd = self.predict_next()
        mask = self.scenario.action_mask(self.positions)
        if not include_hold:
            mask = mask.copy()
            mask[:, 0] = False
        tgt = np.broadcast_to(np.asarray(target_bpm, dtype=np.float64), (self.n,))
        score = np.where(mask, np.abs(mean - tgt[:, None]), np.inf)
        a = np.argmin(score, axis=1)
        rows = np.arange(self.n)
        return a, mean[rows, a], sd[rows, a]

    def sensitivity_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Per parameter: the arousal its whole range adds (least → most feared level, others
        fixed): mean and sd, each (N, K)."""
        out = np.empty((self.n, 2 * self.scenario.n_parameters))
        _sens_kernel(self._m, self._c, self._sens_index, self._sens_value, out)
        return out[:, 0::2], out[:, 1::2]

    def coef_sd(self) -> np.ndarray:
        """Standard deviation of every coefficient, (N, P)."""
        return np.sqrt(np.maximum(np.diagonal(self._c, axis1=1, axis2=2), 0.0))

    def sensitivities(self, i: int = 0) -> list[Sensitivity]:
        """Readable coefficients of patient ``i`` (intercept excluded)."""
        sc = self.scenario
        sd = self.coef_sd()[i]
        out = []
        for j in range(1, self.n_coef):
            par = sc.parameters[int(self.coef_parameter[j])]
            m = float(self.mean[i, j])
            s = float(sd[j])
            name = par.title or par.id
            if self.coef_level[j] >= 0:
                lvl = int(self.coef_level[j])
                ref = par.label(par.n_levels - 1 if par.role == "soothing" else 0)
                level = par.label(lvl)
                text = f"{name} {level}: {m:+.1f} ± {s:.1f} bpm vs {ref}"
                out.append(Sensitivity(par.id, level, ref, m, s, None, text))
            else:
                lo, hi = par.label(0), par.label(par.n_levels - 1)
                step = m / (par.n_levels - 1)
                if par.role == "soothing":
                    text = f"{name} {lo}: {m:+.1f} ± {s:.1f} bpm vs {hi}"
                    out.append(Sensitivity(par.id, lo, hi, m, s, None, text))
                else:
                    text = f"{name} {lo} → {hi}: {m:+.1f} ± {s:.1f} bpm ({step:+.1f} per step)"
                    out.append(Sensitivity(par.id, None, lo, m, s, step, text))
        return out

    @property
    def observation_names(self) -> tuple[str, ...]:
        """Names of :meth:`observation`'s columns."""
        return self._observation_names

    @property
    def observation_size(self) -> int:
        return 2 + 2 * self.scenario.n_actions + 2 * self.scenario.n_parameters

    def observation(self, out: np.ndarray | None = None) -> np.ndarray:
        """Fixed-size estimates for the policies, (N, observation_size), in bpm (see names):
        the lagged prediction now; the steady-state prediction after each action (illegal
        actions: as hold); the whole-range sensitivity of each parameter; each with its sd."""
        o = np.empty((self.n, self.observation_size)) if out is None else out
        _observation_kernel(
            self._m, self._c, self._z, self._phi, self.positions, self._lmax, self._step_index,
            self._step_value, self._sens_index, self._sens_value, o,
        )  # fmt: skip
        return o

    def record(self, i: int = 0) -> dict[str, Any]:
        """Plain values of patient ``i`` for the session record."""
        sd = self.coef_sd()[i]
        return {
            "t": float(self.t[i]),
            "coefficients": {
                name: {"mean_bpm": float(self.mean[i, j]), "sd_bpm": float(sd[j])}
                for j, name in enumerate(self.coef_names)
            },
            "sensitivities": [s.text for s in self.sensitivities(i)],
            "hr_updates": int(self.n_hr_updates[i]),
            "suds_updates": int(self.n_suds_updates[i]),
            "gated": int(self.n_gated[i]),
        }

    def predict_state(self, state: Mapping[str, Any], i: int = 0) -> tuple[float, float]:
        """Steady-state prediction (mean, sd) of one named state for patient ``i``."""
        pos = np.asarray(self.scenario.positions(state), dtype=np.int64)
        mean, sd = self.predict(np.broadcast_to(pos, (self.n, 1, len(pos))))
        return float(mean[i, 0]), float(sd[i, 0])


_DESIGNS: dict[int, tuple[weakref.ref, dict[tuple, dict[str, Any]]]] = {}


def _design(sc: Any, cfg: ModelConfig, scale: float) -> dict[str, Any]:
    """The model's structures that depend only on the scenario and the prior settings (coefficient
    names, prior, design table, sparse contrasts and level steps, observation names), computed once per scenario
    object (kept while it lives) and settings: every new model of a session (every reset) reuses
    them. Their arrays are read-only."""
    key = (float(scale), cfg.prior_sd_floor_bpm, cfg.prior_sd_factor, cfg.intercept_sd_bpm)
    entry = _DESIGNS.get(id(sc))
    if entry is None or entry[0]() is not sc:
        entry = (weakref.ref(sc), {})
        _DESIGNS[id(sc)] = entry
        weakref.finalize(sc, _forget_design, id(sc), entry[0])
    found = entry[1].get(key)
    if found is None:
        found = entry[1][key] = _compute_design(sc, cfg, scale)
    return found


def _forget_design(key: int, ref: weakref.ref) -> None:
    entry = _DESIGNS.get(key)
    if entry is not None and entry[0] is ref:
        del _DESIGNS[key]


def _compute_design(sc: Any, cfg: ModelConfig, scale: float) -> dict[str, Any]:
    d = types.SimpleNamespace()
    k = sc.n_parameters
    lmax = int(sc.n_levels.max())
    names = ["intercept"]
    param_of = [-1]
    level_of: list[int] = [-1]
    prior = [0.0]
    wsum_share = np.array([p.weight for p in sc.parameters], dtype=np.float64)
    wsum_share = wsum_share / wsum_share.sum()
    entries: list[tuple[int, int, int, float]] = []  # (k, level, coef, value)
    intercept_prior = 0.0
    contrasts: list[dict[int, float]] = []
    for i, par in enumerate(sc.parameters):
        inten = np.asarray(par.intensities, dtype=np.float64)
        nl = len(inten)
        span = inten[-1] - inten[0]
        share = wsum_share[i] * scale
        soothing = par.role == "soothing"
        if soothing:
            intercept_prior += share * inten[-1]
        else:
            intercept_prior += share * inten[0]
        if par.kind == "categorical":
            ref = nl - 1 if soothing else 0
            con: dict[int, float] = {}
            for lvl in range(nl):
                if lvl == ref:
                    continue
                j = len(names)
                names.append(f"{par.id}={par.label(lvl)}")
                param_of.append(i)
                level_of.append(lvl)
                prior.append(share * (inten[lvl] - inten[ref]))
                entries.append((i, lvl, j, 1.0))
                if lvl == nl - 1:
                    con[j] = con.get(j, 0.0) + 1.0
                if lvl == 0:
                    con[j] = con.get(j, 0.0) - 1.0
            contrasts.append(con)
        else:
            j = len(names)
            names.append(par.id)
            param_of.append(i)
            level_of.append(-1)
            if span > 1e-12:
                frac = (inten - inten[0]) / span
            else:
                frac = np.arange(nl) / (nl - 1)
            if soothing:
                prior.append(-share * span)
                for lvl in range(nl):
                    entries.append((i, lvl, j, 1.0 - frac[lvl]))
                contrasts.append({j: -1.0})
            else:
                prior.append(share * span)
                for lvl in range(nl):
                    entries.append((i, lvl, j, frac[lvl]))
                contrasts.append({j: 1.0})
    p = len(names)
    d.coef_names: tuple[str, ...] = tuple(names)
    d.coef_parameter = np.array(param_of, dtype=np.int64)
    d.coef_level = np.array(level_of, dtype=np.int64)
    d.n_coef = p
    prior_arr = np.array(prior, dtype=np.float64)
    prior_arr[0] = intercept_prior
    d.prior_mean = prior_arr
    sd = np.maximum(cfg.prior_sd_floor_bpm, cfg.prior_sd_factor * np.abs(prior_arr))
    sd[0] = cfg.intercept_sd_bpm
    d.prior_sd = sd
    tab = np.zeros((k * lmax, p))
    for i, lvl, j, v in entries:
        tab[i * lmax + lvl, j] = v
    d._table = tab
    d._lmax = lmax
    d._koff = np.arange(k) * lmax
    con = np.zeros((k, p))
    for i, c in enumerate(contrasts):
        for j, v in c.items():
            con[i, j] = v
    d._contrast = con  # (K, P): phi(most feared level) - phi(least) of one parameter
    d._sens_index, d._sens_value = _sparse_rows(con)
    # change of phi when parameter k moves one level up (dir 0) or down (dir 1) from level l
    steps = np.zeros((k, lmax, 2, p))
    for i in range(k):
        nl = int(sc.n_levels[i])
        for lvl in range(nl):
            for way, to in ((0, lvl + 1), (1, lvl - 1)):
                if 0 <= to < nl:
                    steps[i, lvl, way] = tab[i * lmax + to] - tab[i * lmax + lvl]
    d._step_index, d._step_value = _sparse_rows(steps.reshape(k * lmax * 2, p))
    names = ["model_now_bpm", "model_now_sd_bpm"]
    for a in range(sc.n_actions):
        act = "hold" if a == 0 else sc.describe_action(a).replace(" ", "_")
        names += [f"model_next_{act}_bpm", f"model_next_{act}_sd_bpm"]
    for pid in sc.parameter_ids:
        names += [f"model_sens_{pid}_bpm", f"model_sens_{pid}_sd_bpm"]
    d._observation_names = tuple(names)
    out = vars(d)
    for v in out.values():
        for a in v if isinstance(v, tuple) else (v,):
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
    return out


def _sparse_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with at most two non-zeros as ``index`` (R, 2) and ``value`` (R, 2): the first and
    second non-zero's column and value (0, 0.0 where there is none)."""
    n = rows.shape[0]
    index = np.zeros((n, 2), dtype=np.int64)
    value = np.zeros((n, 2))
    for r in range(n):
        nz = np.flatnonzero(rows[r])
        if len(nz) > 2:
            raise AssertionError("a design change touches more than two coefficients")
        index[r, : len(nz)] = nz
        value[r, : len(nz)] = rows[r, nz]
    return index, value


_SAME = np.array([0.0, 0.0, 1.0])  # y -> 0 + (y - 0) * 1: the observation as it is


# --- compiled kernels: one patient at a time, for every patient ---------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _time_ok(t_new: np.ndarray, t: np.ndarray) -> bool:
    """No patient's time would go backwards (``t_new``: (N,) or (1,))."""
    one = t_new.shape[0] == 1
    for i in range(t.shape[0]):
        if not math.isnan(t[i]) and t_new[0 if one else i] - t[i] < 0:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _advance_one(
    i: int, tn: float, q: np.ndarray, lag: float, t: np.ndarray, z: np.ndarray,
    phi: np.ndarray, c: np.ndarray,
) -> None:  # fmt: skip
    """Move patient ``i``'s model to time ``tn``: the lagged design follows the scene, ``z <-
    phi + (z - phi) exp(-dt / lag_s)``, and the random walk widens the covariance, ``C_pp +=
    q_p dt``."""
    dt = 0.0 if math.isnan(t[i]) else tn - t[i]
    e = math.exp(-dt / lag)
    for p in range(z.shape[1]):
        z[i, p] = phi[i, p] + (z[i, p] - phi[i, p]) * e
        c[i, p, p] += q[p] * dt
    t[i] = tn


@numba.njit(cache=True, nogil=True)
def _advance(
    t_new: np.ndarray, q: np.ndarray, lag: float, t: np.ndarray, z: np.ndarray,
    phi: np.ndarray, c: np.ndarray,
) -> bool:  # fmt: skip
    """Move every patient's model to ``t_new`` ((N,) or (1,)); False (and nothing changed) if
    time would go backwards."""
    if not _time_ok(t_new, t):
        return False
    for i in range(t.shape[0]):
        _advance_one(i, t_new[i if t_new.shape[0] > 1 else 0], q, lag, t, z, phi, c)
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _matvec(c: np.ndarray, i: int, x: np.ndarray, out: np.ndarray) -> None:
    """``out = C_i x_i``: ``out_a = sum_b C[i, a, b] x[i, b]``, summed in the order of b.
    (Arrays are indexed by patient rather than sliced: a slice costs a reference count.)"""
    p = out.shape[0]
    for a in range(p):
        acc = 0.0
        for b in range(p):
            acc += c[i, a, b] * x[i, b]
        out[a] = acc


@numba.njit(cache=True, nogil=True, inline="always")
def _matvec2(
    c: np.ndarray, i: int, x: np.ndarray, y: np.ndarray, out_x: np.ndarray, out_y: np.ndarray
) -> None:
    """``out_x = C_i x_i`` and ``out_y = C_i y_i`` in one pass over ``C_i`` (the same sums, in
    the same order, as two :func:`_matvec`; two independent chains run faster than one)."""
    p = out_x.shape[0]
    for a in range(p):
        acc_x = 0.0
        acc_y = 0.0
        for b in range(p):
            cab = c[i, a, b]
            acc_x += cab * x[i, b]
            acc_y += cab * y[i, b]
        out_x[a] = acc_x
        out_y[a] = acc_y


@numba.njit(cache=True, nogil=True)
def _set_scene_kernel(
    t_new: np.ndarray, new_pos: np.ndarray, mask: np.ndarray, table: np.ndarray, lmax: int,
    q: np.ndarray, lag: float, t: np.ndarray, z: np.ndarray, phi: np.ndarray, c: np.ndarray,
    positions: np.ndarray,
) -> bool:  # fmt: skip
    """Advance to ``t_new``, then show ``new_pos`` ((N, K) or (1, K)) where ``mask``: the
    design ``phi = 1, sum_k table[k lmax + pos_k]`` (the intercept, then each parameter's
    coefficients)."""
    if not _advance(t_new, q, lag, t, z, phi, c):
        return False
    n, k = positions.shape
    for i in range(n):
        if not mask[i if mask.shape[0] > 1 else 0]:
            continue
        src = new_pos[i if new_pos.shape[0] > 1 else 0]
        for j in range(phi.shape[1]):
            phi[i, j] = 0.0
        for kk in range(k):
            positions[i, kk] = src[kk]
            r = kk * lmax + src[kk]
            for j in range(phi.shape[1]):
                phi[i, j] += table[r, j]
        phi[i, 0] = 1.0
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _kalman_one(
    i: int, y: float, noise: float, gate_sigma: float, z: np.ndarray, m: np.ndarray,
    c: np.ndarray, counter: np.ndarray, n_gated: np.ndarray, pz: np.ndarray,
) -> None:  # fmt: skip
    """Learn ``y = theta . z + noise`` for patient ``i``: Kalman update with ``Pz = C z``,
    innovation variance ``s = z . Pz + noise²``, innovation ``e = y - m . z``; unless ``|e| >
    gate_sigma sqrt(s)`` (then counted in ``n_gated``), ``m += Pz e / s`` and ``C -= Pz Pz' /
    s`` (exactly symmetric: ``Pz_a Pz_b = Pz_b Pz_a``)."""
    p = m.shape[1]
    _matvec(c, i, z, pz)
    s = 0.0
    pred = 0.0
    for a in range(p):
        s += z[i, a] * pz[a]
        pred += z[i, a] * m[i, a]
    s += noise * noise
    innov = y - pred
    if not abs(innov) <= gate_sigma * math.sqrt(s):
        n_gated[i] += 1
        return
    counter[i] += 1
    w = 1.0 / s
    for a in range(p):
        m[i, a] += pz[a] * (innov * w)
    for a in range(p):
        for b in range(p):
            c[i, a, b] -= pz[a] * pz[b] * w


@numba.njit(cache=True, nogil=True)
def _kalman_kernel(
    t_new: np.ndarray, y: np.ndarray, valid: np.ndarray, y_map: np.ndarray, noise: float,
    gate_sigma: float, q: np.ndarray, lag: float, t: np.ndarray, z: np.ndarray,
    phi: np.ndarray, m: np.ndarray, c: np.ndarray, counter: np.ndarray, n_gated: np.ndarray,
) -> bool:  # fmt: skip
    """Advance to ``t_new``, then learn ``y_map[0] + (y - y_map[1]) y_map[2]`` where ``valid``
    and ``y`` is finite (``y``, ``valid``: (N,) or (1,)). False (and nothing changed) if time
    would go backwards."""
    if not _time_ok(t_new, t):
        return False
    pz = np.empty(m.shape[1])
    for i in range(m.shape[0]):
        _advance_one(i, t_new[i if t_new.shape[0] > 1 else 0], q, lag, t, z, phi, c)
        yi = y_map[0] + (y[i if y.shape[0] > 1 else 0] - y_map[1]) * y_map[2]
        if math.isfinite(yi) and valid[i if valid.shape[0] > 1 else 0]:
            _kalman_one(i, yi, noise, gate_sigma, z, m, c, counter, n_gated, pz)
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _mean_var(m: np.ndarray, x: np.ndarray, px: np.ndarray, i: int) -> tuple[float, float]:
    """Patient ``i``'s prediction at design ``x[i]``: ``m . x`` and ``x' C x`` (``px = C x``)."""
    mean = 0.0
    var = 0.0
    for a in range(m.shape[1]):
        mean += x[i, a] * m[i, a]
        var += x[i, a] * px[a]
    return mean, var


@numba.njit(cache=True, nogil=True, inline="always")
def _now_one(
    m: np.ndarray, z: np.ndarray, i: int, pz: np.ndarray, out: np.ndarray, o: int,
) -> None:  # fmt: skip
    """The lagged prediction of patient ``i``: ``out[i, o : o + 2] = m . z, sqrt(z' C z)``
    (``pz = C z``)."""
    mean, var = _mean_var(m, z, pz, i)
    out[i, o] = mean
    out[i, o + 1] = math.sqrt(max(var, 0.0))


@numba.njit(cache=True, nogil=True, inline="always")
def _next_one(
    m: np.ndarray, c: np.ndarray, phi: np.ndarray, positions: np.ndarray, i: int, lmax: int,
    index: np.ndarray, value: np.ndarray, with_base: bool, pphi: np.ndarray, out: np.ndarray,
    o: int,
) -> None:  # fmt: skip
    """Steady-state prediction of the state after every action of patient ``i``, as pairs
    ``out[i, o + 2a], out[i, o + 2a + 1]`` = mean, sd. Action ``1 + 2k + d`` (parameter k,
    d = 0 up, 1 down) changes the design by ``delta`` (at most two non-zeros: ``index`` /
    ``value`` row ``(k lmax + pos_k) 2 + d``, zero for an illegal move): mean ``m . (phi +
    delta)``, variance ``(phi + delta)' C (phi + delta)``. Without ``with_base`` only the
    change: ``m . delta`` and ``delta' C delta`` (hold: 0 ± 0). ``pphi = C phi``."""
    base_mean, base_var = _mean_var(m, phi, pphi, i)
    if not with_base:
        base_mean = 0.0
        base_var = 0.0
    out[i, o] = base_mean
    out[i, o + 1] = math.sqrt(max(base_var, 0.0))
    for k in range(positions.shape[1]):
        for d in range(2):
            r = (k * lmax + positions[i, k]) * 2 + d
            i1, i2 = index[r, 0], index[r, 1]
            v1, v2 = value[r, 0], value[r, 1]
            mean = v1 * m[i, i1] + v2 * m[i, i2]
            var = v1 * v1 * c[i, i1, i1] + 2.0 * v1 * v2 * c[i, i1, i2] + v2 * v2 * c[i, i2, i2]
            if with_base:
                var += 2.0 * (v1 * pphi[i1] + v2 * pphi[i2])
            a = o + 2 * (1 + 2 * k + d)
            out[i, a] = base_mean + mean
            out[i, a + 1] = math.sqrt(max(base_var + var, 0.0))


@numba.njit(cache=True, nogil=True, inline="always")
def _sens_one(
    m: np.ndarray, c: np.ndarray, i: int, index: np.ndarray, value: np.ndarray,
    out: np.ndarray, o: int,
) -> None:  # fmt: skip
    """Whole-range sensitivity of every parameter of patient ``i``, as pairs ``out[i, o +
    2k], out[i, o + 2k + 1]``: mean ``m . d_k`` and sd ``sqrt(d_k' C d_k)`` with ``d_k`` the
    change of the design from the least to the most feared level (at most two non-zeros)."""
    for k in range(index.shape[0]):
        i1, i2 = index[k, 0], index[k, 1]
        v1, v2 = value[k, 0], value[k, 1]
        var = v1 * v1 * c[i, i1, i1] + 2.0 * v1 * v2 * c[i, i1, i2] + v2 * v2 * c[i, i2, i2]
        out[i, o + 2 * k] = v1 * m[i, i1] + v2 * m[i, i2]
        out[i, o + 2 * k + 1] = math.sqrt(max(var, 0.0))


@numba.njit(cache=True, nogil=True)
def _now_kernel(m: np.ndarray, c: np.ndarray, z: np.ndarray, out: np.ndarray) -> None:
    pz = np.empty(m.shape[1])
    for i in range(m.shape[0]):
        _matvec(c, i, z, pz)
        _now_one(m, z, i, pz, out, 0)


@numba.njit(cache=True, nogil=True)
def _next_kernel(
    m: np.ndarray, c: np.ndarray, phi: np.ndarray, positions: np.ndarray, lmax: int,
    index: np.ndarray, value: np.ndarray, with_base: bool, out: np.ndarray,
) -> None:  # fmt: skip
    pphi = np.empty(m.shape[1])
    for i in range(m.shape[0]):
        _matvec(c, i, phi, pphi)
        _next_one(m, c, phi, positions, i, lmax, index, value, with_base, pphi, out, 0)


@numba.njit(cache=True, nogil=True)
def _sens_kernel(
    m: np.ndarray, c: np.ndarray, index: np.ndarray, value: np.ndarray, out: np.ndarray
) -> None:
    for i in range(m.shape[0]):
        _sens_one(m, c, i, index, value, out, 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _observation_one(
    m: np.ndarray, c: np.ndarray, z: np.ndarray, phi: np.ndarray, positions: np.ndarray,
    i: int, lmax: int, step_index: np.ndarray, step_value: np.ndarray, sens_index: np.ndarray,
    sens_value: np.ndarray, pz: np.ndarray, pphi: np.ndarray, out: np.ndarray, o0: int,
) -> None:  # fmt: skip
    """:meth:`ResponseModel.observation` of patient ``i`` into ``out[i, o0:]``: (mean, sd)
    pairs of the prediction now, after every action, and of every parameter's sensitivity.
    ``pz``, ``pphi``: (P,) scratch."""
    _matvec2(c, i, z, phi, pz, pphi)
    _now_one(m, z, i, pz, out, o0)
    _next_one(
        m, c, phi, positions, i, lmax, step_index, step_value, True, pphi, out, o0 + 2
    )  # fmt: skip
    _sens_one(m, c, i, sens_index, sens_value, out, o0 + 4 + 4 * positions.shape[1])


@numba.njit(cache=True, nogil=True)
def _observation_kernel(
    m: np.ndarray, c: np.ndarray, z: np.ndarray, phi: np.ndarray, positions: np.ndarray,
    lmax: int, step_index: np.ndarray, step_value: np.ndarray, sens_index: np.ndarray,
    sens_value: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    pz = np.empty(m.shape[1])
    pphi = np.empty(m.shape[1])
    for i in range(m.shape[0]):
        _observation_one(
            m, c, z, phi, positions, i, lmax, step_index, step_value, sens_index, sens_value,
            pz, pphi, out, 0,
        )  # fmt: skip
