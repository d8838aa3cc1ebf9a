"""The simulated patient: pure, batch-first dynamics of N patients (numpy arrays, patient axis).

Shape of the model (every default and its source is in ``docs/simulator.md``):

**Scene → drive.** Each patient has a true response to the scenario's parameters
(:class:`PatientParams` ``level_drive``, ``interaction``, ``level_gain``): the *drive* of a scene
is the sum of its parameters' contributions (each damped by the patient's habituation to that
parameter), plus pairwise interaction terms, times the multiplicative factors of soothing
parameters and gates, times ``drive_scale`` so that the top of the hierarchy has drive 1 for an
unhabituated patient. See :func:`scene_drive`.

**Drive → latent fear.** A newly shown scene is perceived after an onset delay; a fast
component follows the drive with a rise time constant when it goes up and a (longer) decay time
constant when it goes down; a slow component follows the fast one over minutes. Fear is their
mix, ``(1 - slow_frac) * fast + slow_frac * slow``, so at steady state fear equals drive.

**Habituation and sensitisation.** While fear is moderate (between ``activation`` and
``tolerance``), habituation to every parameter shown at a feared level removes part of that
parameter's contribution, growing towards ``habituation_max`` of the current level's
contribution (a dual-process, Groves & Thompson-like decrement; no habituation without
activated fear, as emotional processing theory has it). It is specific to the level: what was
removed at a low level is a smaller share of a higher level's contribution (graded exposure has
to climb). Each escalation to a more feared scene loses ``dishabituation`` of it (a novel,
stronger stimulus restores the response), so climbing faster than habituation proceeds piles up
fear. Above ``tolerance`` it reverses (sensitisation: up to ``sensitisation_max`` of the
contribution is added). Between sessions ``retention`` of it is kept.

**Abort.** Time spent above tolerance accumulates (and drains twice as fast below it); when it
reaches ``abort_after_s`` the patient removes the headset: the session is over.

**Heart.** Heart rate = resting + slow drift (Ornstein-Uhlenbeck) + a settling term at the start
of the session + ``hr_gain_bpm * fear``. Beats are generated one by one: each RR interval is the
heart period at that moment, modulated by respiratory sinus arrhythmia (whose amplitude falls
with fear) plus beat-to-beat jitter and rare ectopic beats, so RR intervals and RMSSD behave.

**SUDS.** A noisy monotone function of fear with a per-patient bias and scale (reported fear and
heart rate agree only loosely).

Functions follow Gymnasium's functional style: :func:`initial`, :func:`transition` (one decision
period), :func:`terminal`; the observation functions are the sensor models
(:func:`exposure_ctrl.sim.sensors.sensor_step`) and :func:`observe_suds`, the reward is
:func:`exposure_ctrl.sim.kernels.reward_of` (weights in
:class:`exposure_ctrl.sim.reward.RewardConfig`). Ground truth (:func:`true_action_effects`, fear)
is for evaluation only and never enters an observation. All randomness enters as explicit noise arrays, so the
functions are pure: N patients in a batch give exactly what N single runs give.

The arithmetic of a period is compiled: :func:`exposure_ctrl.sim.kernels.transition_rows` (plain
Python loops over the patients that numba compiles); :func:`transition` runs it on a copy of the
state, the batched simulator runs it in place, followed by the sensor's kernel in the same call.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from exposure_ctrl.sim import kernels as K
from exposure_ctrl.sim.kernels import HR_MAX_BPM, HR_MIN_BPM
from exposure_ctrl.sim.stimulus import tables_drive

__all__ = [
    "HR_MIN_BPM",
    "HR_MAX_BPM",
    "PatientParams",
    "PatientState",
    "PatientNoise",
    "PeriodTrace",
    "Grid",
    "make_grid",
    "beats_capacity",
    "scene_drive",
    "initial",
    "transition",
    "state_arrays",
    "own_state",
    "own_state_packed",
    "empty_trace",
    "trace_arrays",
    "observe_suds",
    "true_action_effects",
    "true_arousal_bpm",
    "fear_of",
    "terminal",
    "next_session",
]



@dataclasses.dataclass(frozen=True)
class PatientParams:
    """True parameters of N patients (arrays; the first axis is the patient).

    Fear is dimensionless: 0 is calm, 1 is the steady-state fear of this patient at the top of
    the scenario's hierarchy before any habituation. Tables over levels have shape (N, K, L)
    with L the most levels of any parameter (padding never used).
    """

    # heart
    hr_rest_bpm: np.ndarray
    hr_gain_bpm: np.ndarray  # heart-rate rise at fear 1 (top of the hierarchy, unhabituated)
    drift_sd_bpm: np.ndarray  # stationary SD of the slow resting-rate drift
    drift_tau_s: np.ndarray
    settle_bpm: np.ndarray  # extra heart rate at the start of the session (sitting down)
    settle_tau_s: np.ndarray
    rsa_frac: np.ndarray  # RSA amplitude at rest, fraction of the RR interval
    rsa_fear_drop: np.ndarray  # fractional fall of the RSA amplitude per unit fear
    resp_hz: np.ndarray  # breathing rate
    jitter_ms: np.ndarray  # SD of the beat-to-beat jitter
    ectopic_per_beat: np.ndarray
    # fear dynamics
    onset_delay_s: np.ndarray
    rise_tau_s: np.ndarray
    decay_tau_s: np.ndarray
    slow_tau_s: np.ndarray
    slow_frac: np.ndarray
    # habituation, sensitisation, abort, retention
    habituation_per_s: np.ndarray
    habituation_max: np.ndarray
    sensitisation_per_s: np.ndarray
    sensitisation_max: np.ndarray
    dishabituation: np.ndarray  # fraction of habituation lost when a more feared scene appears
    activation: np.ndarray  # fear at which habituation starts (full at 1.5 times this)
    tolerance: np.ndarray  # fear above which the patient sensitises and heads for an abort
    abort_after_s: np.ndarray
    retention: np.ndarray  # fraction of habituation kept to the next session
    # scene response
    level_drive: np.ndarray  # (N, K, L) contribution of parameter k at level l (before scaling)
    level_gain: np.ndarray  # (N, K, L) multiplicative factor of parameter k at level l
    interaction: np.ndarray  # (N, K, K) strictly upper-triangular pair coefficients
    drive_scale: np.ndarray  # (N,) 1 / raw drive at the hierarchy's top
    # SUDS
    suds_scale: np.ndarray
    suds_bias: np.ndarray
    suds_noise: np.ndarray

    @property
    def n(self) -> int:
        return int(self.hr_rest_bpm.shape[0])

    @property
    def n_parameters(self) -> int:
        return int(self.level_drive.shape[1])

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """The parameters as the kernels take them: the scalar parameters packed as one
        (len(:data:`~exposure_ctrl.sim.kernels.PARAM_ROWS`), N) matrix, then ``level_drive``,
        ``level_gain``, ``interaction`` and ``drive_scale`` (C-ordered float64).

        Built once per parameter set and kept: change parameters with ``dataclasses.replace``,
        never by writing into their arrays.
        """
        args = self.__dict__.get("_kernel_args")
        if args is None:
            f = np.float64
            args = (
                np.stack([np.asarray(getattr(self, name), dtype=f) for name in K.PARAM_ROWS]),
                np.ascontiguousarray(self.level_drive, dtype=f),
                np.ascontiguousarray(self.level_gain, dtype=f),
                np.ascontiguousarray(self.interaction, dtype=f),
                np.ascontiguousarray(self.drive_scale, dtype=f),
            )
            object.__setattr__(self, "_kernel_args", args)
        return args


@dataclasses.dataclass(frozen=True)
class PatientState:
    """Dynamic state of N patients at the start of a decision period."""

    t_s: np.ndarray  # session time (s)
    shown: np.ndarray  # (N, K) positions the patient perceives
    pending: np.ndarray  # (N, K) positions shown but not yet perceived
    pending_in_s: np.ndarray  # seconds until ``pending`` is perceived (inf: nothing pending)
    fear_fast: np.ndarray
    fear_slow: np.ndarray
    habituation: np.ndarray  # (N, K) contribution removed per parameter; negative = sensitised
    above_tolerance_s: np.ndarray
    aborted: np.ndarray  # bool
    drift_bpm: np.ndarray
    settle_bpm: np.ndarray
    last_beat_s: np.ndarray  # session time of the last beat
    resp_phase: np.ndarray  # breathing phase at t_s, in cycles (0..1)
    hr_bpm: np.ndarray  # true heart rate at t_s (without RSA and jitter)


def fear_of(params: PatientParams, state: PatientState) -> np.ndarray:
    """Latent fear of every patient at ``state.t_s``."""
    return (1.0 - params.slow_frac) * state.fear_fast + params.slow_frac * state.fear_slow


def true_arousal_bpm(params: PatientParams, state: PatientState) -> np.ndarray:
    """Fear-driven heart-rate rise (bpm above the true resting rate, no drift or noise)."""
    return params.hr_gain_bpm * fear_of(params, state)


@dataclasses.dataclass(frozen=True)
class PatientNoise:
    """The random numbers one decision period consumes, time-major (draws, N).

    ``beat_u``: uniform (0, 1), one per potential beat (jitter); ``ectopic_u``: 2 uniforms (does
    an ectopic beat occur, which beat); ``z``: 3 standard normals (drift, breathing-phase wander,
    SUDS rating noise).
    """

    beat_u: np.ndarray  # (B, N)
    ectopic_u: np.ndarray  # (2, N)
    z: np.ndarray  # (3, N)


@dataclasses.dataclass(frozen=True)
class Grid:
    """The sample grid of one decision period: ``S`` points ``dt_s`` apart, ending at the period end."""

    period_s: float
    n: int
    dt_s: float
    offsets_s: np.ndarray  # (S,) = dt, 2 dt, ..., period

    @property
    def S(self) -> int:  # noqa: N802 - the conventional name
        return self.n


def make_grid(period_s: float, sample_interval_s: float = 1.0) -> Grid:
    """About one sample per ``sample_interval_s`` (a strap notifies about once a second)."""
    s = max(1, int(round(period_s / sample_interval_s)))
    dt = period_s / s
    return Grid(period_s=float(period_s), n=s, dt_s=dt, offsets_s=dt * np.arange(1, s + 1))


def beats_capacity(period_s: float) -> int:
    """Most beats a period can hold (at the maximum heart rate with full RSA shortening)."""
    return int(math.ceil(period_s * HR_MAX_BPM / 60.0 * 1.25)) + 2


@dataclasses.dataclass(frozen=True)
class PeriodTrace:
    """What happened during one decision period (time-major arrays; ground truth included).

    ``fear``, ``hr_bpm`` and ``arousal_bpm`` are sampled at the grid points; beats are in
    ``beat_t_s`` (session time of each beat), ``beat_rr_ms`` (the RR interval ending at it) and
    ``beat_valid`` (slots past the period's end are unused).
    """

    fear: np.ndarray  # (S, N)
    hr_bpm: np.ndarray  # (S, N) true heart rate without RSA and jitter
    arousal_bpm: np.ndarray  # (S, N) hr_gain_bpm * fear
    beat_t_s: np.ndarray  # (B, N)
    beat_rr_ms: np.ndarray  # (B, N)
    beat_valid: np.ndarray  # (B, N)
    aborted_now: np.ndarray  # (N,) the patient aborted during this period
    suds: np.ndarray  # (N,) SUDS the patient would report at the period's end (0..100)


# --- scene → drive -----------------------------------------------------------------------------


def scene_drive(
    params: PatientParams, positions: np.ndarray, habituation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drive of the scenes at ``positions`` (N, K) given the habituated contributions (N, K).

    Returns ``(drive (N,), raw contributions (N, K))``; the raw contributions (before
    habituation and scaling) tell which parameters are shown at a feared level.
    """
    return tables_drive(
        params.level_drive,
        params.level_gain,
        params.interaction,
        params.drive_scale,
        np.asarray(positions, dtype=np.int64),
        habituation,
        params.habituation_max,
        params.sensitisation_max,
    )


# --- initial state ------------------------------------------------------------------------------


def initial(
    params: PatientParams,
    positions: np.ndarray,
    z: np.ndarray,
    u: np.ndarray,
    habituation: np.ndarray | None = None,
) -> PatientState:
    """A patient sitting down at the start of a session, shown ``positions`` (N, K).

    ``z`` (N,) standard normal draws start the drift at its stationary distribution, ``u`` (N,)
    uniform draws start the breathing cycle; ``habituation`` carries over from a previous session
    (see :func:`next_session`), zero by default.
    """
    n = params.n
    pos = np.asarray(positions, dtype=np.int64).reshape(n, -1).copy()
    hab = np.zeros((n, params.n_parameters)) if habituation is None else np.array(habituation, dtype=float)
    drive, _ = scene_drive(params, pos, hab)
    drift = params.drift_sd_bpm * np.asarray(z, dtype=float)
    settle = params.settle_bpm.copy()
    hr = np.clip(
        params.hr_rest_bpm + drift + settle + params.hr_gain_bpm * drive, HR_MIN_BPM, HR_MAX_BPM
    )
    return PatientState(
        t_s=np.zeros(n),
        shown=pos,
        pending=pos.copy(),
        pending_in_s=np.full(n, np.inf),
        fear_fast=drive.copy(),
        fear_slow=drive.copy(),
        habituation=hab,
        above_tolerance_s=np.zeros(n),
        aborted=np.zeros(n, dtype=bool),
        drift_bpm=drift,
        settle_bpm=settle,
        last_beat_s=np.zeros(n),
        resp_phase=np.asarray(u, dtype=float).copy(),
        hr_bpm=hr,
    )


def terminal(state: PatientState) -> np.ndarray:
    """True where the patient has aborted (removed the headset): that session is over."""
    return state.aborted.copy()


def next_session(params: PatientParams, habituation: np.ndarray) -> np.ndarray:
    """Habituation (N, K) at the end of a session → at the start of the next: ``retention`` of
    it is kept (partial return of fear)."""
    return params.retention[:, None] * habituation


# --- one decision period ------------------------------------------------------------------------


def state_arrays(state: PatientState) -> tuple[np.ndarray, ...]:
    """The state's arrays in the kernels' argument order (they update them in place)."""
    return (
        state.t_s,
        state.shown,
        state.pending,
        state.pending_in_s,
        state.fear_fast,
        state.fear_slow,
        state.habituation,
        state.above_tolerance_s,
        state.aborted,
        state.drift_bpm,
        state.settle_bpm,
        state.last_beat_s,
        state.resp_phase,
        state.hr_bpm,
    )


def own_state(state: PatientState) -> PatientState:
    """A copy whose arrays are fresh, C-ordered and of the kernels' dtypes (float64, int64 for
    positions, bool for ``aborted``): safe to update in place."""
    return own_state_packed(state)[0]


def own_state_packed(state: PatientState) -> tuple[PatientState, tuple[np.ndarray, ...]]:
    """:func:`own_state`, whose float (N,) arrays are the rows of one (10, N) block (in the
    order of :data:`~exposure_ctrl.sim.kernels.FLOAT_STATE_ROWS`), and the arguments the
    simulator's kernels take for it: ``(block, shown, pending, habituation, aborted)``."""
    n = np.shape(state.t_s)[0]
    block = np.empty((len(K.FLOAT_STATE_ROWS), n))
    for j, name in enumerate(K.FLOAT_STATE_ROWS):
        block[j] = getattr(state, name)
    rows = dict(zip(K.FLOAT_STATE_ROWS, block, strict=True))
    own = PatientState(
        shown=np.array(state.shown, dtype=np.int64, order="C"),
        pending=np.array(state.pending, dtype=np.int64, order="C"),
        habituation=np.array(state.habituation, dtype=np.float64, order="C"),
        aborted=np.array(state.aborted, dtype=bool),
        **rows,
    )
    return own, (block, own.shown, own.pending, own.habituation, own.aborted)


def empty_trace(n: int, s: int, b: int) -> PeriodTrace:
    """Uninitialised trace arrays for N patients, S grid points and B beat slots."""
    return PeriodTrace(
        fear=np.empty((s, n)),
        hr_bpm=np.empty((s, n)),
        arousal_bpm=np.empty((s, n)),
        beat_t_s=np.empty((b, n)),
        beat_rr_ms=np.empty((b, n)),
        beat_valid=np.empty((b, n), dtype=bool),
        aborted_now=np.empty(n, dtype=bool),
        suds=np.empty(n),
    )


def trace_arrays(trace: PeriodTrace) -> tuple[np.ndarray, ...]:
    """The trace's arrays in the kernels' argument order (they write them)."""
    return (
        trace.fear,
        trace.hr_bpm,
        trace.arousal_bpm,
        trace.beat_t_s,
        trace.beat_rr_ms,
        trace.beat_valid,
        trace.aborted_now,
        trace.suds,
    )


def _c(a: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def transition(
    params: PatientParams,
    state: PatientState,
    positions: np.ndarray,
    noise: PatientNoise,
    grid: Grid,
) -> tuple[PatientState, PeriodTrace]:
    """Advance N patients by one decision period with the scene ``positions`` (N, K) shown from
    its start. Aborted patients keep being simulated (their heart keeps beating) but stay aborted.

    Pure: ``state`` is left as it is. The arithmetic is :func:`exposure_ctrl.sim.kernels.transition_rows`
    (the batched simulator runs the same kernel in place, fused with the sensor's).
    """
    new = own_state(state)
    n = params.n
    trace = empty_trace(n, grid.n, noise.beat_u.shape[0])
    K.transition_rows(
        *params.kernel_args(),
        *state_arrays(new),
        _c(np.broadcast_to(positions, new.shown.shape), np.int64),
        _c(noise.beat_u),
        _c(noise.ectopic_u),
        _c(noise.z),
        grid.offsets_s,
        grid.period_s,
        grid.dt_s,
        *trace_arrays(trace),
        0,
        n,
    )
    return new, trace


def observe_suds(params: PatientParams, fear: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The SUDS rating (0..100, whole numbers) the patients would give at fear ``fear``.

    A saturating monotone function of fear with a per-patient scale and bias, plus rating noise
    (:func:`exposure_ctrl.sim.kernels.suds_of`).
    """
    out = np.empty(params.n)
    K.suds_rows(_c(params.suds_scale), _c(params.suds_bias), _c(params.suds_noise), _c(fear), _c(z), out)
    return out


# --- ground truth for evaluation ------------------------------------------------------------------


def true_action_effects(
    params: PatientParams, state: PatientState, positions: np.ndarray, n_levels: np.ndarray
) -> np.ndarray:
    """Steady-state change of the fear-driven heart rate (bpm) each action would cause now.

    Shape (N, 1 + 2K) in the action layout (0 hold, ``1 + 2k`` parameter k up, ``2 + 2k`` down);
    impossible moves are NaN. Uses the current habituation: this is what an ideal response model
    would estimate at this moment. For evaluation only.
    """
    pos = np.asarray(positions, dtype=np.int64)
    n, k = pos.shape
    base, _ = scene_drive(params, pos, state.habituation)
    out = np.full((n, 1 + 2 * k), np.nan)
    out[:, 0] = 0.0
    for kk in range(k):
        for direction, col in ((1, 1 + 2 * kk), (-1, 2 + 2 * kk)):
            new = pos.copy()
            new[:, kk] += direction
            ok = (new[:, kk] >= 0) & (new[:, kk] < n_levels[kk])
            new[:, kk] = np.clip(new[:, kk], 0, n_levels[kk] - 1)
            d, _ = scene_drive(params, new, state.habituation)
            out[:, col] = np.where(ok, params.hr_gain_bpm * (d - base), np.nan)
    return out
