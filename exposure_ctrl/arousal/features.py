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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from exposure_ctrl.arousal.artifacts import (
    FLAG_ORDER,
    UNTRUSTED_RR,
    UNUSABLE_BPM,
    ArtifactConfig,
    block_references,
    sample_flags,
)
from exposure_ctrl.arousal.baseline import BaselineConfig, BaselineEstimator, BaselineResult
from exposure_ctrl.arousal.bins import TimeBins
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


def _cummax0(x: np.ndarray) -> np.ndarray:
    """Running maximum along axis 0 (a no-op for one row)."""
    return x if x.shape[0] == 1 else np.maximum.accumulate(x, axis=0)


def _sum0(x: np.ndarray) -> np.ndarray:
    """Sum along axis 0 (the row itself for one row)."""
    return x[0] if x.shape[0] == 1 else x.sum(axis=0)


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

# channels of the time bins
_IN_S, _ABOVE_S, _OBS_S, _PRESENT_N, _CLEAN_N, _RR_SUMSQ, _RR_NDIFF, _RR_COVER_MS = range(8)
_N_CHANNELS = 8
_WINDOW_CHANNELS = slice(_IN_S, _OBS_S + 1)
_MINUTE_CHANNELS = slice(_PRESENT_N, _RR_COVER_MS + 1)
_FLAG_VALUES = np.array([int(f) for f in FLAG_ORDER], dtype=np.int64)


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


