"""Artifact screening of heart-rate samples, batch-first (N patients in numpy arrays).

Rules (every threshold is a field of :class:`ArtifactConfig`):

- ``BPM_IMPOSSIBLE``: the reported rate is not finite or lies outside ``bpm_min..bpm_max``
  (30..220). The sample's bpm is not used.
- ``NO_CONTACT``: the strap says it has no skin contact (``contact == 0``), or the source set the
  flag. Neither the bpm nor the RR intervals are used.
- ``DEVICE_ERROR``: set by the source. Neither bpm nor RR is used.
- ``AFTER_GAP``: the previous sample of this patient arrived more than ``stale_after_s`` before
  this one. The sample itself is used; the gap breaks the RR chain (no successive difference
  spans it) and is counted.
- ``RR_IMPOSSIBLE``: an RR interval outside ``rr_min_ms..rr_max_ms`` (270..2000 ms). That
  interval is dropped (the rest of the sample is used).
- ``RR_ECTOPIC``: an RR interval deviating from the local reference by more than
  ``ectopic_tolerance`` (25%) of it: an ectopic beat, a missed beat (about twice the reference)
  or a spurious one (about half). The reference is the median of the ``median_beats`` (7)
  physiologically possible RR intervals that precede the sample (the intervals of one
  notification are all judged against the same reference); while fewer than ``min_reference``
  (3) are known, it is ``60000 / bpm`` of the same sample when that bpm is usable, else no
  interval is judged. That interval is dropped.

A dropped interval also removes the successive differences it takes part in (RMSSD needs two
adjacent good beats). The functions here are pure; :class:`exposure_ctrl.arousal.FeatureState`
holds the state (the ring of recent intervals) and the counts.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exposure_ctrl.sensors.sample import Quality

__all__ = [
    "ArtifactConfig",
    "UNUSABLE_BPM",
    "UNTRUSTED_RR",
    "FLAG_ORDER",
    "screen_bpm",
    "screen_rr",
    "ring_median",
    "push_ring",
]

UNUSABLE_BPM = int(Quality.BPM_IMPOSSIBLE | Quality.NO_CONTACT | Quality.DEVICE_ERROR)
"""Flags that make a sample's bpm unusable."""

UNTRUSTED_RR = int(Quality.NO_CONTACT | Quality.DEVICE_ERROR)
"""Flags that make every RR interval of a sample untrusted."""

FLAG_ORDER: tuple[Quality, ...] = tuple(Quality)
"""Order of the per-flag counters (``FeatureState.flag_counts[:, i]`` counts ``FLAG_ORDER[i]``)."""


@dataclasses.dataclass(frozen=True)
class ArtifactConfig:
    """Thresholds of the artifact rules (see the module docstring)."""

    bpm_min: float = 30.0
    bpm_max: float = 220.0
    rr_min_ms: float = 270.0
    rr_max_ms: float = 2000.0
    ectopic_tolerance: float = 0.25
    median_beats: int = 7
    min_reference: int = 3
    stale_after_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.ectopic_tolerance < 1:
            raise ValueError(f"ectopic_tolerance must lie in (0, 1), found {self.ectopic_tolerance}")
        if self.median_beats < 1 or not 1 <= self.min_reference <= self.median_beats:
            raise ValueError("need median_beats >= 1 and 1 <= min_reference <= median_beats")


def screen_bpm(
    cfg: ArtifactConfig,
    bpm: np.ndarray,
    contact: np.ndarray,
    src_flags: np.ndarray,
    dt_present: np.ndarray,
) -> np.ndarray:
    """Sample-level flags (int64, shape (N,)) from bpm, contact (1/0/-1) and the gap before it."""
    flags = src_flags.astype(np.int64, copy=True)
    ok = (bpm >= cfg.bpm_min) & (bpm <= cfg.bpm_max)  # False for NaN
    flags |= np.where(ok, 0, int(Quality.BPM_IMPOSSIBLE))
    flags |= np.where(contact == 0, int(Quality.NO_CONTACT), 0)
    flags |= np.where(dt_present > cfg.stale_after_s, int(Quality.AFTER_GAP), 0)
    return flags


def ring_median(ring: np.ndarray, min_count: int) -> np.ndarray:
    """Median of the finite values of each row of ``ring`` (N, M); NaN if fewer than ``min_count``."""
    m = ring.shape[1]
    if m == 0:
        return np.full(ring.shape[0], np.nan)
    s = np.sort(ring, axis=1)  # NaN sorts last
    c = np.isfinite(ring).sum(axis=1)
    lo = np.clip((c - 1) // 2, 0, m - 1)
    hi = np.clip(c // 2, 0, m - 1)
    rows = np.arange(ring.shape[0])
    med = 0.5 * (s[rows, lo] + s[rows, hi])
    return np.where(c >= min_count, med, np.nan)


def push_ring(ring: np.ndarray, values: np.ndarray) -> np.ndarray:
    """New ring (N, M): the last M finite values of ``ring`` followed by ``values`` (N, R)."""
    m = ring.shape[1]
    if values.shape[1] == 0:
        return ring
    both = np.concatenate([ring, values], axis=1)
    order = np.argsort(np.isfinite(both), axis=1, kind="stable")  # non-finite first, order kept
    return np.take_along_axis(both, order[:, -m:], axis=1)


def screen_rr(
    cfg: ArtifactConfig,
    rr: np.ndarray,
    real: np.ndarray,
    trusted: np.ndarray,
    reference: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Judge the RR intervals (N, R) of one sample per patient.

    ``real`` marks the slots that hold an interval, ``trusted`` (N,) the samples whose intervals
    may be used at all, ``reference`` (N,) the local median (NaN: do not judge).

    Returns ``(plausible, impossible, ectopic)``, boolean (N, R): physiologically possible
    intervals of trusted samples (these feed the reference ring), impossible ones, and
    plausible ones rejected as ectopic. Accepted intervals are ``plausible & ~ectopic``.
    """
    considered = real & trusted[:, None]
    in_range = (rr >= cfg.rr_min_ms) & (rr <= cfg.rr_max_ms)
    plausible = considered & in_range
    impossible = considered & ~in_range
    ref = reference[:, None]
    with np.errstate(invalid="ignore"):
        ectopic = plausible & (np.abs(rr - ref) > cfg.ectopic_tolerance * ref)
    return plausible, impossible, ectopic
