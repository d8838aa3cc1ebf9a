"""The BLE source through bleak and the virtual strap: streaming, drop-outs, gaps, faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exposure_ctrl.clock import ScaledClock
from exposure_ctrl.errors import SensorUnavailable, SensorUnavailableReason
from exposure_ctrl.sensors.ble import BleHeartRateSource, bluetooth_unavailable, open_ble_source
from exposure_ctrl.sensors.bleak_bumble import BumbleClient, VirtualAir, bleak_kwargs
from exposure_ctrl.sensors.hrm import parse_heart_rate_measurement
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import DeviceInfo, Gap, SourceState, SourceStatus, open_source
from exposure_ctrl.sensors.virtual_strap import VirtualStrap, synthetic_heart_stream

SPEED = 300.0  # simulated seconds per real second in the soak tests


def beats_for(duration_s: float, seed: int) -> list[tuple[int, tuple[float, ...], bool | None]]:
    """A finite synthetic stream covering ``duration_s`` seconds."""
    out, total = [], 0.0
    for item in synthetic_heart_stream(seed=seed):
        out.append(item)
        total += sum(item[1]) / 1000.0
        if total >= duration_s:
            return out
    raise AssertionError("unreachable")


async def soak(duration_s: float, seed: int) -> tuple[VirtualStrap, list[Any]]:
    """Stream ``duration_s`` simulated seconds with forced drop-outs every 10-150 s; all events."""
    clock = ScaledClock(SPEED)
    source = open_source(
        "virtual-ble",
        clock=clock,
        stream=beats_for(duration_s, seed),
        dropouts=(10.0, 150.0),
        seed=seed,
        air=VirtualAir(f"soak-{seed}"),
        stale_after_s=60.0,
    )
    events: list[Any] = []
    async with source:
        strap = source.strap
        it = source.__aiter__()
        samples = 0
        while not (strap.stream_done.is_set() and samples >= len(strap.delivered)):
            ev = await asyncio.wait_for(it.__anext__(), 10.0)
            events.append(ev)
            samples += isinstance(ev, HeartSample)
    return strap, events


def check_soak(strap: VirtualStrap, events: list[Any]) -> int:
    """Every delivered beat arrives once, in order; every drop-out is reported as a gap."""
    samples = [e for e in events if isinstance(e, HeartSample)]
    sent = [parse_heart_rate_measurement(n.payload) for n in strap.delivered]
    assert [(s.bpm, s.rr_ms) for s in samples] == [(m.bpm, m.rr_ms) for m in sent]
    assert all(b.t >= a.t for a, b in zip(samples, samples[1:]))

    # index (in the delivered list) of the first notification after each forced drop-out
    drops = [e.t for e in strap.link_log if e.kind == "forced-disconnect"]
    times = [n.t for n in strap.delivered]
    after_drop = {next(i for i, t in enumerate(times) if t > d) for d in drops if d < times[-1]}
    assert len(after_drop) >= 3, "the soak should include several drop-outs"

    # each gap is followed by the sample that closes it
    gap_index = {}
    for i, ev in enumerate(events):
        if isinstance(ev, Gap):
            nxt = next(e for e in events[i + 1 :] if isinstance(e, HeartSample))
            k = samples.index(nxt)
            assert (ev.start, ev.end) == (samples[k - 1].t, nxt.t)
            assert Quality.AFTER_GAP in nxt.flags
            gap_index[k] = ev.reason
    assert after_drop <= set(gap_index), "a drop-out was not reported as a gap"
    for k, reason in gap_index.items():
        assert k in after_drop or reason == "stale"
    disconnected = [e for e in events if isinstance(e, SourceStatus) and e.state is SourceState.DISCONNECTED]
    assert len(disconnected) == len(drops)
    return len(drops)


def test_every_beat_sent_while_connected_arrives_once_in_order_with_gaps(arun) -> None:
    strap, events = arun(lambda: soak(15 * 60.0, seed=3))
    check_soak(strap, events)


@pytest.mark.slow
def test_a_simulated_hour_with_dropouts_every_10_to_150_s(arun) -> None:
    strap, events = arun(lambda: soak(3600.0, seed=11))
    assert check_soak(strap, events) >= 15


def _virtual(air: VirtualAir, clock: Any = None, **options: Any) -> BleHeartRateSource:
    kw = bleak_kwargs(air)
    return BleHeartRateSource(
        clock=clock or ScaledClock(50.0), scanner_kwargs=kw["scanner"], client_kwargs=kw["client"], **options
    )


async def _until(it: Any, pred: Any, timeout_s: float = 10.0) -> list[Any]:
    seen: list[Any] = []
    while True:
        ev = await asyncio.wait_for(it.__anext__(), timeout_s)
        seen.append(ev)
        if pred(ev):
            return seen


def test_no_contact_is_reported_and_flagged(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air) as strap, _virtual(air) as source:
            it = source.__aiter__()
            await strap.wait_subscribed()
            await strap.send(70, [850.0], True)
            strap.drop_contact()
            await strap.send(70, [850.0], True)
            seen = await _until(it, lambda e: isinstance(e, HeartSample) and e.contact is False)
            good = [e for e in seen if isinstance(e, HeartSample)]
            assert [s.contact for s in good] == [True, False]
            assert good[0].clean and Quality.NO_CONTACT in good[1].flags

    arun(main)


def test_malformed_packet_is_dropped_counted_and_streaming_goes_on(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air) as strap, _virtual(air) as source:
            it = source.__aiter__()
            await strap.wait_subscribed()
            await strap.send_raw(b"\x10\x3c\x11")  # RR flag with half an interval
            await strap.send_raw(b"")
            await strap.send(66, [900.0], True)
            seen = await _until(it, lambda e: isinstance(e, HeartSample))
            assert seen[-1].bpm == 66
            assert source.counts["malformed"] == 2

    arun(main)


def test_device_info_battery_and_body_location(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air, battery_pct=55, name="Chest strap") as strap, _virtual(air) as source:
            it = source.__aiter__()
            info = (await _until(it, lambda e: isinstance(e, DeviceInfo)))[-1]
            assert (info.name, info.address, info.battery_pct, info.body_location) == (
                "Chest strap", strap.address, 55, "chest"
            )
            await strap.wait_subscribed()
            await strap.set_battery(12)
            later = (await _until(it, lambda e: isinstance(e, DeviceInfo)))[-1]
            assert later.battery_pct == 12

    arun(main)


def test_out_of_range_goes_stale_then_reconnects_with_backoff(air: VirtualAir, arun) -> None:
    async def main() -> None:
        clock = ScaledClock(50.0)
        async with VirtualStrap(air=air, clock=clock) as strap, _virtual(
            air, clock, stale_after_s=5.0, scan_timeout_s=0.05, backoff_initial_s=1.0, backoff_max_s=8.0
        ) as source:
            it = source.__aiter__()
            await strap.wait_subscribed()
            await strap.send(70, [850.0], True)
            await _until(it, lambda e: isinstance(e, HeartSample))
            silence = asyncio.create_task(strap.go_silent(120.0))
            try:
                seen = await _until(it, lambda e: isinstance(e, SourceStatus) and e.state is SourceState.CONNECTED)
            finally:
                await silence
            states = [e.state for e in seen if isinstance(e, SourceStatus)]
            assert states[0] is SourceState.DISCONNECTED
            assert SourceState.STALE in states
            assert states.count(SourceState.CONNECTING) >= 3  # several failed attempts, backing off
            await strap.wait_subscribed()
            await strap.send(71, [845.0], True)
            after = await _until(it, lambda e: isinstance(e, HeartSample))
            gap = next(e for e in after if isinstance(e, Gap))
            assert gap.reason == "disconnected" and gap.duration_s >= 120.0

    arun(main)


def test_each_reconnection_uses_a_fresh_client(air: VirtualAir, arun) -> None:
    made: list[Any] = []

    class CountingClient(BumbleClient):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            made.append(self)

    async def main() -> None:
        kw = bleak_kwargs(air)
        async with VirtualStrap(air=air) as strap, BleHeartRateSource(
            clock=ScaledClock(50.0),
            scanner_kwargs=kw["scanner"],
            client_kwargs={**kw["client"], "backend": CountingClient},
        ) as source:
            it = source.__aiter__()
            connected = lambda e: isinstance(e, SourceStatus) and e.state is SourceState.CONNECTED  # noqa: E731
            await _until(it, connected)
            for _ in range(3):
                await strap.wait_subscribed()
                await strap.disconnect()
                await _until(it, connected)
            assert source.connections == 4
        assert len(made) == 4 and len(set(map(id, made))) == 4
        assert not any(c.is_connected for c in made)

    arun(main)


def test_straps_are_chosen_by_name_or_address(air: VirtualAir, arun) -> None:
    async def main() -> None:
        kw = bleak_kwargs(air)
        async with VirtualStrap(air=air, name="Left") as left, VirtualStrap(air=air, name="Right") as right:
            for arg, want in (("Right", right), (left.address, left), (right.address.lower(), right)):
                source = open_ble_source(
                    arg, clock=ScaledClock(50.0), scanner_kwargs=kw["scanner"], client_kwargs=kw["client"]
                )
                async with source:
                    info = (await _until(source.__aiter__(), lambda e: isinstance(e, DeviceInfo)))[-1]
                    assert info.address == want.address
                    await asyncio.sleep(0.02)

    arun(main)


def test_no_strap_at_start_is_not_found(air: VirtualAir, arun) -> None:
    async def main() -> None:
        with pytest.raises(SensorUnavailable, match="No heart-rate strap") as e:
            async with _virtual(air, scan_timeout_s=0.05, initial_attempts=2):
                pass
        assert e.value.reason is SensorUnavailableReason.NOT_FOUND

    arun(main)


class _NoDBusScanner:
    """A bleak scanner backend that fails as bleak does on a machine without BlueZ/D-Bus."""

    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    async def start(self) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    async def stop(self) -> None:
        pass


def test_no_bluetooth_is_one_clear_sentence(arun) -> None:
    async def main() -> None:
        source = BleHeartRateSource(clock=ScaledClock(50.0), scanner_kwargs={"backend": _NoDBusScanner})
        with pytest.raises(SensorUnavailable) as e:
            async with source:
                pass
        assert e.value.reason is SensorUnavailableReason.NO_BLUETOOTH
        text = str(e.value)
        assert text.count(". ") == 0 and text.endswith(".")
        assert "Bluetooth is not available" in text and "--virtual" in text
        assert source.closed

    arun(main)


def test_bluetooth_unavailable_maps_errors() -> None:
    from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason

    err = BleakBluetoothNotAvailableError("adapter off", BleakBluetoothNotAvailableReason.POWERED_OFF)
    assert bluetooth_unavailable(err).reason is SensorUnavailableReason.NO_BLUETOOTH
    assert bluetooth_unavailable(PermissionError()).reason is SensorUnavailableReason.PERMISSION
    assert bluetooth_unavailable(ConnectionRefusedError()).reason is SensorUnavailableReason.NO_BLUETOOTH
    assert bluetooth_unavailable(TimeoutError()) is None


def test_open_ble_source_tells_addresses_from_names() -> None:
    clock = ScaledClock(1.0)
    assert open_ble_source("C4:7C:8D:6A:12:34", clock=clock).address == "C4:7C:8D:6A:12:34"
    assert open_ble_source("Polar H10 1234ABCD", clock=clock).device_name == "Polar H10 1234ABCD"
    assert open_ble_source(None, clock=clock).device_name is None

