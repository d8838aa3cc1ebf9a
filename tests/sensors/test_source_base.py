"""BaseHeartRateSource (queue, staleness, gaps, lifecycle) and the source registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exposure_ctrl.clock import ManualClock, ScaledClock
from exposure_ctrl.errors import ConfigError, SensorDataError, SensorError
from exposure_ctrl.sensors.hrm import encode_heart_rate_measurement
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import (
    BaseHeartRateSource,
    DeviceInfo,
    Gap,
    RawNotification,
    SourceState,
    SourceStatus,
    available_sources,
    decode_raw,
    open_source,
    parse_source_spec,
    register_source,
)


class Scripted(BaseHeartRateSource):
    """Plays a script of (delay_s, action) on its clock."""

    def __init__(self, script: list[tuple[float, Any]], **kw: Any) -> None:
        super().__init__("scripted", **kw)
        self.script = script

    async def _run(self) -> None:
        for delay, action in self.script:
            await self.clock.sleep(delay)
            if action == "disconnect":
                self._emit_status(SourceState.DISCONNECTED, "test")
            elif action == "fail":
                raise RuntimeError("boom")
            elif isinstance(action, bytes):
                self._emit_raw(self.clock.now(), "2a37", action)
            else:
                self._emit_sample(HeartSample(self.clock.now(), action, (60000 / action,)))
        self._emit_end("script done")


async def collect(source: BaseHeartRateSource) -> list[Any]:
    async with source:
        return [e async for e in source]


def test_stale_then_gap_then_flagged_sample_on_a_manual_clock() -> None:
    src = Scripted([(1, 60), (1, 61), (12, 62), (1, 63)], clock=ManualClock(), stale_after_s=5)
    events = asyncio.run(collect(src))
    kinds = [type(e).__name__ if not isinstance(e, SourceStatus) else e.state.value for e in events]
    assert kinds == [
        "streaming", "HeartSample", "HeartSample", "stale", "Gap", "streaming", "HeartSample",
        "HeartSample", "ended",
    ]
    stale, gap = events[3], events[4]
    assert stale.t == 2 + 5  # detected afterwards, at the moment it became stale
    assert (gap.start, gap.end, gap.reason) == (2.0, 14.0, "stale")
    assert events[6].flags == Quality.AFTER_GAP and events[7].clean
    assert src.counts["gaps"] == 1 and src.counts["samples"] == 4


def test_staleness_is_reported_in_real_time_on_a_scaled_clock() -> None:
    async def main() -> list[Any]:
        src = Scripted([(1, 60), (300, 61)], clock=ScaledClock(100.0), stale_after_s=5)
        async with src:
            it = src.__aiter__()
            out = [await it.__anext__() for _ in range(3)]
            return out

    events = asyncio.run(main())
    assert isinstance(events[2], SourceStatus) and events[2].state is SourceState.STALE
    assert 5.0 <= events[2].t - events[1].t < 300.0  # reported while still waiting, not afterwards


def test_a_disconnect_opens_a_gap_even_when_short() -> None:
    src = Scripted([(1, 60), (0.5, "disconnect"), (1, 61)], clock=ManualClock(), stale_after_s=5)
    events = asyncio.run(collect(src))
    gap = next(e for e in events if isinstance(e, Gap))
    assert (gap.start, gap.end, gap.reason) == (1.0, 2.5, "disconnected")


def test_raw_packets_are_decoded_by_the_consumer_and_malformed_ones_counted() -> None:
    good = encode_heart_rate_measurement(70, [850.0], True)
    src = Scripted([(1, good), (1, b"\x01"), (1, good)], clock=ManualClock(), include_raw=True)
    events = asyncio.run(collect(src))
    raws = [e for e in events if isinstance(e, RawNotification)]
    samples = [e for e in events if isinstance(e, HeartSample)]
    assert len(raws) == 3 and [s.bpm for s in samples] == [70, 70]
    assert src.counts["malformed"] == 1
    # the raw packet comes before the sample decoded from it
    assert events.index(raws[0]) < events.index(samples[0])


def test_a_failing_producer_raises_from_the_iterator() -> None:
    src = Scripted([(1, 60), (1, "fail")], clock=ManualClock())
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(collect(src))


def test_a_sample_going_back_in_time_is_clamped() -> None:
    class Backwards(BaseHeartRateSource):
        async def _run(self) -> None:
            self._emit_sample(HeartSample(10.0, 60))
            self._emit_sample(HeartSample(9.0, 61))
            self._emit_end()

    events = asyncio.run(collect(Backwards("b", clock=ManualClock())))
    assert [e.t for e in events if isinstance(e, HeartSample)] == [10.0, 10.0]


def test_bad_staleness_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="stale_after_s"):
        Scripted([], stale_after_s=0)


def test_decode_raw() -> None:
    (s,) = decode_raw(RawNotification(3.0, "2a37", bytes.fromhex("04 50"), "x"))
    assert (s.t, s.bpm, s.contact, s.flags) == (3.0, 80, False, Quality.NO_CONTACT)
    (info,) = decode_raw(RawNotification(3.0, "2a19", b"\x21", "x"))
    assert isinstance(info, DeviceInfo) and info.battery_pct == 33
    assert decode_raw(RawNotification(3.0, "2a99", b"\x00", "x")) == []
    with pytest.raises(SensorDataError):
        decode_raw(RawNotification(3.0, "2a37", b"", "x"))


def test_registry_parses_specs_and_suggests_names() -> None:
    assert parse_source_spec("replay:/tmp/a:b.jsonl") == ("replay", "/tmp/a:b.jsonl")
    assert parse_source_spec("ble") == ("ble", None)
    assert parse_source_spec("ble:") == ("ble", None)
    assert {"ble", "virtual-ble", "replay"} <= set(available_sources())
    with pytest.raises(ConfigError, match="Did you mean 'replay'"):
        parse_source_spec("replya:x")
    with pytest.raises(ConfigError, match="needs a file"):
        open_source("replay")


def test_register_source_with_a_factory_or_a_dotted_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from exposure_ctrl.sensors import source as source_module

    monkeypatch.setattr(source_module, "_REGISTRY", dict(source_module._REGISTRY))
    made: list[Any] = []

    def factory(arg: str | None, *, clock: Any, **options: Any) -> Any:
        made.append((arg, options))
        return Scripted([], clock=clock)

    register_source("test-fake", factory, help="for tests")
    register_source("test-lazy", "exposure_ctrl.sensors.replay:open_replay_source")
    assert isinstance(open_source("test-fake:abc", x=1), Scripted)
    assert made == [("abc", {"x": 1})]
    assert open_source("test-lazy:f.jsonl").path.name == "f.jsonl"
    with pytest.raises(ValueError):
        register_source("bad:name", factory)


def test_lifecycle_errors() -> None:
    async def main() -> None:
        src = Scripted([], clock=ManualClock())
        with pytest.raises(SensorError, match="not open"):
            await src.__anext__()
        async with src:
            pass
        assert src.closed
        with pytest.raises(SensorError, match="opened only once"):
            await src.__aenter__()

    asyncio.run(main())
