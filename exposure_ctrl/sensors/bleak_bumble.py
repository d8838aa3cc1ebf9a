"""A bleak backend that talks to in-process bumble devices: BLE without a radio or a kernel.

bleak lets a caller replace its platform backend (``BleakScanner(..., backend=...)``,
``BleakClient(..., backend=...)``); this module provides that pair, :class:`BumbleScanner` and
:class:`BumbleClient`, on top of Google's bumble user-space Bluetooth stack. Both sides are real
bumble hosts and link-layer controllers joined by a :class:`bumble.link.LocalLink` (a
:class:`VirtualAir`): advertising, scanning, connection set-up, GATT discovery, reads, CCCD writes,
notifications and disconnections are real protocol exchanges, only the radio is simulated. Code
written against bleak runs unchanged::

    from bleak import BleakClient, BleakScanner
    from exposure_ctrl.sensors.bleak_bumble import BumbleClient, BumbleScanner

    devices = await BleakScanner.discover(1.0, backend=BumbleScanner)
    async with BleakClient(devices[0], backend=BumbleClient) as client:
        await client.start_notify("2a37", on_notification)

The peripherals live in :mod:`exposure_ctrl.sensors.virtual_strap`. Airs are chosen by name
(like python-can's virtual channels): the extra keyword ``bumble_air=`` (a :class:`VirtualAir`
or a name; default ``"default"``) selects one; a ``BLEDevice`` found by :class:`BumbleScanner`
remembers its air. :func:`bleak_kwargs` gives the keyword arguments in one call.

Each :class:`BumbleClient` and each scan gets its own central bumble device on the air (one
adapter per client), released on ``disconnect()``/``stop()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import uuid as _uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bumble import core, hci
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

__all__ = [
    "VirtualAir",
    "BumbleScanner",
    "BumbleClient",
    "BumbleDeviceDetails",
    "get_air",
    "bleak_kwargs",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_PROPERTY_NAMES = {
    0x01: "broadcast",
    0x02: "read",
    0x04: "write-without-response",
    0x08: "write",
    0x10: "notify",
    0x20: "indicate",
    0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}


_orphans: set[asyncio.Future[Any]] = set()
"""Background radio work nobody awaits (operations that outlived a cancelled caller, releasing a
central after an unsolicited disconnect); referenced here until done, each takes milliseconds."""


def _keep(fut: asyncio.Future[Any]) -> None:
    _orphans.add(fut)
    fut.add_done_callback(_orphans.discard)


async def _radio(coro: Awaitable[_T], undo: Callable[[_T], Awaitable[Any]] | None = None) -> _T:
    """Await a bumble operation that must not be cancelled half-way.

    Cancelling a bumble HCI command while it is in flight desynchronises bumble's host (the late
    response lands on the next command's future). So the operation runs in its own task,
    shielded: if the caller is cancelled, the operation still completes, and ``undo(result)``
    (e.g. detach a device, drop a connection) then cleans up what nobody will use.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def finished(t: asyncio.Future[_T]) -> None:
            if t.cancelled():
                return
            if t.exception() is not None:
                log.debug("orphaned radio operation failed: %r", t.exception())
                return
            if undo is not None:
                _keep(asyncio.ensure_future(undo(t.result())))

        if task.done():
            finished(task)
        else:
            _keep(task)
            task.add_done_callback(finished)
        raise


def _uuid_str(u: core.UUID) -> str:
    """bumble UUID -> bleak's normalised 128-bit lower-case string."""
    return str(_uuid.UUID(bytes=bytes(u.uuid_128_bytes[::-1])))


# --- the air -------------------------------------------------------------------------------


