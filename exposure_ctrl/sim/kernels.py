"""The simulator's compiled arithmetic: one decision period of N patients and their sensors.

Every number the simulator computes during a period is computed here, by plain Python loops
over scalars that numba compiles (``@numba.njit(cache=True)``; the compiled code is cached in
``__pycache__``, so only the first process after a change pays the compile time). The batched
simulator (N = 1024) and a single environment (N = 1) call the *same* kernels: the loop over
patients is the outermost loop and patient ``i`` only ever reads and writes column / row ``i``,
so a patient in a batch evolves exactly as it does alone (DESIGN invariant 6).

The model these functions implement is described in :mod:`exposure_ctrl.sim.patient` (fear,
habituation, heart, SUDS), :mod:`exposure_ctrl.sim.stimulus` (scene → drive) and
:mod:`exposure_ctrl.sim.sensors` (strap and wrist sensor); those modules hold the typed
dataclasses and the thin Python wrappers around these kernels. Everything lives in this one
file because numba's cache is invalidated per source file: a kernel calling a kernel of another
file would keep running a stale copy of it after an edit.

Conventions: arrays are time-major like the dataclasses ((S, N) grid samples, (B, N) beats);
the patient parameters arrive packed as one (len(PARAM_ROWS), N) matrix (built once per
parameter set by :meth:`~exposure_ctrl.sim.patient.PatientParams.kernel_args`) and are unpacked into
named locals at the top of :func:`transition_rows`; state arrays are updated in place. Randomness
arrives as arrays of draws (the one generator is never touched here). ``error_model="numpy"``:
a division by zero gives inf/NaN as numpy would, never an exception. Each patient's work is
written inline in the loop over patients rather than as a function called per patient: numba
passes every array argument of a call as a struct, and with some forty of them a call per
patient cost more than the patient's arithmetic.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from exposure_ctrl.sensors.sample import Quality

__all__ = [
    "PARAM_ROWS",
    "SCALARS",
    "FLOAT_STATE_ROWS",
    "HR_MIN_BPM",
    "HR_MAX_BPM",
    "RR_TICK_MS",
    "SENSOR_STRAP",
    "SENSOR_WRIST",
    "drive_of",
    "drive_rows",
    "suds_of",
    "suds_rows",
    "transition_rows",
    "sensor_rows",
    "period_rows",
    "period_rows_parallel",
    "run_rows",
    "reward_of",
    "session_rows",
    "observation_rows",
    "safety_rows",
    "exposure_clock_rows",
]

HR_MIN_BPM = 35.0
HR_MAX_BPM = 210.0
RR_TICK_MS = 1000.0 / 1024.0
"""RR resolution of the Heart Rate Measurement characteristic (1/1024 s)."""
_INV_RR_TICK = 1.0 / RR_TICK_MS
_RSA_FLOOR = 0.3  # RSA amplitude never falls below 30 % of its resting value
_SQRT12 = math.sqrt(12.0)
_RR_MIN_MS = 60000.0 / HR_MAX_BPM * 0.6
_RR_MAX_MS = 60000.0 / HR_MIN_BPM * 1.4
_NO_CONTACT = int(Quality.NO_CONTACT)

SENSOR_STRAP = 0
SENSOR_WRIST = 1

SCALARS: tuple[str, ...] = (
    "hr_rest_bpm",
    "hr_gain_bpm",
    "drift_sd_bpm",
    "drift_tau_s",
    "settle_bpm",
    "settle_tau_s",
    "rsa_frac",
    "rsa_fear_drop",
    "resp_hz",
    "jitter_ms",
    "ectopic_per_beat",
    "onset_delay_s",
    "rise_tau_s",
    "decay_tau_s",
    "slow_tau_s",
    "slow_frac",
    "habituation_per_s",
    "habituation_max",
    "sensitisation_per_s",
    "sensitisation_max",
    "dishabituation",
    "activation",
    "tolerance",
    "abort_after_s",
    "retention",
    "suds_scale",
    "suds_bias",
    "suds_noise",
)
"""The patients' scalar parameters in sampling order (:mod:`exposure_ctrl.sim.cohorts` samples
them in this order: part of the reproducibility contract; changing it changes every patient)."""

PARAM_ROWS = tuple(name for name in SCALARS if name not in ("settle_bpm", "retention"))
"""The scalar parameters the kernels read, in the order of the packed matrix's rows (the
resting-rate settling offset only starts the state; retention acts between sessions)."""

# row numbers of the packed parameter matrix, from the names (module globals are compile-time
# constants for numba)
_p = PARAM_ROWS.index
_HR_REST, _HR_GAIN, _DRIFT_SD, _DRIFT_TAU = _p("hr_rest_bpm"), _p("hr_gain_bpm"), _p("drift_sd_bpm"), _p("drift_tau_s")
_SETTLE_TAU, _RSA_FRAC, _RSA_DROP, _RESP_HZ = _p("settle_tau_s"), _p("rsa_frac"), _p("rsa_fear_drop"), _p("resp_hz")
_JITTER, _ECTOPIC, _ONSET, _RISE_TAU = _p("jitter_ms"), _p("ectopic_per_beat"), _p("onset_delay_s"), _p("rise_tau_s")
_DECAY_TAU, _SLOW_TAU, _SLOW_FRAC = _p("decay_tau_s"), _p("slow_tau_s"), _p("slow_frac")
_HAB_RATE, _HAB_MAX = _p("habituation_per_s"), _p("habituation_max")
_SENS_RATE, _SENS_MAX, _DISHAB = _p("sensitisation_per_s"), _p("sensitisation_max"), _p("dishabituation")
_ACTIVATION, _TOLERANCE, _ABORT_AFTER = _p("activation"), _p("tolerance"), _p("abort_after_s")
_SUDS_SCALE, _SUDS_BIAS, _SUDS_NOISE = _p("suds_scale"), _p("suds_bias"), _p("suds_noise")

FLOAT_STATE_ROWS = (
    "t_s",
    "pending_in_s",
    "fear_fast",
    "fear_slow",
    "above_tolerance_s",
    "drift_bpm",
    "settle_bpm",
    "last_beat_s",
    "resp_phase",
    "hr_bpm",
)
"""The patient state's float (N,) arrays in the order of the simulator's packed state rows."""
_s = FLOAT_STATE_ROWS.index
_ST_T, _ST_PENDING_IN, _ST_FAST, _ST_SLOW = _s("t_s"), _s("pending_in_s"), _s("fear_fast"), _s("fear_slow")
_ST_ABOVE, _ST_DRIFT, _ST_SETTLE = _s("above_tolerance_s"), _s("drift_bpm"), _s("settle_bpm")
_ST_LAST_BEAT, _ST_RESP, _ST_HR = _s("last_beat_s"), _s("resp_phase"), _s("hr_bpm")
del _p, _s

_jit = numba.njit(cache=True, error_model="numpy")


# --- scene → drive ------------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy", inline="always")
def drive_of(
    level_drive, level_gain, interaction, drive_scale, i, positions, habituation, hab_max, sens_max, raw, a
):
    """Drive of patient ``i`` at ``positions[i]`` (K,) with habituated contributions
    ``habituation[i]`` (K,), never negative; writes the raw contributions to ``raw`` (K,)
    (``a`` is scratch).

    A contribution ``raw`` loses at most ``hab_max * raw`` to habituation and gains at most
    ``sens_max * raw`` from sensitisation.
    """
    k_n = positions.shape[1]
    total = 0.0
    for k in range(k_n):
        r = level_drive[i, k, positions[i, k]]
        raw[k] = r
        a[k] = r - min(max(habituation[i, k], -sens_max * r), hab_max * r)
        total += a[k]
    if k_n > 1:
        quad = 0.0
        for j in range(k_n):
            v = 0.0
            for k in range(k_n):
                v += interaction[i, k, j] * a[k]
            quad += v * a[j]
        total = total + quad
    gain = level_gain[i, 0, positions[i, 0]]
    for k in range(1, k_n):
        gain *= level_gain[i, k, positions[i, k]]
    return max(total * gain * drive_scale[i], 0.0)


@_jit
def drive_rows(
    level_drive, level_gain, interaction, drive_scale, positions, habituation, hab_max, sens_max, drive, raw
):
    """:func:`drive_of` for every patient: ``drive`` (N,) and ``raw`` (N, K) are written."""
    k_n = positions.shape[1]
    r = np.empty(k_n)
    a = np.empty(k_n)
    for i in range(positions.shape[0]):
        drive[i] = drive_of(
            level_drive, level_gain, interaction, drive_scale, i, positions, habituation, hab_max[i], sens_max[i], r, a
        )
        for k in range(k_n):
            raw[i, k] = r[k]


# --- SUDS ---------------------------------------------------------------------------------------


@_jit
def suds_of(scale, bias, noise, fear, z):
    """The SUDS rating (0..100, whole numbers) at ``fear``: saturating in fear, plus a bias and
    rating noise ``noise * z``."""
    s = 100.0 * (1.0 - math.exp(-scale * max(fear, 0.0))) + bias + noise * z
    return min(max(np.rint(s), 0.0), 100.0)


@_jit
def suds_rows(scale, bias, noise, fear, z, out):
    for i in range(fear.shape[0]):
        out[i] = suds_of(scale[i], bias[i], noise[i], fear[i], z[i])


# --- the patients, one period --------------------------------------------------------------------


@_jit
def _psin(cycles):
    """A smooth periodic wave with period 1 (a parabolic sine, within 6 % of sin(2πx))."""
    y = 2.0 * (cycles - math.floor(cycles)) - 1.0  # -1..1
    return -4.0 * y * (1.0 - abs(y))


@_jit
def transition_rows(
    # parameters
    prm, level_drive, level_gain, interaction, drive_scale,
    # state (updated in place)
    t_s, shown, pending, pending_in_s, fear_fast, fear_slow, habituation, above_tolerance_s, aborted,
    drift_bpm, settle_bpm, last_beat_s, resp_phase, hr_bpm,
    # the scene from the period's start, the draws, the grid
    positions, beat_u, ectopic_u, z, offsets, period_s, dt_s,
    # the trace (outputs)
    fear_o, hr_o, arousal_o, beat_t_o, beat_rr_o, beat_valid_o, aborted_now_o, suds_o,
    # the patients to advance: lo .. hi - 1
    lo, hi,
):
    """Advance patients ``lo`` .. ``hi - 1`` by one decision period (see
    :mod:`exposure_ctrl.sim.patient`).

    One iteration of the loop is one patient; it reads and writes only that patient's row of
    the state and column of the trace (so disjoint ranges may run on different threads).
    """
    k_n = positions.shape[1]
    n_s = offsets.shape[0]
    P = period_s
    raw_shown = np.empty(k_n)
    raw_pending = np.empty(k_n)
    tmp = np.empty(k_n)
    fast = np.empty(n_s)
    for i in range(lo, hi):
        hab_max = prm[_HAB_MAX, i]
        sens_max = prm[_SENS_MAX, i]
        rise_tau = prm[_RISE_TAU, i]
        decay_tau = prm[_DECAY_TAU, i]
        slow_frac = prm[_SLOW_FRAC, i]
        tolerance = prm[_TOLERANCE, i]
        hr_rest = prm[_HR_REST, i]
        hr_gain = prm[_HR_GAIN, i]

        # -- the scene: a change is perceived after the onset delay -------------------------------
        changed = False
        for k in range(k_n):
            if positions[i, k] != pending[i, k]:
                changed = True
        if changed:
            for k in range(k_n):
                pending[i, k] = positions[i, k]
            pending_in = prm[_ONSET, i]
        else:
            pending_in = pending_in_s[i]
        T0 = drive_of(
            level_drive, level_gain, interaction, drive_scale, i, shown, habituation, hab_max, sens_max, raw_shown, tmp
        )
        has_pending = math.isfinite(pending_in)
        switches = has_pending and pending_in <= P
        T1 = T0
        if switches:
            T1 = drive_of(
                level_drive, level_gain, interaction, drive_scale, i, pending, habituation, hab_max, sens_max,
                raw_pending, tmp,
            )
        d = min(pending_in, P) if has_pending else P  # switch time within the period
        if switches:
            for k in range(k_n):
                shown[i, k] = pending[i, k]
            pending_in_s[i] = np.inf
        elif has_pending:
            pending_in_s[i] = pending_in - P
        else:
            pending_in_s[i] = np.inf
        raw_now = raw_pending if switches else raw_shown

        # -- fast fear: exact exponential approach, piecewise around the switch -------------------
        f0 = fear_fast[i]
        tau0 = rise_tau if T0 > f0 else decay_tau
        f_d = T0 + (f0 - T0) * math.exp(-d / tau0)
        tau1 = rise_tau if T1 > f_d else decay_tau
        fast_sum = 0.0
        for s in range(n_s):
            off = offsets[s]
            if off <= d:
                fast[s] = T0 + (f0 - T0) * math.exp(-min(off, d) / tau0)
            else:
                fast[s] = T1 + (f_d - T1) * math.exp(-max(off - d, 0.0) / tau1)
            fast_sum += fast[s]

        # -- slow fear follows the fast component over minutes ------------------------------------
        inv_s = 1.0 / n_s
        fast_mean = fast_sum * inv_s
        slow0 = fear_slow[i]
        slow_end = fast_mean + (slow0 - fast_mean) * math.exp(-P / prm[_SLOW_TAU, i])
        fear_sum = 0.0
        n_above = 0
        for s in range(n_s):
            slow = slow0 + (slow_end - slow0) * (offsets[s] / P)
            f = (1.0 - slow_frac) * fast[s] + slow_frac * slow
            fear_o[s, i] = f
            fear_sum += f
            if f > tolerance:
                n_above += 1
        fear_mean = fear_sum * inv_s

        # -- habituation / sensitisation (per parameter shown at a feared level) ------------------
        # a more feared scene dishabituates: part of what was habituated is lost
        if switches and T1 > T0 + 1e-3:
            keep = 1.0 - prm[_DISHAB, i]
            for k in range(k_n):
                if habituation[i, k] > 0:
                    habituation[i, k] = habituation[i, k] * keep
        act = prm[_ACTIVATION, i]
        gate = min(max((fear_mean - act) / (0.5 * act), 0.0), 1.0) * (1.0 if fear_mean <= tolerance else 0.0)
        excess = min(max(fear_mean / tolerance - 1.0, 0.0), 1.0)
        raw_sum = 0.0
        for k in range(k_n):
            raw_sum += raw_now[k]
        floor = max(0.02 * raw_sum, 1e-9)
        hab_rate = prm[_HAB_RATE, i] * gate
        sens_rate = prm[_SENS_RATE, i] * excess
        for k in range(k_n):
            if raw_now[k] > floor:  # the parameter is shown at a feared level
                # habituation removes up to hab_max of the current level's contribution, at a rate
                # proportional to what is left to remove; sensitisation adds up to sens_max of it
                target_h = hab_max * raw_now[k]
                target_s = -sens_max * raw_now[k]
                h = habituation[i, k]
                dh = hab_rate * max(target_h - h, 0.0) - sens_rate * max(h - target_s, 0.0)
                habituation[i, k] = h + P * dh

        # -- abort: time above tolerance, draining twice as fast below it -------------------------
        above_s = max(above_tolerance_s[i] + dt_s * (n_above - 2.0 * (n_s - n_above)), 0.0)
        above_tolerance_s[i] = above_s
        now = (not aborted[i]) and above_s >= prm[_ABORT_AFTER, i]
        aborted_now_o[i] = now
        if now:
            aborted[i] = True

        # -- heart rate at the grid points --------------------------------------------------------
        a_d = math.exp(-P / prm[_DRIFT_TAU, i])
        drift0 = drift_bpm[i]
        drift_end = drift0 * a_d + prm[_DRIFT_SD, i] * math.sqrt(1.0 - a_d * a_d) * z[0, i]
        settle0 = settle_bpm[i]
        settle_tau = prm[_SETTLE_TAU, i]
        hr0 = hr_bpm[i]
        hr_sum = hr0
        settle = settle0
        for s in range(n_s):
            frac = offsets[s] / P
            drift = drift0 + (drift_end - drift0) * frac
            settle = settle0 * math.exp(-offsets[s] / settle_tau)
            arousal = hr_gain * fear_o[s, i]
            arousal_o[s, i] = arousal
            h = min(max(hr_rest + drift + settle + arousal, HR_MIN_BPM), HR_MAX_BPM)
            hr_o[s, i] = h
            hr_sum += h

        # -- beats: one by one until the period's end ---------------------------------------------
        t0 = t_s[i]
        t_end = t0 + P
        rsa = prm[_RSA_FRAC, i] * max(1.0 - prm[_RSA_DROP, i] * fear_mean, _RSA_FLOOR)
        hr_mean = hr_sum * (1.0 / (n_s + 1))
        rr_est = 60.0 / hr_mean  # s
        lb0 = last_beat_s[i]
        resp0 = resp_phase[i]
        resp_hz = prm[_RESP_HZ, i]
        jitter = prm[_JITTER, i] * _SQRT12
        inv_dt = 1.0 / dt_s
        # rare ectopic beat: premature (65 %) then compensatory (135 %)
        n_expected = P * hr_mean / 60.0
        which = -2
        if ectopic_u[0, i] < prm[_ECTOPIC, i] * n_expected:
            which = int(ectopic_u[1, i] * max(n_expected - 1.0, 1.0))
        n_b = beat_u.shape[0]
        acc = lb0
        last = lb0
        b = 0
        while b < n_b:
            tau = (lb0 - t0) + (b + 1) * rr_est  # approximate beat time in the period
            x = min(max(tau * inv_dt, 0.0), n_s - 1e-9)
            i0 = int(x)
            w = x - i0
            h_lo = hr0 if i0 == 0 else hr_o[i0 - 1, i]
            h_hi = hr_o[i0, i]
            hr_b = h_lo + w * (h_hi - h_lo)
            rr = (60000.0 / hr_b) * (1.0 + rsa * _psin(resp0 + resp_hz * tau)) + jitter * (beat_u[b, i] - 0.5)
            if b == which:
                rr = rr * 0.65
            elif b == which + 1:
                rr = rr * 1.35
            rr = min(max(rr, _RR_MIN_MS), _RR_MAX_MS)
            acc = acc + rr * 0.001
            beat_t_o[b, i] = acc
            beat_rr_o[b, i] = rr
            if acc > t_end:
                break
            beat_valid_o[b, i] = True
            last = acc
            b += 1
        for bb in range(b, n_b):  # unused slots
            beat_valid_o[bb, i] = False
            if bb > b:
                beat_t_o[bb, i] = np.nan
                beat_rr_o[bb, i] = np.nan
        last_beat_s[i] = last

        resp_end = resp0 + resp_hz * P + 0.02 * z[1, i]
        resp_phase[i] = resp_end - math.floor(resp_end)

        fear_end = fear_o[n_s - 1, i]
        suds_o[i] = suds_of(prm[_SUDS_SCALE, i], prm[_SUDS_BIAS, i], prm[_SUDS_NOISE, i], fear_end, z[2, i])
        t_s[i] = t_end
        fear_fast[i] = fast[n_s - 1]
        fear_slow[i] = slow_end
        drift_bpm[i] = drift_end
        settle_bpm[i] = settle
        hr_bpm[i] = hr_o[n_s - 1, i]


# --- the sensors, one period ---------------------------------------------------------


@_jit
def sensor_rows(
    kind, outages, lag_s, noise_bpm,
    outage_left_s, last_bpm, lagged_bpm,
    beat_t, beat_rr, beat_valid, hr, t0, last_beat_before,
    su, sz, offsets, period_s, dt_s,
    t_o, bpm_o, rr_o, n_rr_o, contact_o, flags_o, present_o, disconnected_o,
    lo, hi,
):
    """The notifications of one period of patients ``lo`` .. ``hi - 1`` (see
    :mod:`exposure_ctrl.sim.sensors`); like :func:`transition_rows`, a patient's iteration
    touches that patient's entries only.

    ``kind``: :data:`SENSOR_STRAP` or :data:`SENSOR_WRIST`; ``outages`` (3, 3): per outage
    process (contact loss, dropout, disconnect) the onsets per minute and the shortest and
    longest duration (s); ``lag_s``, ``noise_bpm``: the wrist sensor's. ``t0`` (N,) is the
    period's start, ``last_beat_before`` (N,) the last beat before it. The sensor state
    (``outage_left_s``, ``last_bpm``, ``lagged_bpm``) is updated in place.
    """
    n_s = offsets.shape[0]
    P = period_s
    m = rr_o.shape[2]
    inside = np.empty((3, n_s), dtype=np.bool_)
    for i in range(lo, hi):
        # -- outages: time left from before, or a new onset within the period ---------------------
        for c in range(3):
            lc = outage_left_s[i, c]
            per_min = outages[c, 0]
            after = max(lc - P, 0.0)
            onset = False
            start = 0.0
            end = 0.0
            if per_min > 0.0:
                onset = su[3 * c, i] < per_min / 60.0 * P and lc < P
                if onset:
                    start = su[3 * c + 1, i] * P
                    end = start + outages[c, 1] + su[3 * c + 2, i] * (outages[c, 2] - outages[c, 1])
                    after = max(end - P, 0.0)
            outage_left_s[i, c] = after
            for s in range(n_s):
                off = offsets[s]
                inside[c, s] = off <= lc or (onset and off >= start and off < end)
        for s in range(n_s):
            t_o[s, i] = t0[i] + offsets[s]
            present_o[s, i] = not (inside[1, s] or inside[2, s])
            disconnected_o[s, i] = inside[2, s]
            for r in range(m):
                rr_o[s, i, r] = np.nan

        if kind == SENSOR_WRIST:  # optical: a lagging, noisy rate; no RR, no contact bit
            a = math.exp(-dt_s / lag_s)
            x = lagged_bpm[i]
            last = last_bpm[i]
            for s in range(n_s):
                x = a * x + (1.0 - a) * hr[s, i]
                bpm = np.rint(x + noise_bpm * sz[s, i])
                bpm_o[s, i] = bpm
                n_rr_o[s, i] = 0
                contact_o[s, i] = -1
                flags_o[s, i] = 0
                if present_o[s, i]:
                    last = bpm
            lagged_bpm[i] = x
            last_bpm[i] = last
            continue

        # -- chest strap: each notification carries the beats since the previous one --------------
        n_valid = 0
        while n_valid < beat_valid.shape[0] and beat_valid[n_valid, i]:
            n_valid += 1
        b = 0
        last = last_bpm[i]
        for s in range(n_s):
            first = b
            if s < n_s - 1:
                t_slot = t0[i] + offsets[s]
                while b < n_valid and beat_t[b, i] <= t_slot:
                    b += 1
            else:
                b = n_valid  # the last slot ends with the period
            k = b - first
            if k > 0:
                # sum of a slot's RR intervals = time from the beat before it to its last beat
                prev = beat_t[first - 1, i] if first > 0 else last_beat_before[i]
                span_ms = 1000.0 * (beat_t[b - 1, i] - prev)
                last = np.rint(60000.0 * k / span_ms)  # the mean rate of the slot's beats
                for r in range(min(k, m)):
                    rr_o[s, i, r] = np.rint(beat_rr[first + r, i] * _INV_RR_TICK) * RR_TICK_MS
            bpm_o[s, i] = last  # a slot without a beat repeats the previous value
            n_rr_o[s, i] = min(k, m)
            contact_o[s, i] = 1
            flags_o[s, i] = 0
            if inside[0, s]:  # contact lost: the strap says so, sends bpm 0 and no RR
                bpm_o[s, i] = 0.0
                for r in range(m):
                    rr_o[s, i, r] = np.nan
                n_rr_o[s, i] = 0
                contact_o[s, i] = 0
                flags_o[s, i] = _NO_CONTACT
        last_bpm[i] = last


# --- the simulator's period: patients, then their sensors ----------------------------------------


@_jit
def period_rows(
    prm, level_drive, level_gain, interaction, drive_scale,
    fs, shown, pending, habituation, aborted,
    kind, outages, lag_s, noise_bpm, outage_left_s, last_bpm, lagged_bpm,
    positions, u, z, n_beats, offsets, period_s, dt_s,
    fear_o, hr_o, arousal_o, beat_t_o, beat_rr_o, beat_valid_o, aborted_now_o, suds_o,
    t_o, bpm_o, rr_o, n_rr_o, contact_o, flags_o, present_o, disconnected_o,
    lo, hi,
):
    """One period of patients ``lo`` .. ``hi - 1`` (all: 0, N) wearing sensors, in one call
    from Python: :func:`transition_rows` then :func:`sensor_rows`. ``u`` (n_beats + 11, N) and
    ``z`` (3 [+ S for a wrist sensor], N) are the period's draws in the layout of
    :class:`~exposure_ctrl.sim.noise.NoiseLayout`. ``fs`` is the patient state's float arrays
    packed as rows (``FLOAT_STATE_ROWS``; one argument instead of ten: numba's per-call cost
    grows with the number of array arguments). Only the range's entries are read and written."""
    n = positions.shape[0]
    t0 = np.empty(n)  # the state's times before the period (the sensor needs them)
    last_beat_before = np.empty(n)
    for i in range(lo, hi):
        t0[i] = fs[_ST_T, i]
        last_beat_before[i] = fs[_ST_LAST_BEAT, i]
    transition_rows(
        prm, level_drive, level_gain, interaction, drive_scale,
        fs[_ST_T], shown, pending, fs[_ST_PENDING_IN], fs[_ST_FAST], fs[_ST_SLOW], habituation, fs[_ST_ABOVE],
        aborted, fs[_ST_DRIFT], fs[_ST_SETTLE], fs[_ST_LAST_BEAT], fs[_ST_RESP], fs[_ST_HR],
        positions, u[:n_beats], u[n_beats : n_beats + 2], z[:3], offsets, period_s, dt_s,
        fear_o, hr_o, arousal_o, beat_t_o, beat_rr_o, beat_valid_o, aborted_now_o, suds_o, lo, hi,
    )
    sensor_rows(
        kind, outages, lag_s, noise_bpm, outage_left_s, last_bpm, lagged_bpm,
        beat_t_o, beat_rr_o, beat_valid_o, hr_o, t0, last_beat_before,
        u[n_beats + 2 : n_beats + 11], z[3:], offsets, period_s, dt_s,
        t_o, bpm_o, rr_o, n_rr_o, contact_o, flags_o, present_o, disconnected_o, lo, hi,
    )


