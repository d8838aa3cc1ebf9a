"""How many ranges a batched kernel splits its patients into, for numba's threads.

The batched kernels (the simulator's period, the features' block update, the tracker's tick)
loop over patients, and a patient's iteration touches that patient's entries only; from
:data:`PARALLEL_MIN_ROWS` patients on they run as ``chunks`` contiguous ranges on numba's
threads (``prange``), and the results are the same bit for bit as one thread's. Below it (a
single environment, the live session: N = 1) they stay on the calling thread, where starting
threads would cost more than the work, and no threading layer is ever started.

The number of threads is numba's: ``NUMBA_NUM_THREADS`` (default: the machine's cores) or
``numba.set_num_threads``; ``NUMBA_NUM_THREADS=1`` keeps everything on one thread (worth it on a
machine whose cores are busy with other work: two fixed ranges wait for the slower core).

Processes: numba's threading layer here is GNU OpenMP, which is not fork-safe: a ``fork()``ed
child of a process that started it is killed if it enters a parallel region. So the parallel
kernels run only in the process that first asked for them (:func:`parallel_ok`); a forked child
computes the same numbers on its own thread. (Spawned or forkserver children start afresh.)
Where numba falls back to its ``workqueue`` layer (no OpenMP, no TBB), two Python threads must
not run these kernels at once; the simulator and the environments run on one thread.
"""

from __future__ import annotations

import os

import numba

__all__ = ["PARALLEL_MIN_ROWS", "chunks_for", "parallel_ok"]

PARALLEL_MIN_ROWS = 256
"""Fewest patients for which a batched kernel uses several threads
(``python benchmarks/bench_sim.py`` prints the simulator's step on 1 and on all threads for 32
to 512 patients, and at 1024)."""

_owner_pid: int | None = None  # the process whose parallel kernels these are


def chunks_for(n: int) -> int:
    """The number of ranges to split ``n`` patients into: 1 (the serial kernel) below
    :data:`PARALLEL_MIN_ROWS`, with one thread or in a forked child, else numba's number of
    threads."""
    if n < PARALLEL_MIN_ROWS or not parallel_ok():
        return 1
    return max(1, min(int(numba.get_num_threads()), n))


def parallel_ok() -> bool:
    """Whether this process may run the parallel kernels: it is the first that asked (a forked
    child of it may not; see the module docstring)."""
    global _owner_pid
    pid = os.getpid()
    if _owner_pid is None:
        _owner_pid = pid
    return _owner_pid == pid
