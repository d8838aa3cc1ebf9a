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
:func:`exposure_ctrl.sim.reward.reward_terms`. Ground truth (:func:`true_action_effects`, fear)
is for evaluation only and never enters an observation. All randomness enters as explicit noise arrays, so the
functions are pure: N patients in a batch give exactly what N single runs give.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

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
    "observe_suds",
    "true_action_effects",
    "true_arousal_bpm",
    "fear_of",
    "terminal",
    "next_session",
]

HR_MIN_BPM = 35.0
HR_MAX_BPM = 210.0
_RSA_FLOOR = 0.3  # RSA amplitude never falls below 30 % of its resting value
_TWO_PI = 2.0 * math.pi


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


def _row_sum(a: np.ndarray) -> np.ndarray:
    return np.einsum("nk->n", a)


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


def _psin(cycles: np.ndarray) -> np.ndarray:
    """A smooth periodic wave with period 1 (a parabolic sine, within 6 % of sin(2πx)).

    np.sin is slow on this machine's numpy build (no SIMD); breathing is not a sinusoid anyway.
    """
    y = 2.0 * (cycles - np.floor(cycles)) - 1.0  # -1..1
    return -4.0 * y * (1.0 - np.abs(y))


def transition(
    params: PatientParams,
    state: PatientState,
    positions: np.ndarray,
    noise: PatientNoise,
    grid: Grid,
) -> tuple[PatientState, PeriodTrace]:
    """Advance N patients by one decision period with the scene ``positions`` (N, K) shown from
    its start. Aborted patients keep being simulated (their heart keeps beating) but stay aborted.
    """
    p = params
    n = p.n
    S = grid.n
    P = grid.period_s
    pos = np.asarray(positions, dtype=np.int64)
    hab = state.habituation

    # -- the scene: a change is perceived after the onset delay --------------------------------
    changed = np.any(pos != state.pending, axis=1)
    pending = np.where(changed[:, None], pos, state.pending)
    pending_in = np.where(changed, p.onset_delay_s, state.pending_in_s)
    T0, raw_shown = scene_drive(p, state.shown, hab)
    has_pending = np.isfinite(pending_in)
    if has_pending.any():
        T1, raw_pending = scene_drive(p, pending, hab)
    else:  # nothing new to perceive (most periods of a single patient)
        T1, raw_pending = T0, raw_shown
    d = np.where(has_pending, np.minimum(pending_in, P), P)  # switch time within the period
    switches = has_pending & (pending_in <= P)
    shown = np.where(switches[:, None], pending, state.shown)
    pending_in = np.where(switches, np.inf, np.where(has_pending, pending_in - P, np.inf))
    T1 = np.where(switches, T1, T0)

    # -- fast fear: exact exponential approach, piecewise around the switch ---------------------
    f0 = state.fear_fast
    tau0 = np.where(T0 > f0, p.rise_tau_s, p.decay_tau_s)
    f_d = T0 + (f0 - T0) * np.exp(-d / tau0)
    tau1 = np.where(T1 > f_d, p.rise_tau_s, p.decay_tau_s)
    off = grid.offsets_s[:, None]  # (S, 1)
    before = off <= d  # (S, N)
    e0 = np.exp(-np.minimum(off, d) / tau0)
    e1 = np.exp(-np.maximum(off - d, 0.0) / tau1)
    fast = np.where(before, T0 + (f0 - T0) * e0, T1 + (f_d - T1) * e1)  # (S, N)

    # -- slow fear follows the fast component over minutes --------------------------------------
    inv_s = 1.0 / S
    fast_mean = fast.sum(axis=0) * inv_s
    slow_end = fast_mean + (state.fear_slow - fast_mean) * np.exp(-P / p.slow_tau_s)
    frac = off / P
    slow = state.fear_slow + (slow_end - state.fear_slow) * frac
    beta = p.slow_frac
    fear = (1.0 - beta) * fast + beta * slow  # (S, N)
    fear_mean = fear.sum(axis=0) * inv_s

    # -- habituation / sensitisation (per parameter shown at a feared level) --------------------
    # a more feared scene dishabituates: part of what was habituated is lost (classic
    # habituation: a novel, stronger stimulus restores the response)
    escalated = switches & (T1 > T0 + 1e-3)
    if escalated.any():
        hab = np.where(escalated[:, None] & (hab > 0), hab * (1.0 - p.dishabituation[:, None]), hab)
    act = p.activation
    gate = np.minimum(np.maximum((fear_mean - act) / (0.5 * act), 0.0), 1.0) * (fear_mean <= p.tolerance)
    excess = np.minimum(np.maximum(fear_mean / p.tolerance - 1.0, 0.0), 1.0)
    raw_now = np.where(switches[:, None], raw_pending, raw_shown)
    present = raw_now > np.maximum(0.02 * _row_sum(raw_now), 1e-9)[:, None]
    # habituation removes up to habituation_max of the current level's contribution, at a rate
    # proportional to what is left to remove; sensitisation adds up to sensitisation_max of it
    target_h = p.habituation_max[:, None] * raw_now
    target_s = -p.sensitisation_max[:, None] * raw_now
    dh = P * (
        p.habituation_per_s[:, None] * gate[:, None] * np.maximum(target_h - hab, 0.0)
        - p.sensitisation_per_s[:, None] * excess[:, None] * np.maximum(hab - target_s, 0.0)
    )
    hab_new = hab + np.where(present, dh, 0.0)

    # -- abort: time above tolerance, draining twice as fast below it ----------------------------
    n_above = (fear > p.tolerance).sum(axis=0)
    above_s = np.maximum(state.above_tolerance_s + grid.dt_s * (n_above - 2.0 * (S - n_above)), 0.0)
    aborted_now = ~state.aborted & (above_s >= p.abort_after_s)
    aborted = state.aborted | aborted_now

    # -- heart rate at the grid points ------------------------------------------------------------
    a_d = np.exp(-P / p.drift_tau_s)
    drift_end = state.drift_bpm * a_d + p.drift_sd_bpm * np.sqrt(1.0 - a_d * a_d) * noise.z[0]
    drift = state.drift_bpm + (drift_end - state.drift_bpm) * frac
    settle = state.settle_bpm * np.exp(-off / p.settle_tau_s)
    arousal = p.hr_gain_bpm * fear
    hr_all = np.empty((S + 1, n))  # at 0, dt, ..., P
    hr_all[0] = state.hr_bpm
    hr = hr_all[1:]  # (S, N)
    np.minimum(np.maximum(p.hr_rest_bpm + drift + settle + arousal, HR_MIN_BPM), HR_MAX_BPM, out=hr)

    # -- beats ----------------------------------------------------------------------------------
    t0 = state.t_s
    rsa = p.rsa_frac * np.maximum(1.0 - p.rsa_fear_drop * fear_mean, _RSA_FLOOR)
    hr_hi = float(hr_all.max()) if n else HR_MIN_BPM
    n_beats = min(noise.beat_u.shape[0], int(math.ceil(P * hr_hi / 60.0 * 1.25)) + 2)
    hr_mean = hr_all.sum(axis=0) * (1.0 / (S + 1))
    rr_est = 60.0 / hr_mean  # (N,) s
    j = np.arange(1, n_beats + 1, dtype=float)[:, None]
    tau = (state.last_beat_s - t0) + j * rr_est  # (B, N) approximate beat times in the period
    x = np.minimum(np.maximum(tau * (1.0 / grid.dt_s), 0.0), S - 1e-9)
    i0 = x.astype(np.int64)
    w = x - i0
    cols = np.arange(n)
    flat = hr_all.reshape(-1)
    h_lo = np.take(flat, i0 * n + cols)
    h_hi = np.take(flat, (i0 + 1) * n + cols)
    hr_b = h_lo + w * (h_hi - h_lo)
    cyc = state.resp_phase + p.resp_hz * tau
    rr = (60000.0 / hr_b) * (1.0 + rsa * _psin(cyc)) + (
        p.jitter_ms * math.sqrt(12.0) * (noise.beat_u[:n_beats] - 0.5)
    )
    # rare ectopic beat: premature (65 %) then compensatory (135 %)
    n_expected = P * hr_mean / 60.0
    ect = noise.ectopic_u[0] < p.ectopic_per_beat * n_expected
    if np.any(ect):
        which = np.minimum((noise.ectopic_u[1] * np.maximum(n_expected - 1.0, 1.0)).astype(np.int64), n_beats - 2)
        rows = np.arange(n_beats)[:, None]
        rr = np.where(ect & (rows == which), rr * 0.65, rr)
        rr = np.where(ect & (rows == which + 1), rr * 1.35, rr)
    rr = np.minimum(np.maximum(rr, 60000.0 / HR_MAX_BPM * 0.6), 60000.0 / HR_MIN_BPM * 1.4)
    bt = np.empty_like(rr)
    acc = state.last_beat_s.copy()
    for b in range(n_beats):  # cumulative sum, faster than np.cumsum here
        acc = acc + rr[b] * 0.001
        bt[b] = acc
    t_end = t0 + P
    valid = bt <= t_end
    last_beat = np.where(valid, bt, -np.inf).max(axis=0)
    last_beat = np.where(np.isfinite(last_beat), last_beat, state.last_beat_s)

    resp_end = state.resp_phase + p.resp_hz * P + 0.02 * noise.z[1]
    resp_end = resp_end - np.floor(resp_end)

    fear_end = fear[-1]
    new_state = PatientState(
        t_s=t_end,
        shown=shown,
        pending=pending,
        pending_in_s=pending_in,
        fear_fast=fast[-1],
        fear_slow=slow_end,
        habituation=hab_new,
        above_tolerance_s=above_s,
        aborted=aborted,
        drift_bpm=drift_end,
        settle_bpm=settle[-1],
        last_beat_s=last_beat,
        resp_phase=resp_end,
        hr_bpm=hr[-1],
    )
    trace = PeriodTrace(
        fear=fear,
        hr_bpm=hr,
        arousal_bpm=arousal,
        beat_t_s=bt,
        beat_rr_ms=rr,
        beat_valid=valid,
        aborted_now=aborted_now,
        suds=observe_suds(p, fear_end, noise.z[2]),
    )
    return new_state, trace


def observe_suds(params: PatientParams, fear: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The SUDS rating (0..100, whole numbers) the patients would give at fear ``fear``.

    A saturating monotone function of fear with a per-patient scale and bias, plus rating noise.
    """
    f = np.maximum(fear, 0.0)
    s = 100.0 * (1.0 - np.exp(-params.suds_scale * f)) + params.suds_bias + params.suds_noise * z
    return np.clip(np.round(s), 0.0, 100.0)


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
