"""Time-binned sliding windows over N patients: O(1) per sample, exact to one bin.

A window of ``B`` bins of ``bin_s`` seconds keeps, per patient and per bin, the sums of a few
channels. A bin is identified by its absolute index ``floor(t / bin_s)``; the slot it lives in
is ``index % B``. Adding to a slot that still holds an older bin first clears it, so nothing has
to be scanned or evicted. The total over the last ``k`` bins at time ``t`` sums the slots whose
index lies in ``(floor(t / bin_s) - k, floor(t / bin_s)]``: a window of between ``(k - 1) *
bin_s`` and ``k * bin_s`` seconds that always includes the current, partial bin.

Arrays keep the patients on the last axis (``sums`` is (B, channels, N)) so that numpy's
elementwise loops run over N.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TimeBins"]

_NEVER = np.iinfo(np.int64).min // 2


class TimeBins:
    """Per-patient ring of time bins, each holding ``channels`` sums."""

    __slots__ = ("_cols", "bin_s", "channels", "index", "n", "n_bins", "sums")

    def __init__(self, n: int, n_bins: int, bin_s: float, channels: int) -> None:
        if n_bins < 1 or bin_s <= 0 or channels < 1:
            raise ValueError("TimeBins needs n_bins >= 1, bin_s > 0 and channels >= 1")
        self.n = int(n)
        self.n_bins = int(n_bins)
        self.bin_s = float(bin_s)
        self.channels = int(channels)
        self.sums = np.zeros((self.n_bins, self.channels, self.n))
        self.index = np.full((self.n_bins, self.n), _NEVER, dtype=np.int64)
        self._cols = np.arange(self.n)

    def bin_of(self, t: np.ndarray | float) -> np.ndarray:
        """Absolute bin index of time ``t`` (any shape)."""
        return np.floor(np.asarray(t, dtype=np.float64) / self.bin_s).astype(np.int64)

    def add_block(self, t: np.ndarray, values: np.ndarray) -> None:
        """Add ``values`` (S, channels, N) at times ``t`` (S, N); times must not decrease.

        Adding zeros at the time of the latest bin written, or at a new time, changes nothing
        that a later total would see."""
        a = self.bin_of(t)
        a0 = a[0]
        off = a - a0
        span = int(off[-1].max()) + 1
        if span > self.n_bins:  # a block longer than the whole window: one slot at a time
            for i in range(a.shape[0]):
                self.add_block(t[i : i + 1], values[i : i + 1])
            return
        cols = self._cols
        reach = off[-1]  # each patient's last bin in this block, relative to its first
        for d in range(span):
            b = a0 + d
            slot = b % self.n_bins
            if span == 1:
                add = values.sum(axis=0)
                clear = self.index[slot, cols] != b
            else:
                # never touch a bin past a patient's own last time: that would evict live data
                add = (values * (off == d)[:, None, :]).sum(axis=0)
                clear = (self.index[slot, cols] != b) & (reach >= d)
                b = np.where(reach >= d, b, self.index[slot, cols])
            cur = self.sums[slot, :, cols]  # (N, channels)
            cur[clear] = 0.0
            cur += add.T
            self.sums[slot, :, cols] = cur
            self.index[slot, cols] = b

    def total(
        self, t: np.ndarray | float, k: int | None = None, channels: slice = slice(None)
    ) -> np.ndarray:
        """Sums of ``channels`` over the last ``k`` bins (default all) at time ``t``: (channels, N)."""
        k = self.n_bins if k is None else min(int(k), self.n_bins)
        now = self.bin_of(t)
        live = ((self.index > now - k) & (self.index <= now)).astype(np.float64)
        return np.einsum("bcn,bn->cn", self.sums[:, channels], live)

    def put_rows(self, rows: np.ndarray, src: TimeBins) -> None:
        """Overwrite patients ``rows`` with the patients of ``src`` (``len(rows)`` of them)."""
        if (src.n_bins, src.bin_s, src.channels) != (self.n_bins, self.bin_s, self.channels):
            raise ValueError("put_rows needs time bins of the same shape")
        self.sums[:, :, rows] = src.sums
        self.index[:, rows] = src.index

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget everything (for the patients in ``mask``)."""
        if mask is None:
            self.sums[:] = 0.0
            self.index[:] = _NEVER
        else:
            self.sums[:, :, mask] = 0.0
            self.index[:, mask] = _NEVER
