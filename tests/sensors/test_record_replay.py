"""Recording format (writer, reader, errors) and the replay source."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exposure_ctrl.clock import ManualClock, ScaledClock
from exposure_ctrl.errors import ConfigError, SensorDataError, SensorUnavailable, SensorUnavailableReason
from exposure_ctrl.sensors.bleak_bumble import VirtualAir
from exposure_ctrl.sensors.display import record_source
from exposure_ctrl.sensors.record import (
    RECORDING_FORMAT,
    RecordedInfo,
    RecordedPacket,
    RecordedStatus,
    RecordingWriter,
    _parse,
    read_recording,
)
from exposure_ctrl.sensors.replay import ReplaySource
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.sensors.source import (
    DeviceInfo,
    Gap,
    RawNotification,
    SourceState,
    SourceStatus,
    open_source,
)

HEADER = json.dumps({"format": RECORDING_FORMAT, "version": 1, "source": "t"})


def test_writer_then_reader_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RecordingWriter(path, source="ble:AA", created_utc="2026-01-01T00:00:00+00:00") as w:
        assert w.write_event(SourceStatus(100.0, SourceState.CONNECTED, "strap"))
        assert w.write_event(DeviceInfo(100.1, name="H10", address="AA", battery_pct=80, body_location="chest"))
        assert w.write_event(RawNotification(101.0, "2a37", bytes.fromhex("163c1104")))
        assert not w.write_event(HeartSample(101.0, 60))  # derived data is not recorded
        assert not w.write_event(SourceStatus(102.0, SourceState.STALE))
        assert w.write_event(SourceStatus(103.5, SourceState.DISCONNECTED, "link lost"))
    w.close()  # idempotent
    header, lines = read_recording(path)
    assert header["source"] == "ble:AA" and header["created_utc"].startswith("2026")
    assert lines == [
        RecordedStatus(0.0, SourceState.CONNECTED, "strap"),
        RecordedInfo(0.1, name="H10", address="AA", battery_pct=80, body_location="chest"),
        RecordedPacket(1.0, "2a37", bytes.fromhex("163c1104")),
        RecordedStatus(3.5, SourceState.DISCONNECTED, "link lost"),
    ]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("", "empty"),
        ("{not json", "header is not JSON"),
        ('{"format": "something else"}', "not a heart-rate recording"),
        (json.dumps({"format": RECORDING_FORMAT, "version": 99}), "version 99 is not supported"),
        (HEADER + "\n[1, 2]", ":2: expected a JSON object"),
        (HEADER + '\n{"t": "x", "char": "2a37", "hex": "00"}', ":2: 't' must be a finite number"),
        (HEADER + '\n{"t": 1, "char": "2a37", "hex": "zz"}', ":2: 'hex' is not hexadecimal"),
        (HEADER + '\n{"t": 1, "char": "37", "hex": "00"}', "'char' must be 4 hex digits"),
        (HEADER + '\n{"t": 1, "status": "exploded"}', "unknown status 'exploded'"),
        (HEADER + '\n{"t": 2, "char": "2a37", "hex": "063c"}\n{"t": 1, "char": "2a37", "hex": "063c"}', ":3: time 1.0 goes back"),
        (HEADER + '\n{"t": 1}', "expected one of the keys"),
        (HEADER + '\n{"t": 1, "info": {"battery_pct": "full"}}', "'battery_pct' must be an integer"),
    ],
)
def test_malformed_recordings_say_where_and_what(body: str, match: str) -> None:
    with pytest.raises(SensorDataError, match=match):
        _parse(io.StringIO(body), "rec.jsonl")


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    header, lines = _parse(io.StringIO(HEADER + '\n{"t": 1, "char": "2A37", "hex": "063c", "rssi": -60}\n\n'), "r")
    assert lines == [RecordedPacket(1.0, "2a37", b"\x06\x3c")]


@given(st.text(max_size=200))
def test_any_line_gives_a_record_or_a_sensor_data_error(line: str) -> None:
    try:
        _parse(io.StringIO(HEADER + "\n" + line), "r")
    except SensorDataError:
        pass


def test_missing_file_is_sensor_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="cannot read") as e:
        read_recording(tmp_path / "nope.jsonl")
    assert e.value.reason is SensorUnavailableReason.FILE


def _recording(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl"
    lines = [
        HEADER,
        '{"t": 0, "status": "connected", "detail": "strap"}',
        '{"t": 0.1, "info": {"name": "H10", "battery_pct": 80}}',
        '{"t": 1.0, "char": "2a37", "hex": "163c1104"}',
        '{"t": 2.0, "char": "2a37", "hex": "103b5304"}',
        '{"t": 2.5, "char": "2a37", "hex": "01"}',
        '{"t": 2.6, "status": "disconnected", "detail": "link lost"}',
        '{"t": 4.0, "status": "connected", "detail": "strap"}',
        '{"t": 5.0, "char": "2a37", "hex": "16485401ec02"}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_on_a_manual_clock_reproduces_times_samples_and_gaps(tmp_path: Path) -> None:
    async def main() -> list[Any]:
        async with open_source(f"replay:{_recording(tmp_path)}", clock=ManualClock(100.0)) as src:
            events = [e async for e in src]
            assert src.counts["malformed"] == 1
            return events

    events = asyncio.run(main())
    samples = [e for e in events if isinstance(e, HeartSample)]
    assert [(s.t, s.bpm, s.rr_ms) for s in samples] == [
        (101.0, 60, (1016.6,)),
        (102.0, 59, (1081.1,)),
        (105.0, 72, (332.0, 730.5)),
    ]
    (gap,) = [e for e in events if isinstance(e, Gap)]
    assert (gap.start, gap.end, gap.reason) == (102.0, 105.0, "disconnected")
    info = next(e for e in events if isinstance(e, DeviceInfo))
    assert info.battery_pct == 80 and info.t == 100.1
    assert isinstance(events[-1], SourceStatus) and events[-1].state is SourceState.ENDED


def test_replay_speed_divides_the_waits(tmp_path: Path) -> None:
    async def main() -> list[float]:
        async with ReplaySource(_recording(tmp_path), clock=ManualClock(), speed=4.0) as src:
            return [e.t async for e in src if isinstance(e, HeartSample)]

    assert asyncio.run(main()) == [0.25, 0.5, 1.25]


def test_replay_needs_a_file_and_a_sane_speed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a file"):
        open_source("replay:")
    with pytest.raises(ConfigError, match="speed"):
        ReplaySource(tmp_path / "x", speed=0)

    async def main() -> None:
        async with ReplaySource(tmp_path / "missing.jsonl"):
            pass

    with pytest.raises(SensorUnavailable):
        asyncio.run(main())


def test_record_from_the_virtual_strap_then_replay_gives_the_same_beats(tmp_path: Path, arun) -> None:
    path = tmp_path / "virtual.jsonl"
    seen: list[Any] = []

    async def record() -> int:
        clock = ScaledClock(100.0)
        source = open_source("virtual-ble", clock=clock, air=VirtualAir("rec"), seed=4)
        return await record_source(source, path, clock=clock, duration_s=40.0, on_event=seen.append)

    packets = arun(record)
    live = [(s.bpm, s.rr_ms) for s in seen if isinstance(s, HeartSample)]
    assert packets >= len(live) >= 30

    async def replay() -> list[Any]:
        async with open_source(f"replay:{path}", clock=ManualClock()) as src:
            return [e async for e in src]

    again = [(s.bpm, s.rr_ms) for s in asyncio.run(replay()) if isinstance(s, HeartSample)]
    assert again[: len(live)] == live
