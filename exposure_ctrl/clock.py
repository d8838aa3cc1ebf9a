"""Clocks, injected everywhere time matters (DESIGN.md invariant 5).

Every clock gives *monotonic* seconds from ``now()`` (for ordering, durations and the features)
and an awaitable ``sleep(seconds)`` measured in the same clock's seconds. Wall-clock time for
records comes from ``wall()`` (UTC, timezone-aware) so that a simulated session can also be
given a fixed, reproducible start date.

- :class:`MonotonicClock`: real time (the live controller with real hardware).
- :class:`ScaledClock`: simulated time running ``speed`` times faster than real time; real
  sockets and tasks still work, because every sleep is a real (shorter) sleep.
- :class:`ManualClock`: simulated time that only moves when told (``advance``) or when a task
  sleeps (the sleep moves the clock forward and yields once). For pure, deterministic tests.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from typing import Protocol, runtime_checkable

from exposure_ctrl.errors import ConfigError

__all__ = ["Clock", "MonotonicClock", "ScaledClock", "ManualClock", "utc_now"]


def utc_now() -> _dt.datetime:
    """The current UTC time, timezone-aware."""
    return _dt.datetime.now(_dt.timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """What the controller needs from time."""

    def now(self) -> float:
        """Monotonic seconds (arbitrary origin)."""

    def wall(self) -> _dt.datetime:
        """UTC wall-clock time corresponding to ``now()``."""

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""

    @property
    def speed(self) -> float:
        """How many clock seconds pass per real second (1.0 for real time)."""


class MonotonicClock:
    """Real time: ``time.monotonic`` and ``asyncio.sleep``."""

    speed = 1.0

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> _dt.datetime:
        return utc_now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "MonotonicClock()"


class ScaledClock:
    """Simulated time running ``speed`` times faster than real time.

    ``now()`` starts at ``start`` and advances ``speed`` seconds per real second; ``sleep(s)``
    sleeps ``s / speed`` real seconds. ``wall()`` starts at ``wall_start`` (default: the real
    time of construction) and advances with the simulated time.
    """

    def __init__(
        self,
        speed: float,
        *,
        start: float = 0.0,
        wall_start: _dt.datetime | None = None,
    ) -> None:
        if not (speed > 0 and speed < float("inf")):
            raise ConfigError(f"clock speed must be a positive finite number, found {speed!r}")
        self._speed = float(speed)
        self._start = float(start)
        self._real0 = time.monotonic()
        self._wall0 = wall_start if wall_start is not None else utc_now()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start + (time.monotonic() - self._real0) * self._speed

    def wall(self) -> _dt.datetime:
        return self._wall0 + _dt.timedelta(seconds=self.now() - self._start)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self._speed:g})"


class ManualClock:
    """Simulated time that moves only when advanced, or when a task sleeps on it.

    Deterministic: two runs that sleep and advance the same way see the same times.
    """

    speed = float("inf")

    def __init__(self, start: float = 0.0, *, wall_start: _dt.datetime | None = None) -> None:
        self._t = float(start)
        self._start = float(start)
        self._wall0 = (
            wall_start
            if wall_start is not None
            else _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
        )

    def now(self) -> float:
        return self._t

    def wall(self) -> _dt.datetime:
        return self._wall0 + _dt.timedelta(seconds=self._t - self._start)

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (never backwards); return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (asked to advance by {seconds})")
        self._t += seconds
        return self._t

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(t={self._t:g})"
