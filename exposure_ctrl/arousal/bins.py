"""Time-binned sliding windows over N patients: O(1) per sample, exact to one bin.

A window of ``B`` bins of ``bin_s`` seconds keeps, per patient and per bin, the sums of a few
channels. A bin is identified by its absolute index ``floor(t / bin_s)``; the slot it lives in
is ``index % B``. Adding to a slot that still holds an older bin first clears it, so nothing has
to be scanned or evicted. The total over the last ``k`` bins at time ``t`` sums the slots whose
index lies in ``(floor(t / bin_s) - k, floor(t / bin_s)]``: a window of between ``(k - 1) *
bin_s`` and ``k * bin_s`` seconds that always includes the current, partial bin.

Arrays keep the patients on the first axis (``sums`` is (N, B, channels), ``index`` (N, B)):
the compiled helper :func:`bin_slot` finds (and clears) a patient's slot for the features'
kernel; the features' observation sums all its windows in one pass of the rule above, and
:meth:`TimeBins.total` applies it with numpy (for inspection and tests).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["TimeBins", "bin_slot"]

NEVER = np.iinfo(np.int64).min // 2
"""Index of a slot that never held a bin."""


@numba.njit(cache=True, nogil=True, inline="always")
def bin_slot(sums: np.ndarray, index: np.ndarray, i: int, t: float, bin_s: float) -> int:
    """The slot of time ``t`` in patient ``i``'s ring (``sums`` (N, B, C), ``index`` (N, B)),
    cleared first when it still holds an older bin. Times must not decrease."""
    fb = math.floor(t / bin_s)
    nb = index.shape[1]
    # fb mod nb in floating point (an integer division costs several times more); exact for
    # any time below 10^15 s, and in 0..nb-1 for negative times too
    slot = np.int64(fb - nb * math.floor(fb / nb))
    b = np.int64(fb)
    if index[i, slot] != b:
        index[i, slot] = b
        for c in range(sums.shape[2]):
            sums[i, slot, c] = 0.0
    return slot


class TimeBins:
    """Per-patient ring of time bins, each holding ``channels`` sums (the storage; the
    features' kernel adds to it with :func:`bin_slot`)."""

    __slots__ = ("bin_s", "channels", "index", "n", "n_bins", "sums")

    def __init__(self, n: int, n_bins: int, bin_s: float, channels: int) -> None:
        if n_bins < 1 or bin_s <= 0 or channels < 1:
            raise ValueError("TimeBins needs n_bins >= 1, bin_s > 0 and channels >= 1")
        self.n = int(n)
        self.n_bins = int(n_bins)
        self.bin_s = float(bin_s)
        self.channels = int(channels)
        self.sums = np.zeros((self.n, self.n_bins, self.channels))
        self.index = np.full((self.n, self.n_bins), NEVER, dtype=np.int64)

    def total(self, t: np.ndarray | float, k: int | None = None) -> np.ndarray:
        """Sums of every channel over the last ``k`` bins (default all) at time ``t``:
        (channels, N)."""
        k = self.n_bins if k is None else min(int(k), self.n_bins)
        now = np.floor(np.atleast_1d(np.asarray(t, dtype=np.float64)) / self.bin_s).astype(np.int64)[:, None]
        live = (self.index <= now) & (now - self.index < k)  # (N, B)
        return np.where(live[:, :, None], self.sums, 0.0).sum(axis=1).T

    def put_rows(self, rows: np.ndarray, src: TimeBins) -> None:
        """Overwrite patients ``rows`` with the patients of ``src`` (``len(rows)`` of them)."""
        if (src.n_bins, src.bin_s, src.channels) != (self.n_bins, self.bin_s, self.channels):
            raise ValueError("put_rows needs time bins of the same shape")
        self.sums[rows] = src.sums
        self.index[rows] = src.index

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Forget everything (for the patients in ``mask``)."""
        if mask is None:
            self.sums[:] = 0.0
            self.index[:] = NEVER
        else:
            self.sums[mask] = 0.0
            self.index[mask] = NEVER