@numba.njit(cache=True, error_model="numpy", parallel=True)
def period_rows_parallel(
    prm, level_drive, level_gain, interaction, drive_scale,
    fs, shown, pending, habituation, aborted,
    kind, outages, lag_s, noise_bpm, outage_left_s, last_bpm, lagged_bpm,
    positions, u, z, n_beats, offsets, period_s, dt_s,
    fear_o, hr_o, arousal_o, beat_t_o, beat_rr_o, beat_valid_o, aborted_now_o, suds_o,
    t_o, bpm_o, rr_o, n_rr_o, contact_o, flags_o, present_o, disconnected_o,
    chunks,
):
    """:func:`period_rows` of all N patients split into ``chunks`` contiguous ranges that
    numba's threads compute at once (``prange``). Each patient's arithmetic is the same code on
    the same draws, so the result equals one range's bit for bit, whatever the number of chunks
    or threads (tests/sim/test_parallel.py)."""
    n = positions.shape[0]
    for c in numba.prange(chunks):
        period_rows(
            prm, level_drive, level_gain, interaction, drive_scale,
            fs, shown, pending, habituation, aborted,
            kind, outages, lag_s, noise_bpm, outage_left_s, last_bpm, lagged_bpm,
            positions, u, z, n_beats, offsets, period_s, dt_s,
            fear_o, hr_o, arousal_o, beat_t_o, beat_rr_o, beat_valid_o, aborted_now_o, suds_o,
            t_o, bpm_o, rr_o, n_rr_o, contact_o, flags_o, present_o, disconnected_o,
            c * n // chunks, (c + 1) * n // chunks,
        )


