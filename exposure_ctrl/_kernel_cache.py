"""Keep numba's on-disk kernel cache consistent across files.

numba caches a compiled kernel beside its source (``__pycache__/*.nbi``, ``*.nbc``) and
revalidates it against the timestamp and size of *that one file* only. A kernel that calls a
kernel of another file (``arousal.features`` calls ``arousal.artifacts`` and ``arousal.bins``,
``arousal.tracker`` calls the features and the model) would keep running the old machine code
of the callee after the callee's file changed — after an edit, or after an upgrade that changed
one file and not the other. :func:`guard` prevents that: it hashes every source file of a
package and, when the hash differs from the one recorded with the cache, removes the package's
cached kernels so they are compiled again from the current sources.

Where ``__pycache__`` cannot be written (a read-only install), numba keeps its cache in a
per-user directory instead and nothing here applies; set ``NUMBA_CACHE_DIR`` to a fresh
directory after upgrading such an install.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

__all__ = ["guard"]

_STAMP = "kernels.sha256"


def guard(package_dir: str | Path) -> bool:
    """Drop the package's cached kernels if any of its sources changed; True if it dropped them."""
    pkg = Path(package_dir)
    h = hashlib.sha256()
    for src in sorted(pkg.glob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    digest = h.hexdigest()
    cache = pkg / "__pycache__"
    stamp = cache / _STAMP
    with contextlib.suppress(OSError):
        if stamp.read_text() == digest:
            return False
    dropped = False
    with contextlib.suppress(OSError):
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink()
            dropped = True
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    return dropped
