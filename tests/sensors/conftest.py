"""Shared helpers for the sensor tests: run a coroutine and fail if it leaves tasks behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from exposure_ctrl.sensors.bleak_bumble import VirtualAir

T = TypeVar("T")


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(fn())``, then fail if any task it started is still running (a leak)."""

    async def main() -> T:
        result = await fn()
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0  # background work must stop by itself, and soon
        while True:
            await asyncio.sleep(0.005)
            left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            if not left or loop.time() > deadline:
                break
        if left:
            for t in left:
                t.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            raise AssertionError(f"tasks left running: {[t.get_name() for t in left]}")
        return result

    return asyncio.run(main())


async def next_event(it: Any, timeout_s: float = 10.0) -> Any:
    """The next event of an async iterator, failing the test after ``timeout_s`` real seconds."""
    try:
        return await asyncio.wait_for(it.__anext__(), timeout_s)
    except asyncio.TimeoutError:
        raise AssertionError(f"no event within {timeout_s} s") from None


@pytest.fixture
def arun() -> Callable[[Callable[[], Awaitable[Any]]], Any]:
    """:func:`run` as a fixture: ``arun(main)`` runs ``main()`` and checks for leaked tasks."""
    return run


@pytest.fixture
def air() -> VirtualAir:
    """A private virtual air for one test."""
    return VirtualAir("test")
