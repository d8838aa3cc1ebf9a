"""The contract every heart-rate source keeps, run against each of them (python-can's back2back idea).

To add a source, append one ``Harness`` to ``HARNESSES`` (e.g. the simulated patient's strap):
``Harness("sim", lambda clock, tmp: open_source("sim", clock=clock, seed=1), ManualClock, None)``.
``outage`` makes the source go quiet for longer than ``stale_after_s`` (with a link loss where
there is a link); None means its data already contains such an outage.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from exposure_ctrl.clock import Clock, ManualClock, ScaledClock
from exposure_ctrl.errors import SensorError
from exposure_ctrl.sensors.bleak_bumble import VirtualAir
from exposure_ctrl.sensors.hrm import encode_heart_rate_measurement
from exposure_ctrl.sensors.record import RecordingWriter
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import (
    Gap,
    HeartRateSource,
    RawNotification,
    SourceState,
    SourceStatus,
    open_source,
)
from exposure_ctrl.sensors.virtual_strap import synthetic_heart_stream

STALE_AFTER_S = 5.0


@dataclasses.dataclass(frozen=True)
class Harness:
    name: str
    make: Callable[[Clock, Path], HeartRateSource]
    clock: Callable[[], Clock]
    outage: Callable[[Any], Awaitable[None]] | None


def _write_recording(path: Path) -> Path:
    """60 s of beats, a link loss with 20 s of silence, 30 s more beats."""
    beats = synthetic_heart_stream(seed=5)
    t = 0.0
    with RecordingWriter(path, source="test", origin_t=0.0) as w:
        w.write_event(SourceStatus(0.0, SourceState.CONNECTED, "test strap"))
        for end in (60.0, 110.0):
            while t < end:
                bpm, rr, contact = next(beats)
                t += sum(rr) / 1000.0
                w.write_event(RawNotification(t, "2a37", encode_heart_rate_measurement(bpm, rr, contact)))
            if end == 60.0:
                w.write_event(SourceStatus(t + 0.1, SourceState.DISCONNECTED, "link lost"))
                t += 20.0
                w.write_event(SourceStatus(t - 0.5, SourceState.CONNECTED, "test strap"))
    return path


def _replay(clock: Clock, tmp: Path) -> HeartRateSource:
    return open_source(f"replay:{_write_recording(tmp / 'rec.jsonl')}", clock=clock, stale_after_s=STALE_AFTER_S)


def _virtual_ble(clock: Clock, tmp: Path) -> HeartRateSource:
    return open_source(
        "virtual-ble", clock=clock, air=VirtualAir("contract"), stale_after_s=STALE_AFTER_S, seed=2
    )


async def _strap_out_of_range(source: Any) -> None:
    await source.strap.wait_subscribed()
    await source.strap.go_silent(4 * STALE_AFTER_S)


HARNESSES = [
    Harness("virtual-ble", _virtual_ble, lambda: ScaledClock(50.0), _strap_out_of_range),
    Harness("replay", _replay, ManualClock, None),
    Harness("sim", lambda clock, tmp: open_source("sim", clock=clock, scenario="spider", seed=1, sensor="ideal", stale_after_s=STALE_AFTER_S), ManualClock, lambda source: source.go_quiet(4 * STALE_AFTER_S)),
]


@pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
def harness(request: pytest.FixtureRequest) -> Harness:
    return request.param


async def _next(it: Any, timeout_s: float = 10.0) -> Any:
    return await asyncio.wait_for(it.__anext__(), timeout_s)


async def _samples(it: Any, n: int) -> list[HeartSample]:
    out: list[HeartSample] = []
    while len(out) < n:
        ev = await _next(it)
        if isinstance(ev, HeartSample):
            out.append(ev)
    return out


def test_is_a_heart_rate_source(harness: Harness, tmp_path: Path) -> None:
    async def main() -> None:
        source = harness.make(harness.clock(), tmp_path)
        assert isinstance(source, HeartRateSource)
        assert isinstance(source.name, str) and source.name
        await source.aclose()  # closing a source that was never opened is fine

    asyncio.run(main())


def test_samples_come_in_time_order_from_the_injected_clock(harness: Harness, tmp_path: Path, arun) -> None:
    async def main() -> None:
        clock = harness.clock()
        t_start = clock.now()
        async with harness.make(clock, tmp_path) as source:
            samples = await _samples(source.__aiter__(), 20)
            t_end = clock.now()
        times = [s.t for s in samples]
        assert times == sorted(times)
        assert t_start <= times[0] and times[-1] <= t_end
        for s in samples:
            assert 20 <= s.bpm <= 250
            assert isinstance(s.rr_ms, tuple) and all(250 <= rr <= 2500 for rr in s.rr_ms)
            assert s.source and s.contact in (True, False, None)
        assert any(s.rr_ms for s in samples)

    arun(main)


def test_an_outage_is_reported_as_stale_then_a_gap(harness: Harness, tmp_path: Path, arun) -> None:
    async def main() -> None:
        clock = harness.clock()
        async with harness.make(clock, tmp_path) as source:
            it = source.__aiter__()
            await _samples(it, 3)
            outage = asyncio.create_task(harness.outage(source)) if harness.outage else None
            seen: list[Any] = []
            try:
                while not (seen and isinstance(seen[-1], HeartSample) and any(isinstance(e, Gap) for e in seen)):
                    seen.append(await _next(it))
            finally:
                if outage is not None:
                    await outage
        stale = [e for e in seen if isinstance(e, SourceStatus) and e.state is SourceState.STALE]
        gap = next(e for e in seen if isinstance(e, Gap))
        first = seen[-1]
        assert stale and seen.index(stale[0]) < seen.index(gap)
        assert gap.end == first.t and gap.duration_s > STALE_AFTER_S
        assert gap.reason in ("disconnected", "stale")
        assert Quality.AFTER_GAP in first.flags
        before = [e for e in seen[: seen.index(gap)] if isinstance(e, HeartSample)]
        if before:
            assert before[-1].t == gap.start

    arun(main)


def test_close_is_idempotent_and_stops_iteration(harness: Harness, tmp_path: Path, arun) -> None:
    async def main() -> None:
        source = harness.make(harness.clock(), tmp_path)
        async with source:
            await _samples(source.__aiter__(), 1)
            await source.aclose()
            await source.aclose()
            with pytest.raises(StopAsyncIteration):
                await source.__aiter__().__anext__()
        await source.aclose()

    arun(main)


def test_a_source_opens_once(harness: Harness, tmp_path: Path, arun) -> None:
    async def main() -> None:
        source = harness.make(harness.clock(), tmp_path)
        with pytest.raises(SensorError, match="not open"):
            await source.__aiter__().__anext__()
        async with source:
            pass
        with pytest.raises(SensorError, match="opened only once"):
            async with source:
                pass

    arun(main)
