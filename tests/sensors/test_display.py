"""Text rendering of heart-rate events and scans, and the duration-bounded iteration."""

from __future__ import annotations

import asyncio

from exposure_ctrl.clock import ManualClock
from exposure_ctrl.sensors.ble import FoundStrap
from exposure_ctrl.sensors.display import events_for, format_event, format_strap_table
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import (
    BaseHeartRateSource,
    DeviceInfo,
    Gap,
    RawNotification,
    SourceState,
    SourceStatus,
)


def test_format_event_lines() -> None:
    s = HeartSample(12.34, 72, (830.0, 845.5), True)
    assert format_event(s, t0=2.0, battery_pct=80) == (
        "    10.3 s  HR    72 bpm  RR 830.0 845.5 ms  contact yes  battery 80 %"
    )
    flagged = HeartSample(5.0, 70, (), False, flags=Quality.NO_CONTACT | Quality.AFTER_GAP)
    assert format_event(flagged).endswith("RR - ms  contact NO  [no_contact, after_gap]")
    assert format_event(SourceStatus(3.0, SourceState.STALE, "no sample")) == "     3.0 s  -- stale: no sample"
    assert format_event(Gap(10.0, 25.5, "disconnected")) == (
        "    25.5 s  -- gap of 15.5 s (disconnected, from 10.0 s)"
    )
    info = DeviceInfo(1.0, name="H10", address="AA", battery_pct=9, body_location="chest")
    assert format_event(info) == "     1.0 s  -- device: H10, AA, worn on the chest, battery 9 %"
    assert format_event(RawNotification(1.0, "2a37", b"\x00")) is None


def test_strap_table() -> None:
    table = format_strap_table(
        [FoundStrap("Polar H10 1234", "C4:7C:8D:6A:12:34", -60, True), FoundStrap(None, "AA:BB", -90, False)]
    )
    assert table.splitlines() == [
        "name            address            RSSI     heart rate",
        "Polar H10 1234  C4:7C:8D:6A:12:34  -60 dBm  yes",
        "(no name)       AA:BB              -90 dBm  no",
    ]
    assert "no heart-rate strap found" in format_strap_table([])


class Ticks(BaseHeartRateSource):
    async def _run(self) -> None:
        for _ in range(100):
            await self.clock.sleep(1.0)
            self._emit_sample(HeartSample(self.clock.now(), 60, (1000.0,)))
        self._emit_end()


def test_events_for_stops_at_the_end_of_the_source() -> None:
    async def main() -> list[object]:
        clock = ManualClock()
        async with Ticks("t", clock=clock) as src:
            return [e async for e in events_for(src, clock, None)]

    events = asyncio.run(main())
    assert sum(isinstance(e, HeartSample) for e in events) == 100


def test_events_for_stops_after_the_duration() -> None:
    async def main() -> list[object]:
        clock = ManualClock()
        async with Ticks("t", clock=clock) as src:
            return [e async for e in events_for(src, clock, 10.0)]

    times = [e.t for e in asyncio.run(main()) if isinstance(e, HeartSample)]
    # the producer may run ahead of the consumer on a manual clock: a prefix, all within 10 s
    assert times and times == [float(i) for i in range(1, len(times) + 1)] and times[-1] <= 10.0


def test_events_for_stops_in_real_time_on_a_scaled_clock() -> None:
    from exposure_ctrl.clock import ScaledClock

    async def main() -> tuple[list[object], float]:
        clock = ScaledClock(200.0)
        async with Ticks("t", clock=clock) as src:
            events = [e async for e in events_for(src, clock, 10.0)]
            return events, clock.now()

    events, ended = asyncio.run(main())
    samples = [e for e in events if isinstance(e, HeartSample)]
    assert len(samples) < 100  # it did not wait for the source to end
    assert all(s.t <= 10.0 + 1e-3 or s is samples[-1] for s in samples)
    assert ended < 100.0
