"""Where the store lives, and creating files that only their owner can read.

The default store is ``$EXPOSURE_CTRL_HOME/sessions.sqlite`` if that variable is set, else
``$XDG_DATA_HOME/exposure-ctrl/sessions.sqlite`` (``~/.local/share/exposure-ctrl/...``).
Directories the store creates get mode 0700 and files 0600 (DESIGN.md invariant 4). The same
helpers write reports and exports, which hold the same health data.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = [
    "HOME_ENV",
    "data_dir",
    "default_store_path",
    "ensure_private_dir",
    "create_private_file",
    "tighten_file",
    "write_private_text",
]

log = logging.getLogger(__name__)

HOME_ENV = "EXPOSURE_CTRL_HOME"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def data_dir() -> Path:
    """The per-user data directory of exposure-ctrl (not created here)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "exposure-ctrl"


def default_store_path() -> Path:
    """The store used when no ``--store`` is given."""
    return data_dir() / "sessions.sqlite"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a directory created here gets mode 0700.

    An existing directory is left as it is, except exposure-ctrl's own data directory, which is
    tightened to 0700 if others can read it.
    """
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True, mode=_DIR_MODE)
        os.chmod(path, _DIR_MODE)  # mkdir's mode is filtered by the umask; be exact
    elif path.resolve() == data_dir().resolve():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, _DIR_MODE)
            log.warning("%s was readable by others (mode %o); set to 0700", path, mode)
    return path


def tighten_file(path: Path) -> None:
    """Make an existing file readable and writable by its owner only (log if it was not)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        os.chmod(path, _FILE_MODE)
        log.warning("%s was readable by others (mode %o); set to 0600", path, mode)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist; return True if created.

    The file is created with its final mode (no window in which the umask's mode applies).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    os.chmod(path, _FILE_MODE)
    return True


def write_private_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` as an owner-only file; parents are created 0700."""
    path = Path(path)
    if not path.parent.exists():
        ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    tighten_file(path)
    return path
