"""Arousal features of N patients, updated sample by sample from numpy arrays (batch-first).

One implementation for the live controller (N = 1, fed :class:`HeartSample` objects through
:meth:`FeatureState.add`) and the vectorised simulator (N patients in lockstep, fed arrays
through :meth:`FeatureState.update` or :meth:`FeatureState.update_block`). Train/serve skew is
a bug (DESIGN.md invariant 6).

Usage::

    fs = FeatureState(scenario, n=N)
    fs.begin_baseline(t)                          # baseline phase: neutral scene
    fs.update(t, bpm, rr, rr_count, contact, present)   # every sample slot, arrays of N
    base = fs.finish_baseline(t)                  # BaselineResult; sets the baseline
    fs.set_scene(t, positions)                    # every scene change, positions (N, K)
    fs.set_suds(t, suds, mask)                    # every SUDS rating
    obs = fs.observe(t)                           # (N, N_FEATURES), layout FEATURE_NAMES

Inputs of one sample slot (``update``), arrays over N patients:

- ``t``: time, monotonic seconds, scalar (lockstep) or (N,); never decreasing per patient.
  Slots without a sample (``present`` False) may carry any time, even NaN.
- ``bpm`` (N,): reported heart rate.
- ``rr_ms`` (N, R): RR intervals of the sample, oldest first, NaN-padded (or None).
- ``rr_count`` (N,): how many of the R slots hold an interval (default: the finite ones).
- ``contact`` (N,): 1 contact, 0 no contact, -1 not reported (bool arrays work too).
- ``present`` (N,): which patients have a sample in this slot (others are left untouched).
- ``flags`` (N,): :class:`Quality` bits set by the source (e.g. ``DEVICE_ERROR``).

It returns the sample's quality flags (N,), int64 (:class:`Quality` bits), for the record.
Everything is O(1) per sample: exponential filters and fixed rings of time bins (see
:mod:`exposure_ctrl.arousal.bins`); nothing re-scans a window. ``update_block`` takes a leading
axis of S samples and gives exactly the result of S ``update`` calls.

The feature vector (``observe``) has a fixed layout, :data:`FEATURE_NAMES` (index with
:class:`Feature`), in the units of :data:`FEATURE_UNITS`; ``observe(t, scaled=True)`` divides by
:data:`FEATURE_SCALES` for neural policies. Every value is finite. docs/arousal.md gives each
feature's formula.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numba
import numpy as np

from exposure_ctrl._threads import chunks_for, parallel_ok
from exposure_ctrl.arousal._inputs import ALL, BOOL, F8, I8, INT8, as_slots, as_vector
from exposure_ctrl.arousal.artifacts import (
    FLAG_ORDER,
    RR_ECTOPIC_,
    RR_IMPOSSIBLE_,
    UNTRUSTED_RR,
    UNUSABLE_BPM,
    ArtifactConfig,
    ring_median,
    ring_push,
    sample_flags,
)
from exposure_ctrl.arousal.baseline import BaselineConfig, BaselineEstimator, BaselineResult
from exposure_ctrl.arousal.bins import TimeBins, bin_slot
from exposure_ctrl.sensors.sample import HeartSample, Quality

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_SCALES",
    "FEATURE_UNITS",
    "N_FEATURES",
    "Feature",
    "FeatureConfig",
    "FeatureState",
    "SampleBlock",
    "pack_samples",
]


class Feature(enum.IntEnum):
    """Column of each feature in the observation (``obs[:, Feature.HR_ABOVE_BPM]``)."""

    HR_ABOVE_BPM = 0  # smoothed heart rate minus resting baseline
    HR_SLOPE_BPM_PER_MIN = 1  # exponentially weighted least-squares slope of heart rate
    AROUSAL_NORM = 2  # (hr_above - window.low) / (window.high - window.low)
    CEILING_MARGIN_BPM = 3  # ceiling_bpm - hr_above (negative: above the ceiling)
    HARD_MAX_MARGIN_BPM = 4  # hard_max_bpm - smoothed absolute heart rate
    IN_WINDOW_FRAC = 5  # fraction of the recent observed time inside the window
    ABOVE_WINDOW_FRAC = 6  # fraction of the recent observed time above the window
    RMSSD_MS = 7  # RMSSD of clean RR over the last ~60 s (0 when not valid)
    RMSSD_VALID = 8  # 1 when >= rmssd_min_s of clean RR back it
    RMSSD_REL = 9  # RMSSD / baseline RMSSD (1 when either is unknown)
    INTENSITY = 10  # current scene intensity (0..1)
    SINCE_SCENE_CHANGE_S = 11  # seconds since the last scene change
    AT_INTENSITY_S = 12  # seconds at the current intensity
    PEAK_ABOVE_BPM = 13  # peak hr_above since the current intensity began
    FALL_FROM_PEAK_BPM = 14  # peak - hr_above (>= 0)
    FALL_FROM_PEAK_FRAC = 15  # fall / peak (0..1; 0 while the peak is <= 0)
    SUDS = 16  # latest SUDS rating (0..100; 0 when none)
    SUDS_AGE_S = 17  # seconds since the latest SUDS rating (0 when none)
    SUDS_KNOWN = 18  # 1 once a SUDS rating was given
    SINCE_CLEAN_S = 19  # seconds since the last sample with usable bpm
    STALE = 20  # 1 when since_clean_s > stale_after_s
    CLEAN_FRAC = 21  # fraction of the last ~60 s of samples that were fully clean
    BASELINE_KNOWN = 22  # 1 once a resting baseline was set


FEATURE_NAMES: tuple[str, ...] = tuple(f.name.lower() for f in Feature)
"""Feature names in observation order."""

N_FEATURES = len(FEATURE_NAMES)

FEATURE_UNITS: dict[str, str] = {
    "hr_above_bpm": "bpm",
    "hr_slope_bpm_per_min": "bpm/min",
    "arousal_norm": "1 (0 = window low, 1 = window high)",
    "ceiling_margin_bpm": "bpm",
    "hard_max_margin_bpm": "bpm",
    "in_window_frac": "fraction",
    "above_window_frac": "fraction",
    "rmssd_ms": "ms",
    "rmssd_valid": "0/1",
    "rmssd_rel": "ratio",
    "intensity": "0..1",
    "since_scene_change_s": "s",
    "at_intensity_s": "s",
    "peak_above_bpm": "bpm",
    "fall_from_peak_bpm": "bpm",
    "fall_from_peak_frac": "fraction",
    "suds": "0..100",
    "suds_age_s": "s",
    "suds_known": "0/1",
    "since_clean_s": "s",
    "stale": "0/1",
    "clean_frac": "fraction",
    "baseline_known": "0/1",
}

FEATURE_SCALES: np.ndarray = np.array(
    [10, 10, 1, 10, 50, 1, 1, 50, 1, 1, 1, 60, 60, 10, 10, 1, 100, 60, 1, 5, 1, 1, 1],
    dtype=np.float64,
)
"""Typical magnitude of each feature; ``observe(scaled=True)`` divides by it."""


# --- state layout --------------------------------------------------------------------------
# Every patient's scalar state is one row of FeatureState._st (float64), its counters one row of
# FeatureState._cnt (int64); the columns are named here. The public attributes (``hr``,
# ``baseline_bpm``, ``n_samples``, ...) are views of these columns.
(
    _T0, _T_PRESENT, _T_USABLE, _HR, _S0, _S1, _S2, _SY, _STY, _T_REF, _LAST_RR, _BASE_BPM,
    _BASE_KNOWN, _BASE_RMSSD, _INTENSITY, _T_SCENE, _T_LEVEL, _PEAK_HR, _SUDS, _T_SUDS,
) = range(20)  # fmt: skip
_N_STATE = 20
_N_SAMPLES, _N_RR, _N_RR_IMPOSSIBLE, _N_RR_ECTOPIC, _N_RR_UNTRUSTED = range(5)
_RING_POS = 5  # where the next plausible RR interval goes in the ring
_N_FLAG0 = 6  # then one counter per FLAG_ORDER entry
_N_COUNTS = _N_FLAG0 + len(FLAG_ORDER)

# channels of the time bins
_IN_S, _ABOVE_S, _OBS_S, _PRESENT_N, _CLEAN_N, _RR_SUMSQ, _RR_NDIFF, _RR_COVER_MS = range(8)
_N_CHANNELS = 8
_FLAG_VALUES = np.array([int(f) for f in FLAG_ORDER], dtype=np.int64)

# settings, as one float64 array for the kernels (FeatureState._cfg)
(
    _C_BPM_MIN, _C_BPM_MAX, _C_RR_MIN, _C_RR_MAX, _C_ECT_TOL, _C_MIN_REF, _C_STALE, _C_HR_TAU,
    _C_SLOPE_TAU, _C_BIN_S, _C_CHAIN_GAP, _C_LOW, _C_HIGH, _C_CEILING, _C_HARD_MAX,
    _C_RMSSD_BINS, _C_RMSSD_MIN_S, _C_WINDOW_BINS, _C_QUALITY_BINS,
) = range(19)  # fmt: skip
_N_CFG = 19


@numba.njit(cache=True, nogil=True, inline="always")
def _at(a: np.ndarray, s: int, i: int):  # type: ignore[no-untyped-def]
    """``a[s, i]`` of an input given as (S, N), or (1, N) / (S, 1) / (1, 1) for all."""
    return a[s if a.shape[0] > 1 else 0, i if a.shape[1] > 1 else 0]


@numba.njit(cache=True, nogil=True)
def _update_kernel(
    st: np.ndarray,  # (N, _N_STATE) state, updated
    cnt: np.ndarray,  # (N, _N_COUNTS) counters, updated
    ring: np.ndarray,  # (N, M) last M plausible RR intervals (circular), updated
    bsum: np.ndarray,  # (N, B, _N_CHANNELS) time bins, updated
    bidx: np.ndarray,  # (N, B) their bin indices, updated
    cfg: np.ndarray,  # (_N_CFG,) settings
    t: np.ndarray,  # (S, N) inputs; any of them may be (S, 1), (1, N) or (1, 1) for all
    bpm: np.ndarray,
    rr: np.ndarray,  # (S, N, R) (or (S, 1, R))
    rr_count: np.ndarray,  # -1: the finite ones
    contact: np.ndarray,
    present: np.ndarray,
    src_flags: np.ndarray,
    flags_out: np.ndarray,  # (S, N) the samples' flags, written
    rec: np.ndarray,  # (4, S, N) the baseline estimator's inputs, written, or (0, 0, 0): the
    # slot times (absent slots: the latest time, or the block's first), usable bpm (0/1), the
    # sum of squared successive RR differences (ms²) and their number
    lo: int,  # the patients to update: lo .. hi - 1 (each touches its own entries only)
    hi: int,
) -> None:
    """S sample slots of patients ``lo`` .. ``hi - 1``, one sample at a time (docs/arousal.md
    gives the rules).

    Per patient and present sample at time ``t`` with rate ``x`` (arrays are indexed by
    patient rather than sliced in the loop: a slice costs a reference count):

    - flags: the artifact rules (:func:`~exposure_ctrl.arousal.artifacts.sample_flags`); the
      sample is *usable* without ``UNUSABLE_BPM`` flags, its RR *trusted* without
      ``UNTRUSTED_RR`` flags; the RR chain breaks at an untrusted sample or a gap > chain_gap_s;
    - RR: interval j of the sample is impossible outside rr_min..rr_max, ectopic when
      ``|rr - ref| > tol * ref`` with ``ref`` the median of the ring of the last M plausible
      intervals before the sample (``60000 / x`` while fewer than min_reference), accepted
      otherwise; successive differences ``d = rr_j - rr_{j-1}`` of accepted adjacent beats (the
      first against the previous sample's last beat, unless the chain broke) feed the bins;
    - heart rate: ``y = d y_prev + (1 - d) x`` with ``d = exp(-(t - t_prev) / hr_tau_s)`` (``y =
      x`` for the first usable sample); the level peak is ``max(peak, y)``;
    - slope: the weighted sums ``S0 = sum w``, ``S1 = sum w u``, ``S2 = sum w u²``, ``Sy = sum w
      x``, ``Sty = sum w u x`` with ``u = t_k - T`` and ``w = exp(u / slope_tau_s)`` about the
      latest usable time ``T``; moving ``T`` on by ``dd`` multiplies every weight by ``exp(-dd /
      slope_tau_s)`` and shifts ``u`` by ``-dd`` (``S1 -> S1 - dd S0``, ``S2 -> S2 - 2 dd S1 +
      dd² S0``, ``Sty -> Sty - dd Sy``), then the new point adds ``w = 1, u = 0``;
    - bins: credit ``min(t - t_prev_usable, stale_after_s)`` inside / above the window / in
      total, 1 present, 1 if no flag, the RR sums.
    """
    n_slots = flags_out.shape[0]
    r_max = rr.shape[2]
    bpm_min, bpm_max = cfg[_C_BPM_MIN], cfg[_C_BPM_MAX]
    rr_min, rr_max, tol = cfg[_C_RR_MIN], cfg[_C_RR_MAX], cfg[_C_ECT_TOL]
    min_ref = np.int64(cfg[_C_MIN_REF])
    stale, chain_gap, bin_s = cfg[_C_STALE], cfg[_C_CHAIN_GAP], cfg[_C_BIN_S]
    hr_tau, slope_tau = cfg[_C_HR_TAU], cfg[_C_SLOPE_TAU]
    low, high = cfg[_C_LOW], cfg[_C_HIGH]
    n_flags = _FLAG_VALUES.shape[0]
    record = rec.shape[0] > 0
    for i in range(lo, hi):
        ring_i = ring[i]
        # slots without a sample may carry any time: they stand at the latest present time,
        # or (before any) at the block's first present time
        latest = -np.inf if math.isnan(st[i, _T_PRESENT]) else st[i, _T_PRESENT]
        first = 0.0
        for s in range(n_slots):
            if _at(present, s, i):
                first = _at(t, s, i)
                break
        for s in range(n_slots):
            if not _at(present, s, i):
                flags_out[s, i] = 0
                if s == 0 and math.isnan(st[i, _T0]):
                    st[i, _T0] = latest if latest > -np.inf else first
                if record:
                    rec[0, s, i] = latest if latest > -np.inf else first
                    rec[1, s, i] = 0.0
                    rec[2, s, i] = 0.0
                    rec[3, s, i] = 0.0
                continue
            ts = _at(t, s, i)
            x = _at(bpm, s, i)
            if s == 0 and math.isnan(st[i, _T0]):
                st[i, _T0] = ts
            latest = max(latest, ts)

            # --- flags
            prev_p = st[i, _T_PRESENT]
            dtp = np.inf if math.isnan(prev_p) else ts - prev_p
            after_gap = (not math.isnan(prev_p)) and dtp > stale
            fl = sample_flags(
                x, np.int64(_at(contact, s, i)), np.int64(_at(src_flags, s, i)), after_gap,
                bpm_min, bpm_max,
            )  # fmt: skip
            usable = (fl & UNUSABLE_BPM) == 0
            trusted = (fl & UNTRUSTED_RR) == 0
            if not trusted or dtp > chain_gap:
                st[i, _LAST_RR] = np.nan  # the RR chain breaks

            # --- RR intervals
            sumsq = 0.0
            ndiff = 0
            cover = 0.0
            if r_max > 0:
                rs = s if rr.shape[0] > 1 else 0
                ri = i if rr.shape[1] > 1 else 0
                count = np.int64(_at(rr_count, s, i))
                if count < 0:  # default: the finite ones
                    count = 0
                    for j in range(r_max):
                        if math.isfinite(rr[rs, ri, j]):
                            count += 1
                n_real = min(count, r_max)
                ref = np.nan
                if trusted and n_real > 0:
                    ref = ring_median(ring_i, min_ref)
                if math.isnan(ref) and usable:
                    ref = 60000.0 / x
                n_imp = 0
                n_ect = 0
                prev = st[i, _LAST_RR]
                j_last = min(max(count - 1, 0), r_max - 1)
                last_acc = np.nan  # the accepted value of slot j_last (the last real one)
                for j in range(r_max):
                    v = rr[rs, ri, j]
                    a = np.nan
                    if j < n_real and trusted:
                        if v >= rr_min and v <= rr_max:
                            cnt[i, _RING_POS] = ring_push(ring_i, cnt[i, _RING_POS], v)
                            if abs(v - ref) > tol * ref:
                                n_ect += 1
                            else:
                                a = v
                        else:
                            n_imp += 1
                    d = a - prev
                    if not math.isnan(d):
                        sumsq += d * d
                        ndiff += 1
                        cover += a
                    if j == j_last:
                        last_acc = a
                    prev = a
                if trusted and count > 0:
                    st[i, _LAST_RR] = last_acc
                cnt[i, _N_RR] += n_real
                cnt[i, _N_RR_IMPOSSIBLE] += n_imp
                cnt[i, _N_RR_ECTOPIC] += n_ect
                if not trusted:
                    cnt[i, _N_RR_UNTRUSTED] += n_real
                if n_imp > 0:
                    fl |= RR_IMPOSSIBLE_
                if n_ect > 0:
                    fl |= RR_ECTOPIC_
            flags_out[s, i] = fl
            if record:
                rec[0, s, i] = ts
                rec[1, s, i] = 1.0 if usable else 0.0
                rec[2, s, i] = sumsq
                rec[3, s, i] = ndiff

            # --- heart rate, slope, level peak
            credit = 0.0
            y = st[i, _HR]
            if usable:
                tu = st[i, _T_USABLE]
                if math.isnan(tu):
                    y = x
                else:
                    dtu = ts - tu
                    keep = math.exp(-dtu / hr_tau)
                    y = (1.0 - keep) * x + keep * y
                    credit = min(dtu, stale)
                st[i, _HR] = y
                if not (st[i, _PEAK_HR] >= y):  # fmax: a NaN peak takes y
                    st[i, _PEAK_HR] = y
                tr = st[i, _T_REF]
                dd = 0.0 if math.isnan(tr) else ts - tr
                dec = math.exp(-dd / slope_tau)
                s0, s1, s2, sy, sty = st[i, _S0], st[i, _S1], st[i, _S2], st[i, _SY], st[i, _STY]
                st[i, _S0] = dec * s0 + 1.0
                st[i, _S1] = dec * (s1 - dd * s0)
                st[i, _S2] = dec * (s2 - 2.0 * dd * s1 + dd * dd * s0)
                st[i, _SY] = dec * sy + x
                st[i, _STY] = dec * (sty - dd * sy)
                st[i, _T_REF] = ts
                st[i, _T_USABLE] = ts if math.isnan(tu) else max(tu, ts)

            # --- time bins
            slot = bin_slot(bsum, bidx, i, ts, bin_s)
            if credit > 0.0:
                h = y - st[i, _BASE_BPM]
                if h >= low and h <= high:
                    bsum[i, slot, _IN_S] += credit
                if h > high:
                    bsum[i, slot, _ABOVE_S] += credit
                bsum[i, slot, _OBS_S] += credit
            bsum[i, slot, _PRESENT_N] += 1.0
            if fl == 0:
                bsum[i, slot, _CLEAN_N] += 1.0
            bsum[i, slot, _RR_SUMSQ] += sumsq
            bsum[i, slot, _RR_NDIFF] += ndiff
            bsum[i, slot, _RR_COVER_MS] += cover

            # --- counts, times
            cnt[i, _N_SAMPLES] += 1
            if fl:
                for k in range(n_flags):
                    if fl & _FLAG_VALUES[k]:
                        cnt[i, _N_FLAG0 + k] += 1
            st[i, _T_PRESENT] = ts if math.isnan(prev_p) else max(prev_p, ts)


@numba.njit(cache=True, nogil=True, parallel=True)
def _update_kernel_parallel(
    st, cnt, ring, bsum, bidx, cfg, t, bpm, rr, rr_count, contact, present, src_flags, flags_out, rec, chunks,
):  # fmt: skip
    """:func:`_update_kernel` with the patients split into ``chunks`` contiguous ranges computed
    at once on numba's threads; the same numbers bit for bit (a patient's iteration reads and
    writes that patient's entries only)."""
    n = st.shape[0]
    for c in numba.prange(chunks):
        _update_kernel(
            st, cnt, ring, bsum, bidx, cfg, t, bpm, rr, rr_count, contact, present, src_flags,
            flags_out, rec, c * n // chunks, (c + 1) * n // chunks,
        )  # fmt: skip


@numba.njit(cache=True, nogil=True, inline="always")
def _observe_one(
    st: np.ndarray,
    bsum: np.ndarray,
    bidx: np.ndarray,
    cfg: np.ndarray,
    i: int,
    tt: float,
    scales: np.ndarray,  # (N_FEATURES,) divisors, or (0,) for none
    out: np.ndarray,
) -> None:
    """Patient ``i``'s feature vector at time ``tt`` into ``out[i, :N_FEATURES]``
    (the formulas of docs/arousal.md, in Feature order). Arrays are indexed by patient
    rather than sliced: a slice costs a reference count."""
    low, high = cfg[_C_LOW], cfg[_C_HIGH]
    bin_s = cfg[_C_BIN_S]
    wk = np.int64(cfg[_C_WINDOW_BINS])
    rk = np.int64(cfg[_C_RMSSD_BINS])
    qk = np.int64(cfg[_C_QUALITY_BINS])
    t0 = tt if math.isnan(st[i, _T0]) else st[i, _T0]
    base = st[i, _BASE_BPM]
    hr = st[i, _HR]
    have = not math.isnan(hr)
    above = hr - base if have else 0.0
    out[i, Feature.HR_ABOVE_BPM] = above
    # weighted least squares: slope = (S0 Sty - S1 Sy) / (S0 S2 - S1²)
    s0, s1 = st[i, _S0], st[i, _S1]
    den = s0 * st[i, _S2] - s1 * s1
    num = s0 * st[i, _STY] - s1 * st[i, _SY]
    ok = den > 1e-9 * max(s0 * s0, 1.0)
    out[i, Feature.HR_SLOPE_BPM_PER_MIN] = 60.0 * num / den if ok else 0.0
    out[i, Feature.AROUSAL_NORM] = (above - low) / (high - low)
    out[i, Feature.CEILING_MARGIN_BPM] = cfg[_C_CEILING] - above
    out[i, Feature.HARD_MAX_MARGIN_BPM] = cfg[_C_HARD_MAX] - (hr if have else base)

    # the window totals, in one pass over the bins with index in (now - k, now]
    now = np.int64(math.floor(tt / bin_s))
    w_in = w_above = w_obs = 0.0
    m_present = m_clean = m_sumsq = m_ndiff = m_cover = 0.0
    q_present = q_clean = 0.0
    for slot in range(bidx.shape[1]):
        age = now - bidx[i, slot]
        if age < 0:
            continue
        if age < wk:
            w_in += bsum[i, slot, _IN_S]
            w_above += bsum[i, slot, _ABOVE_S]
            w_obs += bsum[i, slot, _OBS_S]
        if age < rk:
            m_present += bsum[i, slot, _PRESENT_N]
            m_clean += bsum[i, slot, _CLEAN_N]
            m_sumsq += bsum[i, slot, _RR_SUMSQ]
            m_ndiff += bsum[i, slot, _RR_NDIFF]
            m_cover += bsum[i, slot, _RR_COVER_MS]
        if age < qk:
            q_present += bsum[i, slot, _PRESENT_N]
            q_clean += bsum[i, slot, _CLEAN_N]
    out[i, Feature.IN_WINDOW_FRAC] = w_in / w_obs if w_obs > 0 else 0.0
    out[i, Feature.ABOVE_WINDOW_FRAC] = w_above / w_obs if w_obs > 0 else 0.0

    valid = m_cover >= 1000.0 * cfg[_C_RMSSD_MIN_S] and m_ndiff > 0
    rmssd = math.sqrt(m_sumsq / m_ndiff) if valid else 0.0
    out[i, Feature.RMSSD_MS] = rmssd
    out[i, Feature.RMSSD_VALID] = 1.0 if valid else 0.0
    brm = st[i, _BASE_RMSSD]
    out[i, Feature.RMSSD_REL] = rmssd / brm if valid and brm > 0 else 1.0

    inten = st[i, _INTENSITY]
    out[i, Feature.INTENSITY] = 0.0 if math.isnan(inten) else inten
    out[i, Feature.SINCE_SCENE_CHANGE_S] = tt - (t0 if math.isnan(st[i, _T_SCENE]) else st[i, _T_SCENE])
    out[i, Feature.AT_INTENSITY_S] = tt - (t0 if math.isnan(st[i, _T_LEVEL]) else st[i, _T_LEVEL])
    peak = above if math.isnan(st[i, _PEAK_HR]) else st[i, _PEAK_HR] - base
    fall = max(peak - above, 0.0)
    out[i, Feature.PEAK_ABOVE_BPM] = peak
    out[i, Feature.FALL_FROM_PEAK_BPM] = fall
    out[i, Feature.FALL_FROM_PEAK_FRAC] = min(fall / peak, 1.0) if peak > 0 else 0.0

    suds = st[i, _SUDS]
    known = not math.isnan(suds)
    out[i, Feature.SUDS] = suds if known else 0.0
    out[i, Feature.SUDS_AGE_S] = tt - st[i, _T_SUDS] if known else 0.0
    out[i, Feature.SUDS_KNOWN] = 1.0 if known else 0.0

    tu = st[i, _T_USABLE]
    since = tt - (t0 if math.isnan(tu) else tu)
    out[i, Feature.SINCE_CLEAN_S] = since
    out[i, Feature.STALE] = 1.0 if since > cfg[_C_STALE] or math.isnan(tu) else 0.0
    out[i, Feature.CLEAN_FRAC] = q_clean / q_present if q_present > 0 else 0.0
    out[i, Feature.BASELINE_KNOWN] = st[i, _BASE_KNOWN]
    if scales.shape[0]:
        for j in range(scales.shape[0]):
            out[i, j] /= scales[j]


@numba.njit(cache=True, nogil=True)
def _observe_kernel(
    st: np.ndarray,
    bsum: np.ndarray,
    bidx: np.ndarray,
    cfg: np.ndarray,
    t: np.ndarray,  # (N,) or (1,)
    scales: np.ndarray,  # (N_FEATURES,) divisors, or (0,) for none
    out: np.ndarray,  # (N, N_FEATURES), written
) -> None:
    """The feature vectors at time ``t``."""
    for i in range(st.shape[0]):
        _observe_one(st, bsum, bidx, cfg, i, t[i if t.shape[0] > 1 else 0], scales, out)


@numba.njit(cache=True, nogil=True)
def _scene_kernel(st: np.ndarray, t: np.ndarray, inten: np.ndarray, mask: np.ndarray) -> None:
    """A scene change at ``t`` where ``mask``: a new intensity (beyond 1e-9; a first scene
    always) restarts the level (its time and peak). ``t``, ``inten``, ``mask``: (N,) or (1,)."""
    for i in range(st.shape[0]):
        row = st[i]
        tt = t[i if t.shape[0] > 1 else 0]
        if math.isnan(row[_T0]):
            row[_T0] = tt
        if not mask[i if mask.shape[0] > 1 else 0]:
            continue
        v = inten[i if inten.shape[0] > 1 else 0]
        row[_T_SCENE] = tt
        if not abs(v - row[_INTENSITY]) <= 1e-9:
            row[_T_LEVEL] = tt
            row[_PEAK_HR] = row[_HR]
        row[_INTENSITY] = v


@numba.njit(cache=True, nogil=True)
def _suds_kernel(st: np.ndarray, t: np.ndarray, suds: np.ndarray, mask: np.ndarray) -> int:
    """A SUDS rating at ``t`` where ``mask``; returns the first patient whose rating lies
    outside 0..100 (nothing changed then), else -1."""
    n = st.shape[0]
    for i in range(n):
        if mask[i if mask.shape[0] > 1 else 0]:
            v = suds[i if suds.shape[0] > 1 else 0]
            if not (v >= 0.0 and v <= 100.0):
                return i
    for i in range(n):
        row = st[i]
        tt = t[i if t.shape[0] > 1 else 0]
        if math.isnan(row[_T0]):
            row[_T0] = tt
        if mask[i if mask.shape[0] > 1 else 0]:
            row[_SUDS] = suds[i if suds.shape[0] > 1 else 0]
            row[_T_SUDS] = tt
    return -1


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Settings of the feature computation. The targets come from the scenario.

    Attributes:
        artifacts: thresholds of the artifact rules.
        hr_tau_s: time constant of the heart-rate smoothing (exponential, time-aware), s.
        slope_tau_s: time constant of the weights of the heart-rate slope regression, s.
        bin_s: width of the time bins of the sliding windows, s.
        rmssd_bins: bins of the RMSSD window (window = (bins - 1) * bin_s .. bins * bin_s).
        rmssd_min_s: clean RR (sum of the intervals behind the differences) RMSSD needs, s.
        window_bins: bins of the in-window fraction (default 36 x 5 s = 3 minutes).
        quality_bins: bins of the clean fraction (default 12 x 5 s = 1 minute).
        chain_gap_s: samples further apart than this break the RR chain (a notification may
            have been lost), s.
        prior_baseline_bpm: resting heart rate assumed until a baseline is set, bpm.
        baseline: limits of a good baseline.
    """

    artifacts: ArtifactConfig = dataclasses.field(default_factory=ArtifactConfig)
    hr_tau_s: float = 5.0
    slope_tau_s: float = 20.0
    bin_s: float = 5.0
    rmssd_bins: int = 12
    rmssd_min_s: float = 30.0
    window_bins: int = 36
    quality_bins: int = 12
    chain_gap_s: float = 2.5
    prior_baseline_bpm: float = 70.0
    baseline: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        for name in ("hr_tau_s", "slope_tau_s", "bin_s", "chain_gap_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, found {getattr(self, name)!r}")
        if min(self.rmssd_bins, self.window_bins, self.quality_bins) < 1:
            raise ValueError("rmssd_bins, window_bins and quality_bins must be at least 1")

    @classmethod
    def from_scenario(cls, scenario: Any, **overrides: Any) -> FeatureConfig:
        """Defaults with the scenario's staleness limit (``safety.stale_after_s``)."""
        art = overrides.pop("artifacts", None) or ArtifactConfig(
            stale_after_s=float(scenario.safety.stale_after_s)
        )
        return cls(artifacts=art, **overrides)


@dataclasses.dataclass(frozen=True)
class _Targets:
    low: float
    high: float
    ceiling: float
    hard_max: float
    suds_low: float = 40.0
    suds_high: float = 70.0


_NO_CONTACT_INFO = np.full((1, 1), -1, dtype=np.int8)
_PRESENT = np.ones((1, 1), dtype=bool)
_NO_FLAGS = np.zeros((1, 1), dtype=np.int64)
_COUNT_FINITE = np.full((1, 1), -1, dtype=np.int64)
_NO_RR = np.empty((1, 1, 0))
_NO_SCALES = np.empty(0)
_NO_REC = np.empty((0, 0, 0))


@functools.cache
def _quality(bits: int) -> Quality:
    return Quality(bits)


class FeatureState:
    """Incremental arousal features of N patients. See the module docstring.

    Args:
        scenario: the :class:`~exposure_ctrl.scenario.Scenario` (targets, intensities,
            staleness limit). ``None`` is allowed for signal-only use with ``targets``.
        n: number of patients.
        config: settings; default ``FeatureConfig.from_scenario(scenario)``.
        t0: start time (default: the first time seen). Times since "never" count from it.
        chunks: contiguous ranges of patients :meth:`update_block` computes at once on numba's
            threads (default: :func:`~exposure_ctrl._threads.chunks_for`); the results do not
            depend on it.

    The state of patient ``i`` is row ``i`` of a few arrays (scalars, counters, the RR ring,
    the time bins) that compiled kernels update in place; the attributes below are views.
    """

    def __init__(
        self,
        scenario: Any,
        n: int = 1,
        config: FeatureConfig | None = None,
        *,
        t0: float | None = None,
        chunks: int | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, found {n}")
        if chunks is not None and chunks < 1:
            raise ValueError(f"chunks must be at least 1, found {chunks}")
        self.scenario = scenario
        self.n = int(n)
        self.chunks = chunks_for(self.n) if chunks is None else min(int(chunks), self.n)
        if config is None:
            config = (
                FeatureConfig.from_scenario(scenario) if scenario is not None else FeatureConfig()
            )
        self.config = config
        if scenario is not None:
            tg = scenario.targets
            self.targets = _Targets(
                low=float(tg.arousal_window_bpm.low),
                high=float(tg.arousal_window_bpm.high),
                ceiling=float(tg.ceiling_bpm),
                hard_max=float(tg.hard_max_bpm),
                suds_low=float(tg.suds_window.low),
                suds_high=float(tg.suds_window.high),
            )
        else:
            self.targets = _Targets(low=8.0, high=18.0, ceiling=25.0, hard_max=160.0)
        art = config.artifacts
        tg = self.targets
        cfg = np.empty(_N_CFG)
        cfg[_C_BPM_MIN], cfg[_C_BPM_MAX] = art.bpm_min, art.bpm_max
        cfg[_C_RR_MIN], cfg[_C_RR_MAX] = art.rr_min_ms, art.rr_max_ms
        cfg[_C_ECT_TOL], cfg[_C_MIN_REF] = art.ectopic_tolerance, art.min_reference
        cfg[_C_STALE], cfg[_C_HR_TAU] = art.stale_after_s, config.hr_tau_s
        cfg[_C_SLOPE_TAU], cfg[_C_BIN_S] = config.slope_tau_s, config.bin_s
        cfg[_C_CHAIN_GAP] = config.chain_gap_s
        cfg[_C_LOW], cfg[_C_HIGH] = tg.low, tg.high
        cfg[_C_CEILING], cfg[_C_HARD_MAX] = tg.ceiling, tg.hard_max
        cfg[_C_RMSSD_BINS], cfg[_C_RMSSD_MIN_S] = config.rmssd_bins, config.rmssd_min_s
        cfg[_C_WINDOW_BINS], cfg[_C_QUALITY_BINS] = config.window_bins, config.quality_bins
        self._cfg = cfg
        n = self.n
        st = np.full((n, _N_STATE), np.nan)
        st[:, _T0] = np.nan if t0 is None else float(t0)
        st[:, [_S0, _S1, _S2, _SY, _STY, _BASE_KNOWN]] = 0.0
        st[:, _BASE_BPM] = float(config.prior_baseline_bpm)
        self._st = st
        self._cnt = np.zeros((n, _N_COUNTS), dtype=np.int64)
        self.rr_ring = np.full((n, art.median_beats), np.nan)
        self.bins = TimeBins(
            n,
            max(config.rmssd_bins, config.window_bins, config.quality_bins),
            config.bin_s,
            _N_CHANNELS,
        )
        self._baseline_est: BaselineEstimator | None = None
        # scratch for add(): one sample of one patient
        self._one_t = np.empty((1, 1))
        self._one_bpm = np.empty((1, 1))
        self._one_rr = np.full((1, 1, 4), np.nan)
        self._one_count = np.zeros((1, 1), dtype=np.int64)
        self._one_contact = np.empty((1, 1), dtype=np.int8)
        self._one_flags = np.empty((1, 1), dtype=np.int64)
        self._one_out = np.empty((1, 1), dtype=np.int64)

    # views of the state, one value per patient (N,)
    t0 = property(lambda self: self._st[:, _T0], doc="start time (NaN until the first input)")
    t_present = property(lambda self: self._st[:, _T_PRESENT], doc="time of the latest sample")
    t_usable = property(lambda self: self._st[:, _T_USABLE], doc="time of the latest usable bpm")
    hr = property(lambda self: self._st[:, _HR], doc="smoothed absolute heart rate, bpm (NaN: none yet)")
    last_rr = property(lambda self: self._st[:, _LAST_RR], doc="last accepted RR of the chain, ms")
    baseline_bpm = property(lambda self: self._st[:, _BASE_BPM], doc="resting heart rate, bpm")
    baseline_rmssd_ms = property(lambda self: self._st[:, _BASE_RMSSD], doc="resting RMSSD, ms")
    intensity = property(lambda self: self._st[:, _INTENSITY], doc="current scene intensity")
    t_scene = property(lambda self: self._st[:, _T_SCENE], doc="time of the latest scene change")
    t_level = property(lambda self: self._st[:, _T_LEVEL], doc="time the current intensity began")
    peak_hr = property(lambda self: self._st[:, _PEAK_HR], doc="peak smoothed rate at this level")
    suds = property(lambda self: self._st[:, _SUDS], doc="latest SUDS rating (NaN: none)")
    t_suds = property(lambda self: self._st[:, _T_SUDS], doc="time of the latest SUDS rating")
    n_samples = property(lambda self: self._cnt[:, _N_SAMPLES], doc="samples present")
    n_rr = property(lambda self: self._cnt[:, _N_RR], doc="RR intervals received")
    n_rr_impossible = property(lambda self: self._cnt[:, _N_RR_IMPOSSIBLE])
    n_rr_ectopic = property(lambda self: self._cnt[:, _N_RR_ECTOPIC])
    n_rr_untrusted = property(lambda self: self._cnt[:, _N_RR_UNTRUSTED])
    flag_counts = property(
        lambda self: self._cnt[:, _N_FLAG0:], doc="(N, len(FLAG_ORDER)) samples per flag"
    )

    @property
    def baseline_known(self) -> np.ndarray:
        """(N,) bool: a baseline was set."""
        return self._st[:, _BASE_KNOWN] > 0

    # --- inputs ------------------------------------------------------------------------------

    def update(
        self,
        t: float | np.ndarray,
        bpm: np.ndarray | float,
        rr_ms: np.ndarray | None = None,
        rr_count: np.ndarray | None = None,
        contact: np.ndarray | None = None,
        present: np.ndarray | None = None,
        flags: np.ndarray | None = None,
    ) -> np.ndarray:
        """One sample slot for every patient; returns the quality flags (N,). See the module doc."""
        n = self.n
        if rr_ms is not None:
            rr_ms = np.asarray(rr_ms, dtype=np.float64).reshape(1, n, -1)
        return self.update_block(
            np.asarray(t, dtype=np.float64).reshape(1, -1),
            np.asarray(bpm, dtype=np.float64).reshape(1, -1),
            rr_ms,
            None if rr_count is None else np.asarray(rr_count).reshape(1, -1),
            None if contact is None else np.asarray(contact).reshape(1, -1),
            None if present is None else np.asarray(present).reshape(1, -1),
            None if flags is None else np.asarray(flags).reshape(1, -1),
        )[0]

    def update_block(
        self,
        t: np.ndarray,
        bpm: np.ndarray,
        rr_ms: np.ndarray | None = None,
        rr_count: np.ndarray | None = None,
        contact: np.ndarray | None = None,
        present: np.ndarray | None = None,
        flags: np.ndarray | None = None,
    ) -> np.ndarray:
        """S sample slots at once: every argument of :meth:`update` with a leading axis of S
        (``t`` may be (S,) for lockstep; any argument may be (S, 1) for every patient). Same
        result as S calls to :meth:`update`; returns the flags (S, N). Times must not
        decrease."""
        n = self.n
        if bpm.__class__ is not np.ndarray:
            bpm = np.asarray(bpm, dtype=np.float64)
        s_ = bpm.shape[0] if bpm.ndim else 1
        bpm = as_slots(bpm, F8, s_, n, "bpm")
        t = as_slots(t, F8, s_, n, "t")
        if rr_ms is None:
            rr = _NO_RR
        else:
            rr = rr_ms
            if rr.__class__ is not np.ndarray or rr.dtype is not F8:
                rr = np.asarray(rr_ms, dtype=np.float64)
            if rr.ndim != 3:
                rr = rr.reshape(s_, n, -1)
            if rr.shape[0] != s_ or (rr.shape[1] != n and rr.shape[1] != 1):
                raise ValueError(f"rr_ms must have shape ({s_}, {n}, R), found {rr.shape}")
        count = _COUNT_FINITE if rr_count is None else as_slots(rr_count, I8, s_, n, "rr_count")
        if contact is None:
            contact = _NO_CONTACT_INFO
        else:
            contact = as_slots(contact, INT8, s_, n, "contact")
        present = _PRESENT if present is None else as_slots(present, BOOL, s_, n, "present")
        flags = _NO_FLAGS if flags is None else as_slots(flags, I8, s_, n, "flags")
        out = np.empty((s_, n), dtype=np.int64)
        est = self._baseline_est
        rec = _NO_REC if est is None else np.empty((4, s_, n))
        if self.chunks > 1 and parallel_ok():
            _update_kernel_parallel(
                self._st, self._cnt, self.rr_ring, self.bins.sums, self.bins.index, self._cfg,
                t, bpm, rr, count, contact, present, flags, out, rec, self.chunks,
            )  # fmt: skip
        else:
            _update_kernel(
                self._st, self._cnt, self.rr_ring, self.bins.sums, self.bins.index, self._cfg,
                t, bpm, rr, count, contact, present, flags, out, rec, 0, n,
            )  # fmt: skip
        if est is not None:
            est.add_block(
                rec[0],
                np.broadcast_to(bpm, (s_, n)),
                rec[1] > 0,
                np.broadcast_to(present, (s_, n)),
                rec[2],
                rec[3],
            )
        return out

    def add(self, sample: HeartSample) -> Quality:
        """Feed one :class:`HeartSample` (N = 1 only); returns its quality flags."""
        if self.n != 1:
            raise ValueError(f"add() feeds one patient; this state holds {self.n}")
        beats = sample.rr_ms
        k = len(beats)
        rr = self._one_rr
        if k > rr.shape[2]:
            rr = self._one_rr = np.full((1, 1, k), np.nan)
        for j in range(k):  # the kernel reads only the first rr_count slots
            rr[0, 0, j] = beats[j]
        self._one_t[0, 0] = sample.t
        self._one_bpm[0, 0] = sample.bpm
        self._one_count[0, 0] = k
        self._one_contact[0, 0] = -1 if sample.contact is None else int(bool(sample.contact))
        self._one_flags[0, 0] = int(sample.flags)
        if self._baseline_est is not None:
            out = self.update_block(
                self._one_t, self._one_bpm, rr, self._one_count, self._one_contact, _PRESENT,
                self._one_flags,
            )  # fmt: skip
        else:
            out = self._one_out
            _update_kernel(
                self._st, self._cnt, self.rr_ring, self.bins.sums, self.bins.index, self._cfg,
                self._one_t, self._one_bpm, rr, self._one_count, self._one_contact, _PRESENT,
                self._one_flags, out, _NO_REC, 0, 1,
            )  # fmt: skip
        return _quality(int(out[0, 0]))

    def add_many(self, samples: Iterable[HeartSample]) -> list[Quality]:
        """Feed several samples in order (N = 1)."""
        return [self.add(s) for s in samples]

    def set_scene(
        self,
        t: float | np.ndarray,
        positions: np.ndarray | Sequence[int] | None = None,
        *,
        intensity: np.ndarray | float | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        """A scene change at ``t`` for the patients in ``mask`` (default all).

        Give ``positions`` (N, K) (or (K,) for all) and the intensity is computed from the
        scenario, or give ``intensity`` directly. A change of intensity restarts the level:
        time at intensity, peak and fall.
        """
        n = self.n
        if intensity is None:
            if positions is None:
                raise ValueError("set_scene needs positions or intensity")
            pos = np.asarray(positions, dtype=np.int64)
            intensity = self.scenario.intensity_of_positions(pos)
        _scene_kernel(
            self._st,
            as_vector(t, F8, n, "t"),
            as_vector(intensity, F8, n, "intensity"),
            ALL if mask is None else as_vector(mask, BOOL, n, "mask"),
        )

    def set_suds(
        self, t: float | np.ndarray, suds: np.ndarray | float, mask: np.ndarray | None = None
    ) -> None:
        """A SUDS rating (0..100) at ``t`` for the patients in ``mask`` (default all)."""
        n = self.n
        v = as_vector(suds, F8, n, "suds")
        bad = _suds_kernel(
            self._st,
            as_vector(t, F8, n, "t"),
            v,
            ALL if mask is None else as_vector(mask, BOOL, n, "mask"),
        )
        if bad >= 0:
            raise ValueError(
                f"SUDS ratings run from 0 to 100; found {float(v[bad if v.shape[0] > 1 else 0])!r}"
            )

    # --- baseline ----------------------------------------------------------------------------

    def begin_baseline(self, t: float) -> None:
        """Start recording the baseline phase at ``t`` (all patients together)."""
        self._baseline_est = BaselineEstimator(self.n, float(t), self.config.baseline)

    @property
    def in_baseline(self) -> bool:
        return self._baseline_est is not None

    def finish_baseline(self, t: float | None = None, *, apply: bool = True) -> BaselineResult:
        """End the baseline phase; return the result and (``apply``) use it as the baseline
        wherever a resting rate was found. A poor verdict is *not* enforced here: the session
        asks the therapist (``result.needs_confirmation``)."""
        if self._baseline_est is None:
            raise RuntimeError("finish_baseline() without begin_baseline()")
        res = self._baseline_est.result(t)
        self._baseline_est = None
        if apply:
            self.set_baseline(res.bpm, rmssd_ms=res.rmssd_ms, mask=np.isfinite(res.bpm))
        return res

    def set_baseline(
        self,
        bpm: np.ndarray | float,
        *,
        rmssd_ms: np.ndarray | float | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        """Set the resting heart rate (and RMSSD) of the patients in ``mask`` (default all)."""
        n = self.n
        b = np.broadcast_to(np.asarray(bpm, dtype=np.float64), (n,))
        m = (
            np.ones(n, dtype=bool)
            if mask is None
            else np.broadcast_to(np.asarray(mask, bool), (n,))
        )
        if np.any(m & ~np.isfinite(b)):
            raise ValueError("a baseline must be a finite heart rate")
        st = self._st
        st[m, _BASE_BPM] = b[m]
        st[m, _BASE_KNOWN] = 1.0
        if rmssd_ms is not None:
            r = np.broadcast_to(np.asarray(rmssd_ms, dtype=np.float64), (n,))
            st[m, _BASE_RMSSD] = r[m]

    # --- rows ------------------------------------------------------------------------------

    def put_rows(self, rows: np.ndarray | Sequence[int], src: FeatureState) -> None:
        """Overwrite patients ``rows`` with the patients of ``src`` (a state of ``len(rows)``
        patients with the same settings), e.g. when a vectorised environment replaces some
        patients. Not during a baseline phase."""
        rows = np.asarray(rows, dtype=np.int64)
        if src.n != len(rows):
            raise ValueError(f"src holds {src.n} patients for {len(rows)} rows")
        if src.config != self.config or src.targets != self.targets:
            raise ValueError("put_rows needs states with the same settings and targets")
        if self._baseline_est is not None or src._baseline_est is not None:
            raise RuntimeError("put_rows during a baseline phase: finish it first")
        self._st[rows] = src._st
        self._cnt[rows] = src._cnt
        self.rr_ring[rows] = src.rr_ring
        self.bins.put_rows(rows, src.bins)

    # --- outputs -----------------------------------------------------------------------------

    def observe(
        self, t: float | np.ndarray, *, scaled: bool = False, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The feature vectors at time ``t``: shape (N, N_FEATURES), layout :data:`FEATURE_NAMES`.

        Pure (changes nothing). ``scaled`` divides by :data:`FEATURE_SCALES`.
        """
        o = np.empty((self.n, N_FEATURES)) if out is None else out
        _observe_kernel(
            self._st,
            self.bins.sums,
            self.bins.index,
            self._cfg,
            as_vector(t, F8, self.n, "t"),
            FEATURE_SCALES if scaled else _NO_SCALES,
            o,
        )
        return o

    def hr_above(self) -> np.ndarray:
        """Smoothed heart rate above baseline (N,), NaN where no usable sample was seen yet."""
        return self.hr - self.baseline_bpm

    def counts(self, i: int = 0) -> dict[str, int]:
        """Artifact and sample counts of patient ``i``."""
        c = self._cnt[i]
        out = {"samples": int(c[_N_SAMPLES]), "rr": int(c[_N_RR])}
        out["rr_impossible"] = int(c[_N_RR_IMPOSSIBLE])
        out["rr_ectopic"] = int(c[_N_RR_ECTOPIC])
        out["rr_untrusted"] = int(c[_N_RR_UNTRUSTED])
        for j, f in enumerate(FLAG_ORDER):
            out[f"flag_{f.name.lower()}"] = int(c[_N_FLAG0 + j])
        return out


@dataclasses.dataclass(frozen=True)
class SampleBlock:
    """S samples of one patient as the arrays :meth:`FeatureState.update_block` takes (N = 1)."""

    t: np.ndarray  # (S,)
    bpm: np.ndarray  # (S, 1)
    rr_ms: np.ndarray  # (S, 1, R) NaN-padded
    rr_count: np.ndarray  # (S, 1)
    contact: np.ndarray  # (S, 1) int8 1/0/-1
    present: np.ndarray  # (S, 1) bool
    flags: np.ndarray  # (S, 1) int64

    def feed(self, fs: FeatureState) -> np.ndarray:
        return fs.update_block(
            self.t, self.bpm, self.rr_ms, self.rr_count, self.contact, self.present, self.flags
        )


def pack_samples(samples: Sequence[HeartSample], max_rr: int | None = None) -> SampleBlock:
    """Pack HeartSamples (one patient, in time order) into a :class:`SampleBlock`."""
    s = len(samples)
    r = max((len(x.rr_ms) for x in samples), default=0) if max_rr is None else int(max_rr)
    rr = np.full((s, 1, r), np.nan)
    count = np.zeros((s, 1), dtype=np.int64)
    for i, x in enumerate(samples):
        k = min(len(x.rr_ms), r)
        rr[i, 0, :k] = x.rr_ms[:k]
        count[i, 0] = k
    return SampleBlock(
        t=np.array([x.t for x in samples], dtype=np.float64),
        bpm=np.array([[x.bpm] for x in samples], dtype=np.float64).reshape(s, 1),
        rr_ms=rr,
        rr_count=count,
        contact=np.array(
            [[-1 if x.contact is None else int(bool(x.contact))] for x in samples], dtype=np.int8
        ).reshape(s, 1),
        present=np.ones((s, 1), dtype=bool),
        flags=np.array([[int(x.flags)] for x in samples], dtype=np.int64).reshape(s, 1),
    )
