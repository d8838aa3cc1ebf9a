"""Time-binned sliding windows over N patients: O(1) per sample, exact to one bin.

A window of ``B`` bins of ``bin_s`` seconds keeps, per patient and per bin, the sums of a few
channels. A bin is identified by its absolute index ``floor(t / bin_s)``; the slot it lives in
is ``index % B``. Adding to a slot that still holds an older bin first clears it, so nothing has
to be scanned or evicted. The total over the last ``k`` bins at time ``t`` sums the slots whose
index lies in ``(floor(t / bin_s) - k, floor(t / bin_s)]``: a window of between ``(k - 1) *
bin_s`` and ``k * bin_s`` seconds that always includes the current, partial bin.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TimeBins"]

_NEVER = np.iinfo(np.int64).min // 2


class TimeBins:
    """Per-patient ring of time bins, each holding ``channels`` sums."""

    __slots__ = ("n", "n_bins", "bin_s", "channels", "sums", "index", "_rows")

    def __init__(self, n: int, n_bins: int, bin_s: float, channels: int) -> None:
        if n_bins < 1 or bin_s <= 0 or channels < 1:
            raise ValueError("TimeBins needs n_bins >= 1, bin_s > 0 and channels >= 1")
        self.n = int(n)
        self.n_bins = int(n_bins)
        self.bin_s = float(bin_s)
        self.channels = int(channels)
        self.sums = np.zeros((self.n, self.n_bins, self.channels))
        self.index = np.full((self.n, self.n_bins), _NEVER, dtype=np.int64)
        self._rows = np.arange(self.n)

    def bin_of(self, t: np.ndarray | float) -> np.ndarray:
        """Absolute bin index of time ``t``, broadcast to shape (N,)."""
        return np.broadcast_to(np.floor(np.asarray(t, dtype=np.float64) / self.bin_s), (self.n,)).astype(
            np.int64
        )

    def add(self, t: np.ndarray | float, values: np.ndarray) -> None:
        """Add ``values`` (N, channels) to every patient's bin at time ``t`` (scalar or (N,))."""
        a = self.bin_of(t)
        slot = a % self.n_bins
        rows = self._rows
        stale = self.index[rows, slot] != a
        cur = self.sums[rows, slot]
        cur[stale] = 0.0
        cur += values
        self.sums[rows, slot] = cur
        self.index[rows, slot] = a

    def total(self, t: np.ndarray | float, k: int | None = None) -> np.ndarray:
        """Channel sums over the last ``k`` bins (default all) at time ``t``: shape (N, channels)."""
        k = self.n_bins if k is None else min(int(k), self.n_bins)
        now = self.bin_of(t)[:, None]
        live = (self.index > now - k) & (self.index <= now)
        return np.einsum("nb,nbc->nc", live.astype(np.float64), self.sums)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget everything (for the patients in ``mask``)."""
        if mask is None:
            self.sums[:] = 0.0
            self.index[:] = _NEVER
        else:
            self.sums[mask] = 0.0
            self.index[mask] = _NEVER
