"""Fixtures for the bridge tests: real sockets on loopback, random ports, nothing left behind.

* ``no_leaked_sockets`` (autouse) compares this process's socket, eventfd and epoll descriptors
  before and after each test and fails the test if any remain: an unclosed ZeroMQ socket or
  context, or an asyncio loop left open, shows up there.
* ``run`` runs a coroutine in a fresh event loop with an overall time limit and fails if it
  leaves tasks running.

Helpers (endpoint factory, raw DEALER client, manual clock) are in ``bridge_helpers.py``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

# The suite runs with --import-mode=importlib: make this folder's helper modules
# (bridge_helpers.py, vectors_source.py) importable by the test modules beside them.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def _kernel_handles() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("socket:", "anon_inode:")):
            out[fd] = target
    return out


@pytest.fixture(autouse=True)
def no_leaked_sockets() -> Any:
    before = _kernel_handles()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        leaked = {fd: t for fd, t in _kernel_handles().items() if before.get(fd) != t}
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test left sockets/contexts open: {sorted(leaked.values())}"


@pytest.fixture
def run() -> Callable[..., Any]:
    """``run(coro, timeout=60)``: run in a fresh loop; fail if tasks are left running."""

    def _run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        async def main() -> Any:
            result = await asyncio.wait_for(coro, timeout)
            for _ in range(5):
                await asyncio.sleep(0)
            me = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            for t in left:
                t.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            assert not left, f"tasks left running: {[t.get_name() for t in left]}"
            return result

        return asyncio.run(main())

    return _run
