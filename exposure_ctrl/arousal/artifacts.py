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
import functools

import numpy as np

from exposure_ctrl.sensors.sample import Quality

__all__ = [
    "FLAG_ORDER",
    "UNTRUSTED_RR",
    "UNUSABLE_BPM",
    "ArtifactConfig",
    "block_references",
    "median_rows",
    "sample_flags",
    "screen_rr",
    "sorting_network",
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
            raise ValueError(
                f"ectopic_tolerance must lie in (0, 1), found {self.ectopic_tolerance}"
            )
        if self.median_beats < 1 or not 1 <= self.min_reference <= self.median_beats:
            raise ValueError("need median_beats >= 1 and 1 <= min_reference <= median_beats")


def sample_flags(
    cfg: ArtifactConfig,
    bpm: np.ndarray,
    contact: np.ndarray,
    src_flags: np.ndarray,
    after_gap: np.ndarray,
) -> np.ndarray:
    """Sample-level flags (int64, any shape) from bpm, contact (1/0/-1) and the gap before it."""
    ok = (bpm >= cfg.bpm_min) & (bpm <= cfg.bpm_max)  # False for NaN
    flags = src_flags | (~ok * int(Quality.BPM_IMPOSSIBLE))
    flags |= (contact == 0) * int(Quality.NO_CONTACT)
    flags |= after_gap * int(Quality.AFTER_GAP)
    return flags


@functools.cache
def sorting_network(m: int) -> tuple[tuple[int, int], ...]:
    """Comparators of Batcher's odd-even merge sort for ``m`` inputs (16 for m = 7)."""
    pairs = []
    p = 1
    while p < m:
        k = p
        while k >= 1:
            for j in range(k % p, m - k, 2 * k):
                for i in range(min(k, m - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def median_rows(win: np.ndarray, min_count: int) -> np.ndarray:
    """Median along axis 0 of ``win`` (M, ...), ``inf`` meaning missing; NaN where fewer than
    ``min_count`` values are present.

    Small arrays are sorted with ``np.sort``; large ones with a sorting network of
    ``np.minimum``/``np.maximum`` (vectorised over every element). Both sort exactly, so the
    result does not depend on the size.
    """
    m = win.shape[0]
    if win[0].size <= 64:
        rows = list(np.sort(win, axis=0))
    else:
        rows = list(win)
        for i, j in sorting_network(m):
            lo = np.minimum(rows[i], rows[j])
            rows[j] = np.maximum(rows[i], rows[j])
            rows[i] = lo
    c = (win < np.inf).sum(axis=0)
    if (c == m).all():
        if m % 2:
            return rows[m // 2].copy()
        return 0.5 * (rows[m // 2 - 1] + rows[m // 2])
    lo = np.clip((c - 1) // 2, 0, m - 1)
    hi = np.clip(c // 2, 0, m - 1)
    med = 0.5 * (np.choose(lo, rows) + np.choose(hi, rows))
    return np.where(c >= min_count, med, np.nan)


def block_references(
    cfg: ArtifactConfig, ring: np.ndarray, plausible_rr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reference medians of S consecutive samples and the ring after them (N-last layout).

    ``ring`` (M, N) holds the last M plausible intervals (oldest first, NaN where fewer are
    known); ``plausible_rr`` (S, R, N) the block's intervals, NaN where not plausible. The
    reference of sample s is the median of the M plausible intervals before it (NaN while
    fewer than ``min_reference``). Returns ``(reference (S, N), new ring (M, N))``.
    """
    s_, r, n = plausible_rr.shape
    m = ring.shape[0]
    q = np.concatenate([ring, plausible_rr.reshape(s_ * r, n)], axis=0)  # (L, N)
    fin = ~np.isnan(q)
    cnt = np.cumsum(fin, axis=0)  # finite values up to and including each slot
    packed = np.full((m + q.shape[0], n), np.inf)  # m missing values, then the finite ones
    col = np.broadcast_to(np.arange(n), q.shape)
    packed[(m - 1 + cnt)[fin], col[fin]] = q[fin]
    before = cnt[m - 1 :: r][:s_] if m else np.zeros((s_, n), dtype=np.int64)  # finite before s
    if m == 0:
        return np.full((s_, n), np.nan), ring
    cols = np.arange(n)
    win = packed[before[None] + np.arange(m)[:, None, None], cols]  # (M, S, N), oldest first
    ref = median_rows(win, cfg.min_reference)
    new = packed[cnt[-1][None, :] + np.arange(m)[:, None], cols]
    return ref, np.where(new == np.inf, np.nan, new)


def screen_rr(
    cfg: ArtifactConfig,
    rr: np.ndarray,
    real: np.ndarray,
    trusted: np.ndarray,
    reference: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Judge RR intervals (S, R, N): ``real`` marks the slots holding one, ``trusted`` (S, N)
    the samples whose intervals may be used, ``reference`` (S, N) the local median (NaN: do
    not judge).

    Returns ``(plausible, impossible, ectopic)``, boolean (S, R, N): physiologically possible
    intervals of trusted samples (these feed the reference ring), impossible ones, and
    plausible ones rejected as ectopic. Accepted intervals are ``plausible & ~ectopic``.
    """
    considered = real & trusted[:, None, :]
    in_range = (rr >= cfg.rr_min_ms) & (rr <= cfg.rr_max_ms)
    plausible = considered & in_range
    impossible = considered & ~in_range
    ref = reference[:, None, :]
    ectopic = plausible & (np.abs(rr - ref) > cfg.ectopic_tolerance * ref)
    return plausible, impossible, ectopic
