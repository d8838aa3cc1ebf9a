"""How many threads a batched kernel splits its patients over.

The batched kernels (the simulator's period, the features' block update, the tracker's tick)
loop over patients, and a patient's iteration touches that patient's entries only; from
:data:`PARALLEL_MIN_ROWS` patients on they run as ``chunks`` contiguous ranges on numba's
threads (``prange``), and the results are the same bit for bit as one thread's. Below it (a
single environment, the live session: N = 1) they stay on the calling thread, where starting
threads would cost more than the work and no threading layer is ever started.

The number of threads is numba's: ``NUMBA_NUM_THREADS`` (default: the machine's cores) or
``numba.set_num_threads``; ``NUMBA_NUM_THREADS=1`` keeps everything on one thread.
"""

from __future__ import annotations

import numba

__all__ = ["PARALLEL_MIN_ROWS", "chunks_for"]

PARALLEL_MIN_ROWS = 256
"""Fewest patients for which a batched kernel uses several threads (measured on the 2-core
development machine: at N = 1024 two threads take the simulator's period from ~0.47 to
~0.22 ms; below a few hundred patients the threads' start-up, ~10 µs, eats the gain)."""


def chunks_for(n: int) -> int:
    """The number of ranges to split ``n`` patients into: 1 (the serial kernel) below
    :data:`PARALLEL_MIN_ROWS` or with one thread, else numba's number of threads."""
    if n < PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(int(numba.get_num_threads()), n))
