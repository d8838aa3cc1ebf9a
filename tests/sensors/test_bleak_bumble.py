"""The bleak backend on bumble, used through the real bleak API (BleakScanner, BleakClient)."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError

from exposure_ctrl.sensors.bleak_bumble import (
    BumbleClient,
    BumbleDeviceDetails,
    BumbleScanner,
    VirtualAir,
    bleak_kwargs,
    get_air,
)
from exposure_ctrl.sensors.hrm import (
    BATTERY_LEVEL_UUID,
    BODY_SENSOR_LOCATION_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    parse_heart_rate_measurement,
)
from exposure_ctrl.sensors.virtual_strap import VirtualStrap



def test_scanner_finds_the_strap_with_name_service_and_rssi(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air, name="Strap A") as strap:
            found = await BleakScanner.discover(0.3, return_adv=True, backend=BumbleScanner, bumble_air=air)
            assert list(found) == [strap.address]
            device, ad = found[strap.address]
            assert ad.local_name == "Strap A" and device.name == "Strap A"
            assert HEART_RATE_SERVICE_UUID in ad.service_uuids
            assert isinstance(ad.rssi, int) and -127 <= ad.rssi <= 20
            assert isinstance(device.details, BumbleDeviceDetails) and device.details.air is air

    arun(main)


def test_scanner_service_filter_excludes_other_devices(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air) as strap:
            other = await air.attach("not a strap", first_byte=0xD0)
            await other.start_advertising(advertising_interval_min=20, advertising_interval_max=20)
            try:
                everything = await BleakScanner.discover(0.3, backend=BumbleScanner, bumble_air=air)
                hr_only = await BleakScanner.discover(
                    0.3, backend=BumbleScanner, bumble_air=air, service_uuids=[HEART_RATE_SERVICE_UUID]
                )
            finally:
                await air.detach(other)
            assert {d.address for d in everything} == {strap.address, str(other.random_address)}
            assert [d.address for d in hr_only] == [strap.address]

    arun(main)


def test_client_discovers_services_reads_and_gets_notifications(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air, battery_pct=64) as strap:
            got: list[bytes] = []
            async with BleakClient(strap.address, backend=BumbleClient, bumble_air=air) as client:
                assert client.is_connected
                assert client.backend_id == "BumbleClient"
                hrm = client.services.get_characteristic(HEART_RATE_MEASUREMENT_UUID)
                assert hrm is not None and hrm.properties == ["notify"]
                assert hrm.service_uuid == HEART_RATE_SERVICE_UUID
                assert [d.uuid[4:8] for d in hrm.descriptors] == ["2902"]
                assert await client.read_gatt_char(BATTERY_LEVEL_UUID) == bytearray([64])
                assert await client.read_gatt_char(BODY_SENSOR_LOCATION_UUID) == bytearray([1])
                with pytest.raises(ValueError, match="CCCD"):
                    await client.write_gatt_descriptor(hrm.descriptors[0], b"\x01\x00")
                await client.start_notify(hrm, lambda _c, data: got.append(bytes(data)))
                await strap.send(72, [830.0, 845.5], True)
                await strap.send(300, [], None)
                await asyncio.sleep(0.01)
                await client.stop_notify(hrm)
                await strap.send(80, [], True)  # nobody subscribed: not delivered
                await asyncio.sleep(0.01)
            assert not client.is_connected
            assert [parse_heart_rate_measurement(g).bpm for g in got] == [72, 300]
            assert [s.delivered for s in strap.sent] == [True, True, False]

    arun(main)


def test_disconnected_callback_fires_on_link_loss_and_gatt_then_fails(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air) as strap:
            lost = asyncio.Event()
            client = BleakClient(
                strap.address, disconnected_callback=lambda _c: lost.set(), backend=BumbleClient, bumble_air=air
            )
            await client.connect()
            try:
                assert await strap.disconnect()
                await asyncio.wait_for(lost.wait(), 2.0)
                assert not client.is_connected
                with pytest.raises(BleakError):
                    await client.read_gatt_char(BATTERY_LEVEL_UUID)
            finally:
                await client.disconnect()
                await client.disconnect()  # idempotent

    arun(main)


def test_client_disconnect_is_not_reported_as_link_loss(air: VirtualAir, arun) -> None:
    async def main() -> None:
        async with VirtualStrap(air=air) as strap:
            calls: list[object] = []
            client = BleakClient(
                strap.address, disconnected_callback=calls.append, backend=BumbleClient, bumble_air=air
            )
            await client.connect()
            await client.disconnect()
            await asyncio.sleep(0.01)
            assert calls == []
            assert strap.link_log[-1].kind in ("disconnected", "advertising")

    arun(main)


def test_unknown_address_raises_device_not_found(air: VirtualAir, arun) -> None:
    async def main() -> None:
        client = BleakClient("F0:00:00:00:99:99", timeout=0.1, backend=BumbleClient, bumble_air=air)
        with pytest.raises(BleakDeviceNotFoundError):
            await client.connect()

    arun(main)


def test_airs_are_chosen_by_name_and_kept_apart(arun) -> None:
    async def main() -> None:
        assert get_air("ward-a") is get_air("ward-a")
        a, b = VirtualAir("a"), VirtualAir("b")
        async with VirtualStrap(air=a):
            assert await BleakScanner.discover(0.2, **bleak_kwargs(b)["scanner"]) == []
            assert len(await BleakScanner.discover(0.2, **bleak_kwargs(a)["scanner"])) == 1

    arun(main)
