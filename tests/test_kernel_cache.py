"""The kernel-cache guard: numba's cache checks only a kernel's own file, the guard the package."""

from __future__ import annotations

from pathlib import Path

from exposure_ctrl._kernel_cache import KERNEL_SOURCES, guard as _guard


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "caller.py").write_text("from .callee import f\n")
    (pkg / "callee.py").write_text("def f(x):\n    return x + 1\n")
    (pkg / "notes.txt").write_text("not a kernel source\n")
    return pkg


def guard(pkg: Path) -> bool:
    return _guard(pkg, sources=("*.py",), caches=("__pycache__",))


def _cached(pkg: Path) -> list[str]:
    return sorted(p.name for p in (pkg / "__pycache__").iterdir() if p.suffix in (".nbi", ".nbc"))


def _compile(pkg: Path) -> None:
    for name in ("caller.f-1.py311.nbi", "caller.f-1.py311.1.nbc"):
        (pkg / "__pycache__" / name).write_bytes(b"machine code")


def test_unchanged_sources_keep_the_cache(tmp_path):
    pkg = _package(tmp_path)
    guard(pkg)
    _compile(pkg)
    assert guard(pkg) is False
    assert _cached(pkg) == ["caller.f-1.py311.1.nbc", "caller.f-1.py311.nbi"]


def test_a_change_in_a_sibling_file_drops_every_cached_kernel(tmp_path):
    pkg = _package(tmp_path)
    guard(pkg)
    _compile(pkg)
    # Same size, so numba's own check (timestamp and size of the caller's file) cannot see it.
    (pkg / "callee.py").write_text("def f(x):\n    return x + 2\n")
    assert guard(pkg) is True
    assert _cached(pkg) == []
    _compile(pkg)
    assert guard(pkg) is False  # the new sources are recorded


def test_an_unwritable_cache_is_left_alone(tmp_path, monkeypatch):
    pkg = _package(tmp_path)
    guard(pkg)
    _compile(pkg)
    (pkg / "callee.py").write_text("def f(x):\n    return x * 2\n")

    def refuse(self, *a, **kw):
        raise PermissionError(f"read-only: {self}")

    monkeypatch.setattr(Path, "unlink", refuse)
    monkeypatch.setattr(Path, "write_text", refuse)
    assert guard(pkg) is False  # nothing could be dropped, and nothing raised
    assert len(_cached(pkg)) == 2


def test_the_package_is_guarded_and_the_sources_cover_the_constants_kernels_read():
    import exposure_ctrl

    root = Path(exposure_ctrl.__file__).parent
    assert (root / "__pycache__" / "kernels.sha256").exists()
    assert _guard(root) is False  # recorded when the package was imported
    covered = {p.relative_to(root).as_posix() for pattern in KERNEL_SOURCES for p in root.glob(pattern)}
    assert {"arousal/features.py", "arousal/artifacts.py", "sim/kernels.py", "safety.py", "sensors/sample.py"} <= covered
    # every module with a compiled kernel is covered
    with_kernels = {p.relative_to(root).as_posix() for p in root.rglob("*.py") if "njit(" in p.read_text() or "@_jit" in p.read_text()}
    assert with_kernels - {"_kernel_cache.py"} <= covered, with_kernels - covered
