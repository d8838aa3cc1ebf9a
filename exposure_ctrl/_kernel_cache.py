"""Keep numba's on-disk kernel cache consistent across files.

numba caches a compiled kernel beside its source (``__pycache__/*.nbi``, ``*.nbc``) and
revalidates it against the timestamp and size of *that one file* only. A kernel that calls a
kernel of another file (``arousal.features`` calls ``arousal.artifacts`` and ``arousal.bins``,
``arousal.tracker`` calls the features and the model) would keep running the old machine code
of the callee after the callee's file changed — after an edit, or after an upgrade that changed
one file and not the other; a kernel also bakes in module constants it reads (the quality flag
bits of ``sensors/sample.py``). :func:`guard` prevents that: it hashes every file the kernels
use and, when the hash differs from the one recorded with the cache, removes all cached kernels
so they are compiled again from the current sources. ``exposure_ctrl/__init__.py`` calls it
before any kernel runs.

Where ``__pycache__`` cannot be written (a read-only install), numba keeps its cache in a
per-user directory instead and nothing here applies; set ``NUMBA_CACHE_DIR`` to a fresh
directory after upgrading such an install.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

__all__ = ["guard", "KERNEL_SOURCES", "KERNEL_CACHES"]

_STAMP = "kernels.sha256"

KERNEL_SOURCES = ("arousal/*.py", "sim/kernels.py", "safety.py", "sensors/sample.py")
"""Every file whose code or constants a compiled kernel uses (relative to the package): the
arousal kernels call each other across files; ``sim/kernels.py`` and ``arousal/artifacts.py``
read the quality flag bits of ``sensors/sample.py`` at compile time."""

KERNEL_CACHES = ("arousal/__pycache__", "sim/__pycache__", "__pycache__")
"""Where numba caches the kernels of those files."""


def guard(
    root: str | Path = Path(__file__).parent,
    sources: tuple[str, ...] = KERNEL_SOURCES,
    caches: tuple[str, ...] = KERNEL_CACHES,
) -> bool:
    """Drop every cached kernel if any kernel source changed since they were cached; True if any
    was dropped. The stamp lives in ``root/__pycache__``."""
    pkg = Path(root)
    h = hashlib.sha256()
    for pattern in sources:
        for src in sorted(pkg.glob(pattern)):
            h.update(str(src.relative_to(pkg)).encode())
            h.update(src.read_bytes())
    digest = h.hexdigest()
    stamp = pkg / "__pycache__" / _STAMP
    with contextlib.suppress(OSError):
        if stamp.read_text() == digest:
            return False
    dropped = False
    with contextlib.suppress(OSError):
        for cache in caches:
            for f in list((pkg / cache).glob("*.nbi")) + list((pkg / cache).glob("*.nbc")):
                f.unlink()
                dropped = True
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest)
    return dropped