# --- reward and session bookkeeping ----------------------------------------------------------------


@_jit
def reward_of(weights, arousal, i, low, high, ceiling, progress, changed, blocked, aborted, terms):
    """Patient ``i``'s reward of one period (see :mod:`exposure_ctrl.sim.reward`): writes the
    unweighted terms to ``terms`` (6,) and returns the weighted total.

    ``weights`` (6,): window, ceiling, progress, change, blocked, abort; ``arousal`` (S, N) is
    the fear-driven heart-rate rise on the period's grid.
    """
    n_s = arousal.shape[0]
    n_in = 0
    n_over = 0
    for s in range(n_s):
        x = arousal[s, i]
        if x >= low and x <= high:
            n_in += 1
        if x > ceiling:
            n_over += 1
    in_w = n_in / n_s
    over = n_over / n_s
    terms[0] = in_w
    terms[1] = over
    terms[2] = progress
    terms[3] = changed
    terms[4] = blocked
    terms[5] = aborted
    return (
        weights[0] * in_w
        - weights[1] * over
        + weights[2] * progress
        - weights[3] * changed
        - weights[4] * blocked
        - weights[5] * aborted
    )


@_jit
def session_rows(
    weights, arousal, low, high, ceiling, period_s, exposure_max_s,
    proposed, executed, go_safe, reason, changed, active, aborted_now, latched, step_index,
    max_step, in_window_s, since_change_s, latched_s, exposure_s, ended,
    terms, total, aborted, completed, terminated, executed_o,
):
    """A session's bookkeeping after one period, for every row (see
    :meth:`exposure_ctrl.sim.batch.SessionBatch.step`): hierarchy progress, the shield's
    refusals, the reward, time in the window, time since the last scene change and in a latched
    shield, and the end of the session (aborted, or ``exposure_max_s`` of exposure completed).

    ``executed``, ``go_safe`` and ``reason`` are the shield's verdict (reason 0: the proposal
    passed); ``step_index`` the hierarchy index of the scene shown. Updates ``max_step`` ...
    ``ended`` in place; writes ``terms`` (6, N) (in_window, above_ceiling, progress, changed,
    blocked, aborted), ``total``, the flags and ``executed_o`` (the executed action, -1 for the
    safe state). Returns whether any session ended.
    """
    t = np.empty(6)
    any_end = False
    P = period_s
    for i in range(arousal.shape[1]):
        progress = max(step_index[i] - max_step[i], 0)
        max_step[i] = max(max_step[i], step_index[i])
        policy_changed = changed[i] and reason[i] == 0
        blocked = proposed[i] != 0 and reason[i] != 0 and executed[i] != proposed[i]
        ab = aborted_now[i] and active[i]
        total[i] = reward_of(
            weights, arousal, i, low, high, ceiling, float(progress),
            1.0 if policy_changed else 0.0, 1.0 if blocked else 0.0, 1.0 if ab else 0.0, t,
        )
        for j in range(6):
            terms[j, i] = t[j]
        in_window_s[i] += t[0] * P
        since_change_s[i] = P if changed[i] else since_change_s[i] + P
        latched_s[i] = latched_s[i] + P if latched[i] else 0.0
        done = active[i] and not ab and exposure_s[i] >= exposure_max_s - 1e-9
        aborted[i] = ab
        completed[i] = done
        terminated[i] = ab or done
        ended[i] = ended[i] or ab or done
        any_end = any_end or ab or done
        executed_o[i] = -1 if go_safe[i] else executed[i]
    return any_end


