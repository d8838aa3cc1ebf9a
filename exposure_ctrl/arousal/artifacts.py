"""Artifact screening of heart-rate samples: the rules, and the compiled helpers that apply them.

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
adjacent good beats). The helpers here are compiled (numba) scalar functions of one sample of one
patient; :class:`exposure_ctrl.arousal.FeatureState`'s kernel calls them for every patient and
sample, and holds the state (the ring of recent plausible intervals) and the counts.
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np

from exposure_ctrl.sensors.sample import Quality

__all__ = [
    "FLAG_ORDER",
    "UNTRUSTED_RR",
    "UNUSABLE_BPM",
    "ArtifactConfig",
    "ring_median",
    "ring_push",
    "sample_flags",
]

UNUSABLE_BPM = int(Quality.BPM_IMPOSSIBLE | Quality.NO_CONTACT | Quality.DEVICE_ERROR)
"""Flags that make a sample's bpm unusable."""

UNTRUSTED_RR = int(Quality.NO_CONTACT | Quality.DEVICE_ERROR)
"""Flags that make every RR interval of a sample untrusted."""

FLAG_ORDER: tuple[Quality, ...] = tuple(Quality)
"""Order of the per-flag counters (``FeatureState.flag_counts[:, i]`` counts ``FLAG_ORDER[i]``)."""

# Quality bits as plain ints for the compiled code (numba sees module globals as constants)
BPM_IMPOSSIBLE_ = int(Quality.BPM_IMPOSSIBLE)
NO_CONTACT_ = int(Quality.NO_CONTACT)
AFTER_GAP_ = int(Quality.AFTER_GAP)
RR_IMPOSSIBLE_ = int(Quality.RR_IMPOSSIBLE)
RR_ECTOPIC_ = int(Quality.RR_ECTOPIC)


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
            raise ValueError(
                f"ectopic_tolerance must lie in (0, 1), found {self.ectopic_tolerance}"
            )
        if self.median_beats < 1 or not 1 <= self.min_reference <= self.median_beats:
            raise ValueError("need median_beats >= 1 and 1 <= min_reference <= median_beats")


@numba.njit(cache=True, nogil=True, inline="always")
def sample_flags(
    bpm: float,
    contact: int,
    src_flags: int,
    after_gap: bool,
    bpm_min: float,
    bpm_max: float,
) -> int:
    """Sample-level flags of one sample: the source's, ``BPM_IMPOSSIBLE`` unless ``bpm_min <=
    bpm <= bpm_max`` (so also for NaN), ``NO_CONTACT`` when ``contact == 0`` (1 contact, -1 not
    reported) and ``AFTER_GAP``."""
    flags = src_flags
    if not (bpm >= bpm_min and bpm <= bpm_max):
        flags |= BPM_IMPOSSIBLE_
    if contact == 0:
        flags |= NO_CONTACT_
    if after_gap:
        flags |= AFTER_GAP_
    return flags


@numba.njit(cache=True, nogil=True, inline="always")
def _median7(a0: float, a1: float, a2: float, a3: float, a4: float, a5: float, a6: float) -> float:
    """The middle one of 7 finite values: Batcher's odd-even merge sort (16 comparators), no
    branches."""
    a0, a1 = min(a0, a1), max(a0, a1)
    a2, a3 = min(a2, a3), max(a2, a3)
    a4, a5 = min(a4, a5), max(a4, a5)
    a0, a2 = min(a0, a2), max(a0, a2)
    a1, a3 = min(a1, a3), max(a1, a3)
    a4, a6 = min(a4, a6), max(a4, a6)
    a1, a2 = min(a1, a2), max(a1, a2)
    a5, a6 = min(a5, a6), max(a5, a6)
    a0, a4 = min(a0, a4), max(a0, a4)
    a1, a5 = min(a1, a5), max(a1, a5)
    a2, a6 = min(a2, a6), max(a2, a6)
    a2, a4 = min(a2, a4), max(a2, a4)
    a3, a5 = min(a3, a5), max(a3, a5)
    a1, a2 = min(a1, a2), max(a1, a2)
    a3, a4 = min(a3, a4), max(a3, a4)
    return a3


@numba.njit(cache=True, nogil=True, inline="always")
def ring_median(ring: np.ndarray, min_count: int) -> float:
    """Median of the finite values of ``ring`` (M,, in any order), NaN while fewer than
    ``min_count``.

    With ``c`` values in sorted order ``v``, the median is ``(v[(c - 1) // 2] + v[c // 2]) /
    2``. The value of rank ``r`` is found by counting, for each value, the values below it
    (ties broken by position): M² comparisons without data-dependent stores (M is 7)."""
    m = ring.shape[0]
    c = 0
    for j in range(m):
        if not math.isnan(ring[j]):
            c += 1
    if c == 0 or c < min_count:
        return math.nan
    if c == 7 and m == 7:  # the usual case: a sorting network on registers
        return _median7(ring[0], ring[1], ring[2], ring[3], ring[4], ring[5], ring[6])
    lo = (c - 1) // 2
    hi = c // 2
    v_lo = math.nan
    v_hi = math.nan
    for j in range(m):
        x = ring[j]
        if math.isnan(x):
            continue
        rank = 0
        for k in range(m):
            y = ring[k]
            # branch-free (random data would defeat the branch predictor); NaN compares False
            rank += np.int64(y < x) + np.int64((y == x) & (k < j))
        v_lo = x if rank == lo else v_lo
        v_hi = x if rank == hi else v_hi
    return 0.5 * (v_lo + v_hi)


@numba.njit(cache=True, nogil=True, inline="always")
def ring_push(ring: np.ndarray, pos: int, x: float) -> int:
    """Put ``x`` into the ring of the last M plausible intervals (NaN while fewer are known) at
    ``pos``, where the oldest one is, and return the next position."""
    ring[pos] = x
    pos += 1
    return 0 if pos == ring.shape[0] else pos