class VirtualAir:
    """An in-process radio space: a bumble ``LocalLink`` and the devices attached to it.

    Devices are bound to the event loop they were created on; an air whose loop has closed is
    replaced by :func:`get_air` with a fresh one.
    """

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self.link = LocalLink()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counter = itertools.count(1)
        self._devices: dict[int, tuple[Device, Controller]] = {}

    def __repr__(self) -> str:
        return f"VirtualAir({self.name!r}, devices={len(self._devices)})"

    @property
    def loop_closed(self) -> bool:
        return self._loop is not None and self._loop.is_closed()

    def next_address(self, first_byte: int) -> str:
        """A fresh random static address (top two bits set) in this air."""
        n = next(self._counter)
        return ":".join(f"{b:02X}" for b in (first_byte | 0xC0, 0, 0, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))

    async def attach(self, name: str, address: str | None = None, *, first_byte: int = 0xC0) -> Device:
        """Create a powered-on bumble device with its own controller on this air."""
        return await _radio(self._attach(name, address, first_byte), self.detach)

    async def _attach(self, name: str, address: str | None, first_byte: int) -> Device:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise BleakError(
                f"virtual air {self.name!r} belongs to another event loop; make a new VirtualAir"
            )
        address = address or self.next_address(first_byte)
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(
            name=name,
            address=hci.Address(address),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        await device.power_on()
        self._devices[id(device)] = (device, controller)
        return device

    async def detach(self, device: Device) -> None:
        """Drop ``device`` from the air (its connections end). Safe to call twice."""
        await _radio(self._detach(device))

    async def _detach(self, device: Device) -> None:
        entry = self._devices.pop(id(device), None)
        if entry is None:
            return
        _, controller = entry
        for conn in list(device.connections.values()):
            if not any(c.handle == conn.handle for c in controller.le_connections.values()):
                continue  # already gone at the link layer
            try:
                await asyncio.wait_for(conn.disconnect(), 1.0)
            except Exception:  # the peer may be gone already
                log.debug("disconnect while detaching %s failed", device, exc_info=True)
        try:
            if device.is_advertising:
                await device.stop_advertising()
            if device.is_scanning:
                await device.stop_scanning()
        except Exception:
            log.debug("stopping radio activity of %s failed", device, exc_info=True)
        controller.le_legacy_advertiser.stop()
        for adv_set in controller.advertising_sets.values():
            adv_set.stop()
        if controller in self.link.controllers:
            self.link.remove_controller(controller)

    def is_advertising(self, address: str) -> bool:
        """Whether a device with this address is on the air and advertising."""
        want = address.upper()
        for c in self.link.controllers:
            if str(c.random_address).upper() == want or str(c.public_address).upper() == want:
                if c.le_legacy_advertiser.enabled or any(
                    s.enabled for s in c.advertising_sets.values()
                ):
                    return True
        return False


_AIRS: dict[str, VirtualAir] = {}


def get_air(air: VirtualAir | str | None = None) -> VirtualAir:
    """The air object for ``air`` (an object is returned as is; a name is looked up/created)."""
    if isinstance(air, VirtualAir):
        return air
    name = air or "default"
    found = _AIRS.get(name)
    if found is None or found.loop_closed:
        found = _AIRS[name] = VirtualAir(name)
    return found


def bleak_kwargs(air: VirtualAir | str | None = None) -> dict[str, Any]:
    """Keyword arguments that point ``BleakScanner``/``BleakClient`` at an air.

    Returns ``{"scanner": {...}, "client": {...}}``; spread the one you need:
    ``BleakScanner(**kw["scanner"])``, ``BleakClient(device, **kw["client"])``.
    """
    a = get_air(air)
    return {
        "scanner": {"backend": BumbleScanner, "bumble_air": a},
        "client": {"backend": BumbleClient, "bumble_air": a},
    }


@dataclasses.dataclass(frozen=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` for devices found on a virtual air."""

    air: VirtualAir
    address: str
    advertisement: Advertisement | None = None


# --- scanner -------------------------------------------------------------------------------


def _advertisement_data(adv: Advertisement) -> AdvertisementData:
    data: AdvertisingData = adv.data
    T = AdvertisingData.Type
    name = data.get(T.COMPLETE_LOCAL_NAME) or data.get(T.SHORTENED_LOCAL_NAME)
    uuids: list[str] = []
    for t in (
        T.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        T.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        T.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        T.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        T.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        T.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for u in data.get(t) or []:
            s = _uuid_str(u)
            if s not in uuids:
                uuids.append(s)
    manufacturer: dict[int, bytes] = {}
    for raw in data.get_all(T.MANUFACTURER_SPECIFIC_DATA, raw=True):
        if len(raw) >= 2:
            manufacturer[int.from_bytes(raw[:2], "little")] = bytes(raw[2:])
    service_data: dict[str, bytes] = {}
    for raw in data.get_all(T.SERVICE_DATA_16_BIT_UUID, raw=True):
        if len(raw) >= 2:
            service_data[_uuid_str(core.UUID.from_bytes(raw[:2]))] = bytes(raw[2:])
    tx = data.get(T.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=str(name) if name is not None else None,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=int(tx) if tx is not None else None,
        rssi=int(adv.rssi),
        platform_data=(adv,),
    )


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend: a central bumble device scanning a :class:`VirtualAir`."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        bumble_air: VirtualAir | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._air_ref = bumble_air
        self._active = scanning_mode != "passive"
        self._device: Device | None = None
        self._air: VirtualAir | None = None

    async def start(self) -> None:
        if self._device is not None:
            return
        self.seen_devices = {}
        self._air = get_air(self._air_ref)
        device = await self._air.attach("bleak-scanner")
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        self._device = device
        await _radio(device.start_scanning(active=self._active, filter_duplicates=False))

    async def stop(self) -> None:
        device, self._device = self._device, None
        if device is not None and self._air is not None:
            device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            await self._air.detach(device)

    def _on_advertisement(self, adv: Advertisement) -> None:
        ad = _advertisement_data(adv)
        if not self.is_allowed_uuid(ad.service_uuids):
            return
        address = str(adv.address)
        assert self._air is not None
        device = self.create_or_update_device(
            address, address, ad.local_name, BumbleDeviceDetails(self._air, address, adv), ad
        )
        self.call_detection_callbacks(device, ad)


# --- client --------------------------------------------------------------------------------


class BumbleClient(BaseBleakClient):
    """bleak client backend: a central bumble device connecting to a peripheral on an air."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        bumble_air: VirtualAir | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._name: str | None = None
        air_ref: VirtualAir | str | None = bumble_air
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name
            details = address_or_ble_device.details
            if isinstance(details, BumbleDeviceDetails) and bumble_air is None:
                air_ref = details.air
        self._air_ref = air_ref
        self._air: VirtualAir | None = None
        self._device: Device | None = None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._lost: asyncio.Future[None] | None = None
        self._closing = False
        self._proxies: dict[int, Any] = {}
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # --- properties ---

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._lost is not None and not self._lost.done()

    # --- connection ---

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            return
        if pair:
            log.info("the virtual air does not pair; connecting without pairing")
        self._air = get_air(self._air_ref)
        await self._wait_advertising(self._air)
        self._closing = False
        self._device = await self._air.attach("bleak-client")
        try:
            try:
                conn = await _radio(
                    self._device.connect(hci.Address(self.address), timeout=self._timeout),
                    _drop_connection,
                )
            except (core.BaseBumbleError, asyncio.TimeoutError) as e:
                raise BleakError(f"could not connect to {self.address}: {e}") from e
            self._connection = conn
            self._lost = asyncio.get_running_loop().create_future()
            conn.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
            self._peer = Peer(conn)
            self.services = await self._guard(self._discover())
        except BaseException:
            await self._release()
            raise

    async def _wait_advertising(self, air: VirtualAir) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while not air.is_advertising(self.address):
            if loop.time() >= deadline:
                raise BleakDeviceNotFoundError(
                    self.address, f"Device with address {self.address} was not found."
                )
            await asyncio.sleep(0.005)

    async def _discover(self) -> BleakGATTServiceCollection:
        assert self._peer is not None
        peer = self._peer
        await peer.discover_services()
        collection = BleakGATTServiceCollection()
        for s in peer.services:
            await s.discover_characteristics()
            service = BleakGATTService(s, s.handle, _uuid_str(s.uuid))
            collection.add_service(service)
            for c in s.characteristics:
                await c.discover_descriptors()
                props = [n for bit, n in _PROPERTY_NAMES.items() if int(c.properties) & bit]
                char = BleakGATTCharacteristic(
                    c, c.handle, _uuid_str(c.uuid), props, lambda: self.mtu_size - 3, service
                )
                collection.add_characteristic(char)
                self._proxies[c.handle] = c
                for d in c.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(d, d.handle, _uuid_str(d.type), char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        unsolicited = not self._closing
        log.debug("virtual link to %s lost (reason %s, unsolicited=%s)", self.address, reason, unsolicited)
        if unsolicited:
            # drop the central device in the background, as a radio stack frees its state
            asyncio.get_running_loop().call_soon(self._schedule_release)
            if self._disconnected_callback is not None:
                self._disconnected_callback()

    def _schedule_release(self) -> None:
        _keep(asyncio.ensure_future(self._release()))

    async def disconnect(self) -> None:
        self._closing = True
        conn = self._connection
        if conn is not None and self._lost is not None and not self._lost.done():
            try:
                await _radio(asyncio.wait_for(conn.disconnect(), 2.0))
            except Exception:
                log.debug("disconnect from %s failed", self.address, exc_info=True)
        await self._release()

    async def _release(self) -> None:
        device, self._device = self._device, None
        self._connection = None
        self._peer = None
        self._proxies.clear()
        self._subscribers.clear()
        if device is not None and self._air is not None:
            await self._air.detach(device)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("the virtual air does not support pairing")

    async def unpair(self) -> None:
        raise BleakError("the virtual air does not support pairing")

    # --- I/O ---

    async def _guard(self, aw: Awaitable[_T]) -> _T:
        """Await a GATT operation, but fail at once (not after bumble's 30 s) if the link drops."""
        lost = self._lost
        if lost is None or lost.done() or self._peer is None:
            raise BleakError("Not connected")
        task = asyncio.ensure_future(aw)
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The caller gave up; cancelling the request mid-flight would make bumble's GATT
            # client choke on the late response, so let it finish (milliseconds), or end it
            # if the link goes away first.
            _keep(task)
            task.add_done_callback(_retrieve)
            lost.add_done_callback(lambda _f: task.cancel())
            raise
        if not task.done():
            for _ in range(3):  # a response may already be queued behind the disconnection
                await asyncio.sleep(0)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise BleakError(f"{self.address} disconnected during a GATT operation")

    def _proxy(self, characteristic: BleakGATTCharacteristic) -> Any:
        proxy = self._proxies.get(characteristic.handle)
        if proxy is None:
            raise BleakError(f"characteristic {characteristic.uuid} is not on this connection")
        return proxy

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._peer
        if peer is None:
            raise BleakError("Not connected")
        return bytearray(await self._guard(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._peer
        if peer is None:
            raise BleakError("Not connected")
        return bytearray(await self._guard(peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._peer
        if peer is None:
            raise BleakError("Not connected")
        await self._guard(peer.write_value(characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._peer
        if peer is None:
            raise BleakError("Not connected")
        await self._guard(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy = self._proxy(characteristic)

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        old = self._subscribers.pop(characteristic.handle, None)
        if old is not None:
            await self._guard(proxy.unsubscribe(old))
        self._subscribers[characteristic.handle] = on_value
        await self._guard(proxy.subscribe(on_value, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        proxy = self._proxy(characteristic)
        sub = self._subscribers.pop(characteristic.handle, None)
        if sub is not None:
            await self._guard(proxy.unsubscribe(sub))


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.debug("abandoned GATT operation failed: %r", fut.exception())


async def _drop_connection(conn: Connection) -> None:
    try:
        await asyncio.wait_for(conn.disconnect(), 2.0)
    except Exception:
        log.debug("dropping an unwanted connection failed", exc_info=True)