# --- what the policy and the shield see ----------------------------------------------------------


@_jit
def observation_rows(
    tracker_obs, divisor, positions, levels_minus_one, exposure_s, exposure_max_s, low, high, out
):
    """The policies' observation (see :mod:`exposure_ctrl.sim.observation`) into ``out``
    (N, D) float32: the tracker's columns divided by ``divisor``, each position over its number
    of levels minus one, the exposure time's fraction; clipped to ``low`` .. ``high``."""
    n_t = tracker_obs.shape[1]
    k_n = positions.shape[1]
    for i in range(out.shape[0]):
        for j in range(n_t):
            out[i, j] = tracker_obs[i, j] / divisor[j]
        for k in range(k_n):
            out[i, n_t + k] = positions[i, k] / levels_minus_one[k]
        out[i, n_t + k_n] = exposure_s[i] / exposure_max_s
        for j in range(out.shape[1]):
            out[i, j] = np.minimum(np.maximum(out[i, j], low[j]), high[j])


@_jit
def safety_rows(tracker_obs, hr_bpm, stale_col, above_col, since_clean_col, hr_o, above_o, blind_o):
    """The shield's heart-rate inputs from the tracker's (unscaled) observation: the absolute
    rate, the rise above baseline (NaN while the rate is unknown) and the seconds without a clean
    sample (inf when stale and never known)."""
    for i in range(hr_bpm.shape[0]):
        hr = hr_bpm[i]
        unknown = math.isnan(hr)
        hr_o[i] = hr
        above_o[i] = np.nan if unknown else tracker_obs[i, above_col]
        stale = tracker_obs[i, stale_col] > 0.5
        blind_o[i] = np.inf if (stale and unknown) else tracker_obs[i, since_clean_col]


