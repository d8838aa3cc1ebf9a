"""Registration of ``exposure_ctrl/Exposure-v0`` with Gymnasium, in one place.

``import exposure_ctrl`` calls :func:`register_on_gymnasium_import`: if Gymnasium is already
imported the environment is registered at once; otherwise a one-shot import hook registers it
right after Gymnasium is imported, so that ``import exposure_ctrl`` (and the command line) does
not pay for importing Gymnasium. Both are idempotent.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from types import ModuleType

__all__ = ["ENV_ID", "register_envs", "register_on_gymnasium_import"]

log = logging.getLogger(__name__)

ENV_ID = "exposure_ctrl/Exposure-v0"
_lock = threading.Lock()


def register_envs() -> None:
    """Register the environment (single and vector entry points) unless already registered."""
    from gymnasium.envs.registration import register, registry

    with _lock:
        if ENV_ID in registry:
            return
        register(
            id=ENV_ID,
            entry_point="exposure_ctrl.sim.env:ExposureEnv",
            vector_entry_point="exposure_ctrl.sim.vector_env:ExposureVectorEnv",
        )


class _RegisterAfterLoad(importlib.abc.Loader):
    """Runs the real loader, then registers the environment."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # the module must look as if loaded normally (resource readers use its loader)
        module.__loader__ = self._inner
        if module.__spec__ is not None:
            module.__spec__.loader = self._inner
        self._inner.exec_module(module)
        try:
            register_envs()
        except Exception:  # never break the user's import of gymnasium
            log.warning("could not register %s with gymnasium", ENV_ID, exc_info=True)


class _GymnasiumHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path, target=None):  # noqa: ANN001
        if fullname != "gymnasium":
            return None
        _remove_hook()
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisterAfterLoad(spec.loader)
                return spec
        return None


_hook = _GymnasiumHook()


def _remove_hook() -> None:
    with _lock:
        if _hook in sys.meta_path:
            sys.meta_path.remove(_hook)


def register_on_gymnasium_import() -> None:
    """Register now if Gymnasium is loaded, else as soon as it is imported (cheap, idempotent)."""
    gym = sys.modules.get("gymnasium")
    if gym is not None and getattr(gym, "envs", None) is not None:
        register_envs()
        return
    with _lock:
        if _hook not in sys.meta_path:
            sys.meta_path.insert(0, _hook)
