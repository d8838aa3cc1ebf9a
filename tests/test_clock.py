"""Clocks: real, scaled and manual."""

from __future__ import annotations

import asyncio
import time

import pytest

from exposure_ctrl.clock import Clock, ManualClock, MonotonicClock, ScaledClock
from exposure_ctrl.errors import ConfigError


def test_all_clocks_satisfy_the_protocol():
    for c in (MonotonicClock(), ScaledClock(10), ManualClock()):
        assert isinstance(c, Clock)


def test_manual_clock_moves_only_when_told_and_on_sleep():
    c = ManualClock(start=5.0)
    assert c.now() == 5.0
    c.advance(2.5)
    assert c.now() == 7.5
    asyncio.run(c.sleep(10))
    assert c.now() == 17.5
    assert (c.wall() - ManualClock(start=5.0).wall()).total_seconds() == pytest.approx(12.5)
    with pytest.raises(ValueError, match="backwards"):
        c.advance(-1)


def test_scaled_clock_runs_faster_than_real_time():
    c = ScaledClock(50.0)
    r0, s0 = time.monotonic(), c.now()
    asyncio.run(c.sleep(5.0))  # 0.1 s of real time
    sim = c.now() - s0
    real = time.monotonic() - r0
    assert sim >= 5.0
    assert real < 5.0  # it did not take five real seconds
    assert sim <= real * 50.0 + 1e-6  # simulated time is real time times the speed, never more


@pytest.mark.parametrize("speed", [0, -1, float("inf"), float("nan")])
def test_scaled_clock_rejects_bad_speeds(speed):
    with pytest.raises(ConfigError, match="clock speed"):
        ScaledClock(speed)