@_jit
def exposure_clock_rows(exposure_s, period_s, every_s, due):
    """Advance the exposure clocks by one period (in place); ``due`` marks the rows for which a
    multiple of ``every_s`` was passed (a SUDS rating is due). Returns whether any is due."""
    any_due = False
    for i in range(exposure_s.shape[0]):
        before = exposure_s[i]
        after = before + period_s
        exposure_s[i] = after
        d = math.floor(after / every_s + 1e-9) > math.floor(before / every_s + 1e-9)
        due[i] = d
        any_due = any_due or d
    return any_due


@_jit
def run_rows(
    prm, level_drive, level_gain, interaction, drive_scale,
    fs, shown, pending, habituation, aborted,
    kind, outages, lag_s, noise_bpm, outage_left_s, last_bpm, lagged_bpm,
    positions, u_all, z_all, n_beats, offsets, period_s, dt_s,
    t_o, bpm_o, rr_o, n_rr_o, contact_o, flags_o, present_o, disconnected_o,
):
    """:func:`period_rows` for ``u_all.shape[0]`` periods in a row with the same scene; the
    sensors' frames of all periods are written one after the other along the slot axis (the
    trace of each period is discarded)."""
    n = positions.shape[0]
    n_s = offsets.shape[0]
    n_b = u_all.shape[1] - 11
    fear = np.empty((n_s, n))
    hr = np.empty((n_s, n))
    arousal = np.empty((n_s, n))
    beat_t = np.empty((n_b, n))
    beat_rr = np.empty((n_b, n))
    beat_valid = np.empty((n_b, n), dtype=np.bool_)
    aborted_now = np.empty(n, dtype=np.bool_)
    suds = np.empty(n)
    for p in range(u_all.shape[0]):
        a, b = p * n_s, (p + 1) * n_s  # this period's slots
        period_rows(
            prm, level_drive, level_gain, interaction, drive_scale,
            fs, shown, pending, habituation, aborted,
            kind, outages, lag_s, noise_bpm, outage_left_s, last_bpm, lagged_bpm,
            positions, u_all[p], z_all[p], n_beats, offsets, period_s, dt_s,
            fear, hr, arousal, beat_t, beat_rr, beat_valid, aborted_now, suds,
            t_o[a:b], bpm_o[a:b], rr_o[a:b], n_rr_o[a:b], contact_o[a:b], flags_o[a:b],
            present_o[a:b], disconnected_o[a:b], 0, n,
        )
