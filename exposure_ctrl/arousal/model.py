"""Online per-patient response model: how each scene parameter moves this patient's heart rate.

A Bayesian linear model with a first-order lag, learnt by a Kalman filter, batch-first (N
patients in lockstep, arrays ``mean`` (N, P) and ``cov`` (N, P, P)).

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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
        self._suds_a = float(tg.arousal_window_bpm.low)
        self._suds_b = (tg.arousal_window_bpm.high - tg.arousal_window_bpm.low) / (
            tg.suds_window.high - tg.suds_window.low
        )
        self._suds_lo = float(tg.suds_window.low)
        scale = cfg.prior_bpm_per_intensity
        scale = float(tg.ceiling_bpm) if scale is None else float(scale)
        self._build_design(scale)
        p = self.n_coef
        n = self.n
        # patients on the last axis: numpy's elementwise loops then run over N
        self._m = np.repeat(self.prior_mean[:, None], n, axis=1)  # (P, N)
        self._c = np.repeat(np.diag(self.prior_sd**2)[:, :, None], n, axis=2)  # (P, P, N)
        self._buf = np.empty((p, p, n))
        q = np.full(p, cfg.drift_bpm_per_sqrt_min**2 / 60.0)
        q[0] = cfg.intercept_drift_bpm_per_sqrt_min**2 / 60.0
        self._q_per_s = q[:, None]
        if positions is None:
            positions = scenario.positions(scenario.safe_state)
        self.positions = np.broadcast_to(
            np.asarray(positions, dtype=np.int64), (n, scenario.n_parameters)
        ).copy()
        self._phi = self.design(self.positions).T.copy()  # (P, N)
        self._z = self._phi.copy()
        self.t = np.full(n, np.nan)
        self.n_hr_updates = np.zeros(n, dtype=np.int64)
        self.n_suds_updates = np.zeros(n, dtype=np.int64)
        self.n_gated = np.zeros(n, dtype=np.int64)
        self._actions = np.arange(scenario.n_actions)
        self._cols = np.arange(n)

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean of the coefficients, (N, P) (a view)."""
        return self._m.T

    @property
    def cov(self) -> np.ndarray:
        """Posterior covariance of the coefficients, (N, P, P) (a view)."""
        return self._c.transpose(2, 0, 1)

    @property
    def z(self) -> np.ndarray:
        """The lagged design vector, (N, P) (a view)."""
        return self._z.T

    # --- design --------------------------------------------------------------------------

    def _build_design(self, scale: float) -> None:
        sc = self.scenario
        cfg = self.config
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
        self.coef_names: tuple[str, ...] = tuple(names)
        self.coef_parameter = np.array(param_of, dtype=np.int64)
        self.coef_level = np.array(level_of, dtype=np.int64)
        self.n_coef = p
        prior_arr = np.array(prior, dtype=np.float64)
        prior_arr[0] = intercept_prior
        self.prior_mean = prior_arr
        sd = np.maximum(cfg.prior_sd_floor_bpm, cfg.prior_sd_factor * np.abs(prior_arr))
        sd[0] = cfg.intercept_sd_bpm
        self.prior_sd = sd
        tab = np.zeros((k * lmax, p))
        for i, lvl, j, v in entries:
            tab[i * lmax + lvl, j] = v
        self._table = tab
        self._lmax = lmax
        self._koff = np.arange(k) * lmax
        con = np.zeros((k, p))
        for i, c in enumerate(contrasts):
            for j, v in c.items():
                con[i, j] = v
        self._contrast = con  # (K, P): phi(most feared level) - phi(least) of one parameter
        self._sens_sparse = _sparse_rows(con)
        # change of phi when parameter k moves one level up (dir 0) or down (dir 1) from level l
        steps = np.zeros((k, lmax, 2, p))
        for i in range(k):
            nl = int(sc.n_levels[i])
            for lvl in range(nl):
                for d, to in ((0, lvl + 1), (1, lvl - 1)):
                    if 0 <= to < nl:
                        steps[i, lvl, d] = tab[i * lmax + to] - tab[i * lmax + lvl]
        self._step_sparse = _sparse_rows(steps.reshape(k * lmax * 2, p))

    def design(self, positions: np.ndarray) -> np.ndarray:
        """Design vectors of states: positions (..., K) → (..., P)."""
        pos = np.asarray(positions, dtype=np.int64)
        phi = self._table[pos + self._koff].sum(axis=-2)
        phi[..., 0] = 1.0
        return phi

    # --- time and inputs -----------------------------------------------------------------

    def _advance(self, t: np.ndarray) -> None:
        known = ~np.isnan(self.t)
        dt = np.where(known, t - np.where(known, self.t, 0.0), 0.0)
        if np.any(dt < 0):
            raise ValueError("the response model's time cannot go backwards")
        e = np.exp(-dt / self.config.lag_s)
        self._z = self._phi + (self._z - self._phi) * e
        p = self.n_coef
        diag = self._c.reshape(p * p, self.n)[:: p + 1]  # a view of the diagonal, (P, N)
        diag += self._q_per_s * dt
        self.t = t.copy()

    def set_scene(
        self,
        t: float | np.ndarray,
        positions: np.ndarray | Sequence[int],
        mask: np.ndarray | None = None,
    ) -> None:
        """The scene changed at ``t`` to ``positions`` ((N, K) or (K,)) for the patients in ``mask``."""
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.n,))
        self._advance(t)
        pos = np.broadcast_to(np.asarray(positions, dtype=np.int64), self.positions.shape)
        if mask is None:
            self.positions = pos.copy()
            self._phi = self.design(pos).T.copy()
        else:
            m = np.broadcast_to(np.asarray(mask, bool), (self.n,))
            self.positions = np.where(m[:, None], pos, self.positions)
            self._phi = np.where(m[None, :], self.design(pos).T, self._phi)

    def observe_hr(
        self, t: float | np.ndarray, hr_above_bpm: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Learn from the smoothed heart rate above baseline at ``t`` (N,), where ``valid``."""
        self._kalman(t, hr_above_bpm, valid, self.config.hr_noise_bpm, self.n_hr_updates)

    def observe_suds(
        self, t: float | np.ndarray, suds: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Learn from SUDS ratings (0..100) at ``t`` (N,), where ``valid``."""
        self._kalman(
            t, self.suds_to_bpm(suds), valid, self.config.suds_noise_bpm, self.n_suds_updates
        )

    def suds_to_bpm(self, suds: np.ndarray | float) -> np.ndarray:
        """The arousal (bpm above baseline) a SUDS rating stands for in this model."""
        return self._suds_a + (np.asarray(suds, dtype=np.float64) - self._suds_lo) * self._suds_b

    def _kalman(
        self,
        t: float | np.ndarray,
        y: np.ndarray,
        valid: np.ndarray | None,
        noise: float,
        counter: np.ndarray,
    ) -> None:
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (self.n,))
        self._advance(t)
        y = np.broadcast_to(np.asarray(y, dtype=np.float64), (self.n,))
        ok = np.isfinite(y)
        if valid is not None:
            ok &= np.broadcast_to(np.asarray(valid, bool), (self.n,))
        if not ok.any():
            return
        z = self._z
        pz = np.einsum("pqn,qn->pn", self._c, z)
        s = (z * pz).sum(axis=0) + noise * noise
        innov = np.where(ok, y - (z * self._m).sum(axis=0), 0.0)
        gate = np.abs(innov) <= self.config.gate_sigma * np.sqrt(s)
        use = ok & gate
        self.n_gated += ok & ~gate
        counter += use
        w = use / s  # 0 where not used
        self._m += pz * (innov * w)
        buf = self._buf
        np.multiply(pz[:, None, :], pz[None, :, :], out=buf)  # exactly symmetric
        buf *= w
        self._c -= buf

    def put_rows(self, rows: np.ndarray | Sequence[int], src: ResponseModel) -> None:
        """Overwrite patients ``rows`` with the patients of ``src`` (a model of ``len(rows)``
        patients of the same scenario and settings)."""
        rows = np.asarray(rows, dtype=np.int64)
        if src.n != len(rows):
            raise ValueError(f"src holds {src.n} patients for {len(rows)} rows")
        if src.config != self.config or src.coef_names != self.coef_names:
            raise ValueError("put_rows needs models of the same scenario and settings")
        self._m[:, rows] = src._m
        self._c[:, :, rows] = src._c
        self._phi[:, rows] = src._phi
        self._z[:, rows] = src._z
        for name in ("positions", "t", "n_hr_updates", "n_suds_updates", "n_gated"):
            getattr(self, name)[rows] = getattr(src, name)

    # --- outputs -------------------------------------------------------------------------

    def predict(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steady-state arousal (bpm above baseline) of states ``positions`` of shape (N, ..., K):
        mean and sd of the *expected* value (model uncertainty, not the noise), each (N, ...)."""
        phi = self.design(positions)
        shape = phi.shape
        flat = phi.reshape(self.n, -1, self.n_coef)
        mean = np.einsum("nap,pn->na", flat, self._m)
        cp = np.einsum("nap,pqn->naq", flat, self._c)
        var = np.einsum("naq,naq->na", cp, flat)
        return mean.reshape(shape[:-1]), np.sqrt(np.maximum(var, 0.0)).reshape(shape[:-1])

    def predict_now(self) -> tuple[np.ndarray, np.ndarray]:
        """The lagged prediction of the current arousal (what the heart rate should read now)."""
        z = self._z
        pz = np.einsum("pqn,qn->pn", self._c, z)
        return (z * self._m).sum(axis=0), np.sqrt(np.maximum((z * pz).sum(axis=0), 0.0))

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
        phi = self._phi
        m, c = self._m, self._c
        pphi = np.einsum("pqn,qn->pn", c, phi)
        base_mean = (m * phi).sum(axis=0)
        base_var = (phi * pphi).sum(axis=0)
        k = self.scenario.n_parameters
        a_param = np.repeat(np.arange(k), 2)  # action 1 + 2k + d → parameter k, direction d
        a_dir = np.tile([0, 1], k)
        level = self.positions.T[a_param]  # (2K, N)
        row = (a_param[:, None] * self._lmax + level) * 2 + a_dir[:, None]
        mean_d, var_d = self._sparse_quadratic(self._step_sparse, row, m, c, pphi)
        mean = np.empty((self.n, 1 + 2 * k))
        var = np.empty((self.n, 1 + 2 * k))
        mean[:, 0] = base_mean
        var[:, 0] = base_var
        mean[:, 1:] = (base_mean + mean_d).T
        var[:, 1:] = (base_var + var_d).T
        return mean, np.sqrt(np.maximum(var, 0.0))

    def action_effects(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted steady-state change of arousal each action would cause from the current
        scene (bpm): mean and sd, each (N, 1 + 2K); hold and illegal actions give 0 ± 0."""
        k = self.scenario.n_parameters
        a_param = np.repeat(np.arange(k), 2)
        a_dir = np.tile([0, 1], k)
        row = (a_param[:, None] * self._lmax + self.positions.T[a_param]) * 2 + a_dir[:, None]
        mean_d, var_d = self._sparse_quadratic(self._step_sparse, row, self._m, self._c, None)
        mean = np.zeros((self.n, 1 + 2 * k))
        sd = np.zeros((self.n, 1 + 2 * k))
        mean[:, 1:] = mean_d.T
        sd[:, 1:] = np.sqrt(np.maximum(var_d, 0.0)).T
        return mean, sd

    def _sparse_quadratic(
        self,
        sparse: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        row: np.ndarray,
        m: np.ndarray,
        c: np.ndarray,
        pphi: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """For vectors d with at most two non-zeros (rows of a sparse table, ``row`` (A, N)):
        ``d . m`` and ``2 d . pphi + d' C d`` (or ``d' C d`` without ``pphi``), each (A, N)."""
        i1t, v1t, i2t, v2t = sparse
        i1, v1, i2, v2 = i1t[row], v1t[row], i2t[row], v2t[row]
        n, p = self.n, self.n_coef
        cols = self._cols
        f1 = i1 * n + cols  # flat indices into (P, N) arrays
        f2 = i2 * n + cols
        mean = v1 * np.take(m, f1) + v2 * np.take(m, f2)
        cf = c.reshape(-1)
        var = v1 * v1 * np.take(cf, i1 * (p * n) + f1)
        var += 2.0 * v1 * v2 * np.take(cf, i1 * (p * n) + f2)
        var += v2 * v2 * np.take(cf, i2 * (p * n) + f2)
        if pphi is not None:
            var += 2.0 * (v1 * np.take(pphi, f1) + v2 * np.take(pphi, f2))
        return mean, var

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
        k = self.scenario.n_parameters
        row = np.broadcast_to(np.arange(k)[:, None], (k, self.n))
        mean, var = self._sparse_quadratic(self._sens_sparse, row, self._m, self._c, None)
        return mean.T, np.sqrt(np.maximum(var, 0.0)).T

    def coef_sd(self) -> np.ndarray:
        """Standard deviation of every coefficient, (N, P)."""
        p = self.n_coef
        return np.sqrt(np.maximum(self._c.reshape(p * p, self.n)[:: p + 1], 0.0)).T

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
        names = ["model_now_bpm", "model_now_sd_bpm"]
        for a in range(self.scenario.n_actions):
            act = "hold" if a == 0 else self.scenario.describe_action(a).replace(" ", "_")
            names += [f"model_next_{act}_bpm", f"model_next_{act}_sd_bpm"]
        for pid in self.scenario.parameter_ids:
            names += [f"model_sens_{pid}_bpm", f"model_sens_{pid}_sd_bpm"]
        return tuple(names)

    @property
    def observation_size(self) -> int:
        return 2 + 2 * self.scenario.n_actions + 2 * self.scenario.n_parameters

    def observation(self, out: np.ndarray | None = None) -> np.ndarray:
        """Fixed-size estimates for the policies, (N, observation_size), in bpm (see names):
        the lagged prediction now; the steady-state prediction after each action (illegal
        actions: as hold); the whole-range sensitivity of each parameter; each with its sd."""
        o = np.empty((self.n, self.observation_size)) if out is None else out
        o[:, 0], o[:, 1] = self.predict_now()
        na = self.scenario.n_actions
        mean, sd = self.predict_next()
        o[:, 2 : 2 + 2 * na : 2] = mean
        o[:, 3 : 3 + 2 * na : 2] = sd
        sm, ss = self.sensitivity_arrays()
        b = 2 + 2 * na
        o[:, b::2] = sm
        o[:, b + 1 :: 2] = ss
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


def _sparse_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows with at most two non-zeros as (first index, value, second index, value) arrays."""
    n = rows.shape[0]
    i1 = np.zeros(n, dtype=np.int64)
    i2 = np.zeros(n, dtype=np.int64)
    v1 = np.zeros(n)
    v2 = np.zeros(n)
    for r in range(n):
        nz = np.flatnonzero(rows[r])
        if len(nz) > 2:
            raise AssertionError("a design change touches more than two coefficients")
        if len(nz) >= 1:
            i1[r], v1[r] = nz[0], rows[r, nz[0]]
        if len(nz) == 2:
            i2[r], v2[r] = nz[1], rows[r, nz[1]]
    return i1, v1, i2, v2