class FeatureState:
    """Incremental arousal features of N patients. See the module docstring.

    Args:
        scenario: the :class:`~exposure_ctrl.scenario.Scenario` (targets, intensities,
            staleness limit). ``None`` is allowed for signal-only use with ``targets``.
        n: number of patients.
        config: settings; default ``FeatureConfig.from_scenario(scenario)``.
        t0: start time (default: the first time seen). Times since "never" count from it.
    """

    def __init__(
        self,
        scenario: Any,
        n: int = 1,
        config: FeatureConfig | None = None,
        *,
        t0: float | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, found {n}")
        self.scenario = scenario
        self.n = int(n)
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
        self._rows = np.arange(self.n)
        n = self.n
        nan = np.full(n, np.nan)
        self.t0 = np.full(n, np.nan if t0 is None else float(t0))
        # signal
        self.t_present = nan.copy()
        self.t_usable = nan.copy()
        self.hr = nan.copy()  # smoothed absolute heart rate, bpm
        self._s0 = np.zeros(n)
        self._s1 = np.zeros(n)
        self._s2 = np.zeros(n)
        self._sy = np.zeros(n)
        self._sty = np.zeros(n)
        self._t_ref = nan.copy()
        self.rr_ring = np.full((art.median_beats, n), np.nan)
        self.last_rr = nan.copy()
        self.bins = TimeBins(
            n,
            max(config.rmssd_bins, config.window_bins, config.quality_bins),
            config.bin_s,
            _N_CHANNELS,
        )
        # counts
        self.n_samples = np.zeros(n, dtype=np.int64)
        self.flag_counts = np.zeros((n, len(FLAG_ORDER)), dtype=np.int64)
        self.n_rr = np.zeros(n, dtype=np.int64)
        self.n_rr_impossible = np.zeros(n, dtype=np.int64)
        self.n_rr_ectopic = np.zeros(n, dtype=np.int64)
        self.n_rr_untrusted = np.zeros(n, dtype=np.int64)
        # baseline
        self.baseline_bpm = np.full(n, float(config.prior_baseline_bpm))
        self.baseline_known = np.zeros(n, dtype=bool)
        self.baseline_rmssd_ms = nan.copy()
        self._baseline_est: BaselineEstimator | None = None
        # scene
        self.intensity = nan.copy()
        self.t_scene = nan.copy()
        self.t_level = nan.copy()
        self.peak_hr = nan.copy()  # peak of the smoothed absolute heart rate at this level
        # SUDS
        self.suds = nan.copy()
        self.t_suds = nan.copy()

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
        (``t`` may be (S,) for lockstep). Same result as S calls to :meth:`update` (to
        rounding); returns the flags (S, N). Times must not decrease."""
        n = self.n
        bpm = np.asarray(bpm, dtype=np.float64)
        s_ = bpm.shape[0]
        sn = (s_, n)
        if bpm.shape != sn:
            bpm = np.broadcast_to(bpm.reshape(s_, -1), sn)
        t = np.asarray(t, dtype=np.float64)
        if t.shape != sn:
            t = np.broadcast_to(t.reshape(s_, -1), sn)
        if rr_ms is None:
            rr = np.empty((s_, n, 0))
        else:
            rr = np.asarray(rr_ms, dtype=np.float64)
            if rr.ndim == 2:
                rr = rr.reshape(s_, n, -1)
        if rr_count is None:
            rr_count = np.isfinite(rr).sum(axis=2)
        else:
            rr_count = np.asarray(rr_count, dtype=np.int64)
            if rr_count.shape != sn:
                rr_count = np.broadcast_to(rr_count.reshape(s_, -1), sn)
        if contact is None:
            contact = np.full(sn, -1, dtype=np.int8)
        else:
            contact = np.asarray(contact)
            if contact.dtype == bool:
                contact = contact.astype(np.int8)
            if contact.shape != sn:
                contact = np.broadcast_to(contact.reshape(s_, -1), sn)
        if present is None:
            present = np.ones(sn, dtype=bool)
        else:
            present = np.asarray(present, dtype=bool)
            if present.shape != sn:
                present = np.broadcast_to(present.reshape(s_, -1), sn)
        if flags is None:
            flags = np.zeros(sn, dtype=np.int64)
        else:
            flags = np.asarray(flags, dtype=np.int64)
            if flags.shape != sn:
                flags = np.broadcast_to(flags.reshape(s_, -1), sn)
        return self._block(t, bpm, rr, rr_count, contact, present, flags)

    def add(self, sample: HeartSample) -> Quality:
        """Feed one :class:`HeartSample` (N = 1 only); returns its quality flags."""
        if self.n != 1:
            raise ValueError(f"add() feeds one patient; this state holds {self.n}")
        rr = np.asarray(sample.rr_ms, dtype=np.float64).reshape(1, 1, -1)
        contact = -1 if sample.contact is None else int(bool(sample.contact))
        flags = self._block(
            np.array([[sample.t]], dtype=np.float64),
            np.array([[sample.bpm]], dtype=np.float64),
            rr,
            np.array([[rr.shape[2]]], dtype=np.int64),
            np.array([[contact]], dtype=np.int8),
            np.ones((1, 1), dtype=bool),
            np.array([[int(sample.flags)]], dtype=np.int64),
        )
        return Quality(int(flags[0, 0]))

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
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
        self._touch(t)
        if intensity is None:
            if positions is None:
                raise ValueError("set_scene needs positions or intensity")
            pos = np.asarray(positions, dtype=np.int64)
            inten = np.broadcast_to(self.scenario.intensity_of_positions(pos), (n,))
        else:
            inten = np.broadcast_to(np.asarray(intensity, dtype=np.float64), (n,))
        m = (
            np.ones(n, dtype=bool)
            if mask is None
            else np.broadcast_to(np.asarray(mask, bool), (n,))
        )
        new_level = m & ~(np.abs(inten - self.intensity) <= 1e-9)  # NaN (no level yet) → new
        self.t_scene = np.where(m, t, self.t_scene)
        self.t_level = np.where(new_level, t, self.t_level)
        self.peak_hr = np.where(new_level, self.hr, self.peak_hr)
        self.intensity = np.where(m, inten, self.intensity)

    def set_suds(
        self, t: float | np.ndarray, suds: np.ndarray | float, mask: np.ndarray | None = None
    ) -> None:
        """A SUDS rating (0..100) at ``t`` for the patients in ``mask`` (default all)."""
        n = self.n
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
        self._touch(t)
        v = np.broadcast_to(np.asarray(suds, dtype=np.float64), (n,))
        m = (
            np.ones(n, dtype=bool)
            if mask is None
            else np.broadcast_to(np.asarray(mask, bool), (n,))
        )
        bad = m & ~((v >= 0) & (v <= 100))
        if bad.any():
            raise ValueError(f"SUDS ratings run from 0 to 100; found {v[bad][0]!r}")
        self.suds = np.where(m, v, self.suds)
        self.t_suds = np.where(m, t, self.t_suds)

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
        self.baseline_bpm = np.where(m, b, self.baseline_bpm)
        self.baseline_known = self.baseline_known | m
        if rmssd_ms is not None:
            r = np.broadcast_to(np.asarray(rmssd_ms, dtype=np.float64), (n,))
            self.baseline_rmssd_ms = np.where(m, r, self.baseline_rmssd_ms)

    # --- rows ------------------------------------------------------------------------------

    _ROW_ARRAYS_AXIS0 = (
        "t0", "t_present", "t_usable", "hr", "_s0", "_s1", "_s2", "_sy", "_sty", "_t_ref",
        "last_rr", "n_samples", "flag_counts", "n_rr", "n_rr_impossible", "n_rr_ectopic",
        "n_rr_untrusted", "baseline_bpm", "baseline_known", "baseline_rmssd_ms", "intensity",
        "t_scene", "t_level", "peak_hr", "suds", "t_suds",
    )  # fmt: skip

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
        for name in self._ROW_ARRAYS_AXIS0:
            getattr(self, name)[rows] = getattr(src, name)
        self.rr_ring[:, rows] = src.rr_ring
        self.bins.put_rows(rows, src.bins)

    # --- the step ----------------------------------------------------------------------------

    def _touch(self, t: np.ndarray) -> None:
        if np.isnan(self.t0).any():
            self.t0 = np.where(np.isnan(self.t0), t, self.t0)

    def _block(
        self,
        t: np.ndarray,
        bpm: np.ndarray,
        rr: np.ndarray,
        rr_count: np.ndarray,
        contact: np.ndarray,
        present: np.ndarray,
        src_flags: np.ndarray,
    ) -> np.ndarray:
        """S sample slots of N patients: (S, N) arrays, rr (S, N, R). Closed forms over S."""
        cfg = self.config
        art = cfg.artifacts
        tg = self.targets
        s_, n = bpm.shape
        ninf = -np.inf
        ar_s = np.arange(s_)[:, None]

        # --- times of the previous present / usable sample, for every slot
        tp0 = np.where(np.isnan(self.t_present), ninf, self.t_present)
        cm = _cummax0(np.concatenate([tp0[None], np.where(present, t, ninf)]))
        prev_p = cm[:-1]
        # slots without a sample may carry any time (even NaN): use the latest present time
        # (or the block's first one), so that times are finite and never decrease
        if s_ == 1:
            first = np.where(present[0], t[0], 0.0)
        else:
            first = np.where(present.any(axis=0), t[np.argmax(present, axis=0), np.arange(n)], 0.0)
        t = np.where(present, t, np.where(cm[1:] > ninf, cm[1:], first))
        self._touch(t[0])
        never_p = prev_p == ninf
        dtp = t - prev_p  # inf when there was no previous sample
        after_gap = present & ~never_p & (dtp > art.stale_after_s)
        flags = sample_flags(art, bpm, contact, src_flags, after_gap) * present
        usable = present & ((flags & UNUSABLE_BPM) == 0)
        trusted = present & ((flags & UNTRUSTED_RR) == 0)

        # --- RR intervals: artifacts, successive differences. Layout (S, R, N).
        r = rr.shape[2]
        brk = present & (~trusted | (dtp > cfg.chain_gap_s))
        cb = brk.astype(np.int64) if s_ == 1 else np.cumsum(brk, axis=0)  # breaks up to slot s
        if r:
            rr = rr.transpose(0, 2, 1)
            real = (np.arange(r)[:, None] < rr_count[:, None, :]) & present[:, None, :]
            in_range = (rr >= art.rr_min_ms) & (rr <= art.rr_max_ms)
            considered = real & trusted[:, None, :]
            plaus = considered & in_range
            imposs = considered & ~in_range
            ref, self.rr_ring = block_references(art, self.rr_ring, np.where(plaus, rr, np.nan))
            ref = np.where(np.isnan(ref), 60000.0 / np.where(usable, bpm, np.nan), ref)[:, None, :]
            ect = plaus & (np.abs(rr - ref) > art.ectopic_tolerance * ref)
            n_imp = imposs.sum(axis=1)
            n_ect = ect.sum(axis=1)
            flags = (
                flags
                | ((n_imp > 0) * int(Quality.RR_IMPOSSIBLE))
                | ((n_ect > 0) * int(Quality.RR_ECTOPIC))
            )
            acc = np.where(plaus & ~ect, rr, np.nan)
            has = trusted & (rr_count > 0)
            cols = np.arange(n)
            lastacc = acc[ar_s, np.clip(rr_count - 1, 0, r - 1), cols]  # (S, N)
            # the latest slot before s that carried beats (-1: before this block)
            hidx = _cummax0(np.where(has, ar_s, -1))
            jprev = np.empty_like(hidx)
            jprev[0] = -1
            jprev[1:] = hidx[:-1]
            jc = np.maximum(jprev, 0)
            before = jprev >= 0
            prevval = np.where(before, lastacc[jc, cols], self.last_rr)
            prev0 = np.where(cb - np.where(before, cb[jc, cols], 0) > 0, np.nan, prevval)
            prev = np.concatenate([prev0[:, None, :], acc[:, :-1, :]], axis=1)
            d = acc - prev
            ok = ~np.isnan(d)
            sumsq = np.where(ok, d * d, 0.0).sum(axis=1)
            ndiff = ok.sum(axis=1)
            cover = np.where(ok, acc, 0.0).sum(axis=1)
            jl = hidx[-1]
            jlc = np.maximum(jl, 0)
            seen = jl >= 0
            last = np.where(seen, lastacc[jlc, cols], self.last_rr)
            self.last_rr = np.where(cb[-1] - np.where(seen, cb[jlc, cols], 0) > 0, np.nan, last)
            nreal = real.sum(axis=1)
            self.n_rr += _sum0(nreal)
            self.n_rr_impossible += _sum0(n_imp)
            self.n_rr_ectopic += _sum0(n_ect)
            self.n_rr_untrusted += _sum0(nreal * ~trusted)
        else:
            sumsq = ndiff = cover = np.zeros((s_, n))
            self.last_rr = np.where(cb[-1] > 0, np.nan, self.last_rr)

        # --- heart rate: exponential smoothing in closed form over the block
        tu0 = np.where(np.isnan(self.t_usable), ninf, self.t_usable)
        cmu = _cummax0(np.concatenate([tu0[None], np.where(usable, t, ninf)]))
        prev_u = cmu[:-1]
        last_u = cmu[-1]
        any_u = usable[0] if s_ == 1 else usable.any(axis=0)
        dtu = t - prev_u  # inf when there was no usable sample before
        x = np.where(usable, bpm, 0.0)
        gain = np.where(usable, -np.expm1(-dtu / cfg.hr_tau_s), 0.0) * x  # (1 - d_i) x_i
        y0 = np.where(np.isnan(self.hr), 0.0, self.hr)
        keep0 = np.exp(-(t - tu0) / cfg.hr_tau_s)  # 0 when no usable sample before the block
        if s_ == 1:
            y = gain + keep0 * y0
        else:
            lag = t[:, None, :] - t[None, :, :]  # (S, S, N): t_s - t_i
            tri = ar_s >= np.arange(s_)[None, :]
            wmat = np.exp(np.where(tri[..., None], -lag, ninf) / cfg.hr_tau_s)
            y = (wmat * gain[None]).sum(axis=1) + keep0 * y0
        ilast = _cummax0(np.where(usable, ar_s, -1))[-1]
        y_last = y[np.clip(ilast, 0, None), np.arange(n)]
        self.hr = np.where(any_u, y_last, self.hr)

        # --- heart-rate slope: exponentially weighted least squares, sums about the last time
        known = ~np.isnan(self._t_ref)
        t1 = np.where(any_u, last_u, 0.0)
        dd = np.where(known & any_u, t1 - np.where(known, self._t_ref, 0.0), 0.0)
        dec = np.exp(-dd / cfg.slope_tau_s)
        u = np.where(usable, t - t1, 0.0)
        w = np.where(usable, np.exp(u / cfg.slope_tau_s), 0.0)
        wu = w * u
        s0, s1, s2, sy, sty = self._s0, self._s1, self._s2, self._sy, self._sty
        # (without a usable sample dd = 0, dec = 1 and w = 0: the sums stay as they are)
        self._s0 = dec * s0 + _sum0(w)
        self._s1 = dec * (s1 - dd * s0) + _sum0(wu)
        self._s2 = dec * (s2 - 2.0 * dd * s1 + dd * dd * s0) + _sum0(wu * u)
        self._sy = dec * sy + _sum0(w * x)
        self._sty = dec * (sty - dd * sy) + _sum0(wu * x)
        self._t_ref = np.where(any_u, last_u, self._t_ref)

        # --- level peak
        ymax = y[0] if s_ == 1 else np.where(usable, y, ninf).max(axis=0)
        self.peak_hr = np.where(any_u, np.fmax(self.peak_hr, ymax), self.peak_hr)

        # --- time bins
        credit = np.where(usable & (prev_u > ninf), np.minimum(dtu, art.stale_after_s), 0.0)
        h = y - self.baseline_bpm
        vals = np.empty((s_, _N_CHANNELS, n))
        vals[:, _IN_S] = ((h >= tg.low) & (h <= tg.high)) * credit
        vals[:, _ABOVE_S] = (h > tg.high) * credit
        vals[:, _OBS_S] = credit
        vals[:, _PRESENT_N] = present
        vals[:, _CLEAN_N] = present & (flags == 0)
        vals[:, _RR_SUMSQ] = sumsq
        vals[:, _RR_NDIFF] = ndiff
        vals[:, _RR_COVER_MS] = cover
        self.bins.add_block(t, vals)  # slots without a sample add zeros at a harmless time

        if self._baseline_est is not None:
            self._baseline_est.add_block(t, bpm, usable, present, sumsq, ndiff)

        # --- counts, times
        self.n_samples += _sum0(present)
        self.flag_counts += _sum0((flags[:, None, :] & _FLAG_VALUES[None, :, None]) != 0).T
        lp = cm[-1]
        self.t_present = np.where(lp > ninf, lp, self.t_present)
        self.t_usable = np.where(any_u, last_u, self.t_usable)
        return flags

    # --- outputs -----------------------------------------------------------------------------

    def observe(
        self, t: float | np.ndarray, *, scaled: bool = False, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The feature vectors at time ``t``: shape (N, N_FEATURES), layout :data:`FEATURE_NAMES`.

        Pure (changes nothing). ``scaled`` divides by :data:`FEATURE_SCALES`.
        """
        cfg = self.config
        tg = self.targets
        n = self.n
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
        t0 = np.where(np.isnan(self.t0), t, self.t0)
        o = np.empty((n, N_FEATURES)) if out is None else out
        base = self.baseline_bpm
        have = ~np.isnan(self.hr)
        hr_above = np.where(have, self.hr - base, 0.0)
        o[:, Feature.HR_ABOVE_BPM] = hr_above
        den = self._s0 * self._s2 - self._s1 * self._s1
        num = self._s0 * self._sty - self._s1 * self._sy
        ok = den > 1e-9 * np.maximum(self._s0 * self._s0, 1.0)
        o[:, Feature.HR_SLOPE_BPM_PER_MIN] = np.where(ok, 60.0 * num / np.where(ok, den, 1.0), 0.0)
        o[:, Feature.AROUSAL_NORM] = (hr_above - tg.low) / (tg.high - tg.low)
        o[:, Feature.CEILING_MARGIN_BPM] = tg.ceiling - hr_above
        o[:, Feature.HARD_MAX_MARGIN_BPM] = tg.hard_max - np.where(have, self.hr, base)

        win = self.bins.total(t, cfg.window_bins, _WINDOW_CHANNELS)
        obs_s = win[_OBS_S]
        pos = obs_s > 0
        safe = np.where(pos, obs_s, 1.0)
        o[:, Feature.IN_WINDOW_FRAC] = np.where(pos, win[_IN_S] / safe, 0.0)
        o[:, Feature.ABOVE_WINDOW_FRAC] = np.where(pos, win[_ABOVE_S] / safe, 0.0)

        minute = self.bins.total(t, cfg.rmssd_bins, _MINUTE_CHANNELS)
        p0 = _PRESENT_N  # minute[c - p0] is channel c
        cover, ndiff, sumsq = (
            minute[_RR_COVER_MS - p0],
            minute[_RR_NDIFF - p0],
            minute[_RR_SUMSQ - p0],
        )
        valid = (cover >= 1000.0 * cfg.rmssd_min_s) & (ndiff > 0)
        rmssd = np.sqrt(sumsq / np.where(valid, ndiff, 1.0))
        o[:, Feature.RMSSD_MS] = np.where(valid, rmssd, 0.0)
        o[:, Feature.RMSSD_VALID] = valid
        brm = self.baseline_rmssd_ms
        relok = valid & (brm > 0)  # False for NaN
        o[:, Feature.RMSSD_REL] = np.where(relok, rmssd / np.where(relok, brm, 1.0), 1.0)

        o[:, Feature.INTENSITY] = np.nan_to_num(self.intensity)
        o[:, Feature.SINCE_SCENE_CHANGE_S] = t - np.where(np.isnan(self.t_scene), t0, self.t_scene)
        o[:, Feature.AT_INTENSITY_S] = t - np.where(np.isnan(self.t_level), t0, self.t_level)
        peak = np.where(np.isnan(self.peak_hr), hr_above, self.peak_hr - base)
        fall = np.maximum(peak - hr_above, 0.0)
        o[:, Feature.PEAK_ABOVE_BPM] = peak
        o[:, Feature.FALL_FROM_PEAK_BPM] = fall
        pk = peak > 0
        o[:, Feature.FALL_FROM_PEAK_FRAC] = np.where(
            pk, np.minimum(fall / np.where(pk, peak, 1.0), 1.0), 0.0
        )

        sk = ~np.isnan(self.suds)
        o[:, Feature.SUDS] = np.where(sk, self.suds, 0.0)
        o[:, Feature.SUDS_AGE_S] = np.where(sk, t - np.where(sk, self.t_suds, 0.0), 0.0)
        o[:, Feature.SUDS_KNOWN] = sk

        since = t - np.where(np.isnan(self.t_usable), t0, self.t_usable)
        o[:, Feature.SINCE_CLEAN_S] = since
        o[:, Feature.STALE] = (since > cfg.artifacts.stale_after_s) | np.isnan(self.t_usable)
        q = (
            minute
            if cfg.quality_bins == cfg.rmssd_bins
            else self.bins.total(t, cfg.quality_bins, _MINUTE_CHANNELS)
        )
        npres = q[_PRESENT_N - p0]
        o[:, Feature.CLEAN_FRAC] = np.where(
            npres > 0, q[_CLEAN_N - p0] / np.where(npres > 0, npres, 1.0), 0.0
        )
        o[:, Feature.BASELINE_KNOWN] = self.baseline_known
        if scaled:
            o /= FEATURE_SCALES
        return o

    def hr_above(self) -> np.ndarray:
        """Smoothed heart rate above baseline (N,), NaN where no usable sample was seen yet."""
        return self.hr - self.baseline_bpm

    def record(self, t: float, i: int = 0) -> dict[str, float]:
        """Named features of patient ``i`` at ``t`` (for the session record)."""
        row = self.observe(t)[i]
        return {name: float(v) for name, v in zip(FEATURE_NAMES, row)}

    def counts(self, i: int = 0) -> dict[str, int]:
        """Artifact and sample counts of patient ``i``."""
        out = {"samples": int(self.n_samples[i]), "rr": int(self.n_rr[i])}
        out["rr_impossible"] = int(self.n_rr_impossible[i])
        out["rr_ectopic"] = int(self.n_rr_ectopic[i])
        out["rr_untrusted"] = int(self.n_rr_untrusted[i])
        for j, f in enumerate(FLAG_ORDER):
            out[f"flag_{f.name.lower()}"] = int(self.flag_counts[i, j])
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
