"""The virtual heart-rate strap: a BLE Heart Rate peripheral on bumble, shipped in the package.

Like python-can's virtual bus, it lets everything above it run with no hardware: the strap is a
real bumble GATT server (Heart Rate service 0x180D with Heart Rate Measurement 0x2A37 and Body
Sensor Location 0x2A38; Battery service 0x180F with Battery Level 0x2A19) that advertises on a
:class:`~exposure_ctrl.sensors.bleak_bumble.VirtualAir`. Centrals reach it through the real
bleak API with the backends in :mod:`exposure_ctrl.sensors.bleak_bumble`, so the BLE source
(:mod:`exposure_ctrl.sensors.ble`) is tested exactly as it runs against a real strap.

Drive it with a heart-rate *stream*: any iterable or async iterable whose items are one
notification each, either

- a tuple ``(bpm, rr_ms, contact)`` (``rr_ms`` a sequence of milliseconds, oldest first;
  ``contact`` True/False/None), or
- any object with ``bpm``, ``rr_ms`` and ``contact`` attributes (a ``HeartSample`` works), or
- ``bytes``: sent as is (malformed packets on purpose).

The strap paces itself on its clock: before each notification it sleeps the sum of that
item's RR intervals (1 s when it has none), so a :class:`~exposure_ctrl.clock.ScaledClock`
makes it run faster than real time with every notification stamped in simulated seconds.

It misbehaves on request: :meth:`VirtualStrap.disconnect` (link loss),
:meth:`VirtualStrap.go_silent` (out of range: no advertising for a while), ``dropouts=(10, 150)``
(a link loss every 10-150 s, as some hosts do), :meth:`VirtualStrap.drop_contact`,
:meth:`VirtualStrap.send_raw` (malformed packets), :meth:`VirtualStrap.set_battery`.

Everything it sends is logged in :attr:`VirtualStrap.sent` with ``delivered`` telling whether a
central was subscribed at that moment; that is what the end-to-end tests compare against.

:func:`open_virtual_ble_source` is the one-call factory behind ``--sensor virtual-ble``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Union

from exposure_ctrl.clock import Clock, MonotonicClock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.sensors.hrm import BodySensorLocation, encode_heart_rate_measurement

__all__ = [
    "VirtualStrap",
    "SentNotification",
    "LinkEvent",
    "HeartStreamItem",
    "synthetic_heart_stream",
    "open_virtual_ble_source",
    "DEFAULT_STRAP_NAME",
]

log = logging.getLogger(__name__)

DEFAULT_STRAP_NAME = "Virtual HRM"

HeartStreamItem = Union[tuple[float, Sequence[float], Union[bool, None]], bytes, Any]
"""One notification's worth: ``(bpm, rr_ms, contact)``, an object with those attributes, or bytes."""


@dataclasses.dataclass(frozen=True, slots=True)
class SentNotification:
    """One 0x2A37 notification the strap sent (``delivered``: a central was subscribed)."""

    t: float
    payload: bytes
    delivered: bool
    raw: bool = False  # sent with send_raw (possibly malformed)


@dataclasses.dataclass(frozen=True, slots=True)
class LinkEvent:
    """A change of the strap's link: ``connected``, ``subscribed``, ``disconnected``,
    ``silent`` (stopped advertising), ``advertising``."""

    t: float
    kind: str
    detail: str = ""


def _coerce(item: HeartStreamItem) -> tuple[int, tuple[float, ...], bool | None, bytes | None]:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return 0, (), None, bytes(item)
    if isinstance(item, tuple):
        if len(item) != 3:
            raise ConfigError(
                f"a heart-rate stream item must be (bpm, rr_ms, contact), found {item!r}"
            )
        bpm, rr, contact = item
    else:
        try:
            bpm, rr, contact = item.bpm, item.rr_ms, item.contact
        except AttributeError:
            raise ConfigError(
                "a heart-rate stream item must be (bpm, rr_ms, contact), an object with bpm, "
                f"rr_ms and contact attributes, or bytes; found {type(item).__name__}"
            ) from None
    return int(round(float(bpm))), tuple(float(x) for x in (rr or ())), contact, None


async def _aiter(stream: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(stream, AsyncIterable):
        async for item in stream:
            yield item
    else:
        for item in stream:
            yield item


def synthetic_heart_stream(
    mean_bpm: float = 70.0,
    *,
    sdnn_ms: float = 40.0,
    seed: int | None = 0,
    contact: bool | None = True,
) -> Iterator[tuple[int, tuple[float, ...], bool | None]]:
    """An endless, plausible resting heart rhythm: one RR interval per notification.

    RR intervals follow a slow AR(1) drift plus respiratory sinus arrhythmia (0.25 Hz); bpm is
    the rounded rate over the last few beats, as straps report it. Deterministic for a seed.
    """
    if not 30 <= mean_bpm <= 220:
        raise ConfigError(f"mean_bpm must be within 30..220, found {mean_bpm!r}")
    rng = random.Random(seed)
    base = 60000.0 / mean_bpm
    drift = 0.0
    t = 0.0
    recent: list[float] = []
    while True:
        drift = 0.95 * drift + rng.gauss(0.0, sdnn_ms * math.sqrt(1 - 0.95**2))
        rsa = 0.5 * sdnn_ms * math.sin(2 * math.pi * 0.25 * t)
        rr = min(1900.0, max(300.0, base + drift + rsa + rng.gauss(0.0, 5.0)))
        t += rr / 1000.0
        recent = (recent + [rr])[-4:]
        bpm = int(round(60000.0 / (sum(recent) / len(recent))))
        yield bpm, (round(rr, 1),), contact


class VirtualStrap:
    """A BLE heart-rate strap on a virtual air (see the module docstring).

    Args:
        stream: heart-rate stream played after ``start()`` (None: drive it by hand with
            :meth:`send`).
        name: advertised local name.
        address: its address on the air (default: a fresh one).
        air: the :class:`~exposure_ctrl.sensors.bleak_bumble.VirtualAir` (or its name).
        clock: paces the stream and stamps what is sent.
        battery_pct / body_location: what 0x2A19 / 0x2A38 report.
        energy_kj: when not None, every measurement carries an energy-expended field counting
            up from this value.
        dropouts: ``(min_s, max_s)``: force a link loss every uniform(min_s, max_s) clock
            seconds while a central is subscribed.
        seed: for the dropout schedule.
        advertising_interval_ms: real milliseconds between advertisements.
    """

    def __init__(
        self,
        stream: Iterable[Any] | AsyncIterable[Any] | None = None,
        *,
        name: str = DEFAULT_STRAP_NAME,
        address: str | None = None,
        air: Any = None,
        clock: Clock | None = None,
        battery_pct: int = 87,
        body_location: BodySensorLocation | None = BodySensorLocation.CHEST,
        energy_kj: int | None = None,
        dropouts: tuple[float, float] | None = None,
        seed: int | None = None,
        advertising_interval_ms: float = 20.0,
    ) -> None:
        if dropouts is not None:
            lo, hi = dropouts
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ConfigError(f"dropouts must be (min_s, max_s) with 0 < min_s <= max_s, found {dropouts!r}")
        if not 0 <= battery_pct <= 100:
            raise ConfigError(f"battery_pct must be within 0..100, found {battery_pct!r}")
        self.name = name
        self._address = address
        self._air_ref = air
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.stream = stream
        self.battery_pct = battery_pct
        self.body_location = body_location
        self.energy_kj = energy_kj
        self.dropouts = dropouts
        self._rng = random.Random(seed)
        self.advertising_interval_ms = advertising_interval_ms
        self.contact_override: bool | None = None
        self.sent: list[SentNotification] = []
        self.link_log: list[LinkEvent] = []
        self.stream_done = asyncio.Event()
        self._device: Any = None
        self._air: Any = None
        self._hrm: Any = None
        self._battery: Any = None
        self._silent = False
        self._closed = False
        self._link_down = False  # a link loss is under way: nothing goes out any more
        self._tasks: set[asyncio.Task[Any]] = set()
        self._radio_tasks: set[asyncio.Task[Any]] = set()  # run to completion, never cancelled
        self._subscribed = asyncio.Event()

    # --- lifecycle ---

    async def __aenter__(self) -> "VirtualStrap":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Power on, publish the GATT services, advertise, and play the stream if one was given."""
        if self._device is not None:
            return
        if self._closed:
            raise ConfigError("this virtual strap was closed; make a new one")
        from bumble import data_types, gatt
        from bumble.core import AdvertisingData

        from exposure_ctrl.sensors.bleak_bumble import get_air

        self._air = get_air(self._air_ref)
        device = await self._air.attach(self.name, self._address, first_byte=0xF0)
        self._address = str(device.random_address)
        self._hrm = gatt.Characteristic(
            gatt.GATT_HEART_RATE_MEASUREMENT_CHARACTERISTIC,
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions(0),
            b"",
        )
        hr_chars = [self._hrm]
        if self.body_location is not None:
            hr_chars.append(
                gatt.Characteristic(
                    gatt.GATT_BODY_SENSOR_LOCATION_CHARACTERISTIC,
                    gatt.Characteristic.Properties.READ,
                    gatt.Characteristic.READABLE,
                    bytes([int(self.body_location)]),
                )
            )
        self._battery = gatt.Characteristic(
            gatt.GATT_BATTERY_LEVEL_CHARACTERISTIC,
            gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue(read=lambda _conn: bytes([self.battery_pct])),
        )
        device.add_service(gatt.Service(gatt.GATT_HEART_RATE_SERVICE, hr_chars))
        device.add_service(gatt.Service(gatt.GATT_BATTERY_SERVICE, [self._battery]))
        device.advertising_data = bytes(
            AdvertisingData(
                [
                    data_types.Flags(
                        AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                        | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG
                    ),
                    data_types.CompleteLocalName(self.name),
                    data_types.IncompleteListOf16BitServiceUUIDs([gatt.GATT_HEART_RATE_SERVICE]),
                ]
            )
        )
        device.on(device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        self._device = device
        await self._advertise()
        if self.stream is not None:
            self._spawn(self.play(self.stream), "stream")
        if self.dropouts is not None:
            self._spawn(self._dropout_loop(), "dropouts")

    async def aclose(self) -> None:
        """Stop the stream, disconnect, leave the air. Safe to call twice."""
        self._closed = True
        tasks, self._tasks = list(self._tasks), set()
        for t in tasks:
            t.cancel()
        radio, self._radio_tasks = list(self._radio_tasks), set()
        if tasks or radio:
            await asyncio.gather(*tasks, *radio, return_exceptions=True)
        device, self._device = self._device, None
        if device is not None:
            await self._air.detach(device)

    def _spawn(self, coro: Any, what: str, *, radio: bool = False) -> asyncio.Task[Any]:
        """Start a task; ``radio`` tasks drive bumble commands and are awaited, not cancelled,
        on close (cancelling a command in flight desynchronises bumble's host)."""
        task = asyncio.create_task(coro, name=f"virtual strap {self.name}: {what}")
        (self._radio_tasks if radio else self._tasks).add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._radio_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("virtual strap %s: task %s failed", self.name, task.get_name(), exc_info=task.exception())

    # --- state ---

    @property
    def address(self) -> str:
        if self._address is None:
            raise ConfigError("the virtual strap has no address until it is started")
        return self._address

    @property
    def air(self) -> Any:
        return self._air

    @property
    def connected(self) -> bool:
        return self._device is not None and bool(self._device.connections)

    @property
    def subscribed(self) -> bool:
        """Whether a central has notifications of 0x2A37 switched on."""
        if self._device is None or self._hrm is None:
            return False
        for cccds in self._device.gatt_server.subscribers.values():
            value = cccds.get(self._hrm.handle)
            if value and len(value) == 2 and value[0] & 0x01:
                return True
        return False

    async def wait_subscribed(self) -> None:
        """Wait until a central subscribes to heart-rate notifications."""
        while not self.subscribed:
            self._subscribed.clear()
            await self._subscribed.wait()

    @property
    def delivered(self) -> list[SentNotification]:
        """The notifications that were sent while a central was subscribed."""
        return [s for s in self.sent if s.delivered]

    def _log(self, kind: str, detail: str = "") -> None:
        self.link_log.append(LinkEvent(self.clock.now(), kind, detail))

    def _on_connection(self, connection: Any) -> None:
        self._link_down = False
        self._log("connected", str(connection.peer_address))
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(reason))

    def _on_disconnection(self, reason: int) -> None:
        self._log("disconnected", f"reason 0x{reason:02x}")
        if not self._silent and not self._closed and self._device is not None:
            self._spawn(self._advertise(), "advertise", radio=True)

    def _on_subscription(self, connection: Any, characteristic: Any, notify: bool, indicate: bool) -> None:
        if self._hrm is not None and characteristic.handle == self._hrm.handle:
            self._log("subscribed" if notify else "unsubscribed")
            self._subscribed.set()

    async def _advertise(self) -> None:
        device = self._device
        if device is None or device.is_advertising or device.connections:
            return
        await device.start_advertising(
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
        )
        self._log("advertising")

    # --- driving ---

    async def send(
        self, bpm: float, rr_ms: Sequence[float] = (), contact: bool | None = True
    ) -> SentNotification:
        """Send one Heart Rate Measurement notification now."""
        if self.contact_override is not None:
            contact = self.contact_override
        energy = None
        if self.energy_kj is not None:
            self.energy_kj = min(0xFFFF, self.energy_kj + 1)
            energy = self.energy_kj
        payload = encode_heart_rate_measurement(int(round(bpm)), tuple(rr_ms), contact, energy)
        return await self._notify(payload, raw=False)

    async def send_raw(self, payload: bytes) -> SentNotification:
        """Send ``payload`` as a 0x2A37 notification, unchecked (for malformed packets)."""
        return await self._notify(bytes(payload), raw=True)

    async def _notify(self, payload: bytes, *, raw: bool) -> SentNotification:
        if self._device is None:
            raise ConfigError("the virtual strap is not started")
        delivered = self.subscribed and not self._link_down
        note = SentNotification(self.clock.now(), payload, delivered, raw)
        self.sent.append(note)
        if delivered:
            await self._device.notify_subscribers(self._hrm, payload)
        return note

    async def play(self, stream: Iterable[Any] | AsyncIterable[Any]) -> None:
        """Play a heart-rate stream to its end (paced on the clock)."""
        try:
            due = self.clock.now()
            async for item in _aiter(stream):
                bpm, rr, contact, raw = _coerce(item)
                # pace on absolute deadlines, so that sleep overshoot does not accumulate
                due += sum(rr) / 1000.0 if rr else 1.0
                await self.clock.sleep(max(0.0, due - self.clock.now()))
                if self._device is None:
                    return
                if raw is not None:
                    await self.send_raw(raw)
                else:
                    await self.send(bpm, rr, contact)
        finally:
            self.stream_done.set()

    def drop_contact(self) -> None:
        """From now on report 'no skin contact' whatever the stream says."""
        self.contact_override = False

    def restore_contact(self) -> None:
        """Report contact as the stream says again."""
        self.contact_override = None

    async def set_battery(self, pct: int) -> None:
        """Change the battery level and notify subscribers of 0x2A19."""
        if not 0 <= pct <= 100:
            raise ConfigError(f"battery level must be within 0..100, found {pct!r}")
        self.battery_pct = pct
        if self._device is not None:
            await self._device.notify_subscribers(self._battery, bytes([pct]))

    async def disconnect(self, reason: str = "link loss") -> bool:
        """Drop every connection as a radio link loss between two notifications would.

        From this call on nothing more is sent (``delivered`` False); what was sent before has
        left the strap (its packets are drained to the link) and reaches the central. Returns
        True if there was a connection.
        """
        device = self._device
        if device is None or not device.connections:
            return False
        self._link_down = True
        self._log("forced-disconnect", reason)
        task = self._spawn(self._drop_links(device), "disconnect", radio=True)
        await asyncio.shield(task)
        return True

    async def _drop_links(self, device: Any) -> None:
        from bumble import hci

        for conn in list(device.connections.values()):
            try:
                await asyncio.wait_for(conn.drain(), 1.0)
                await conn.disconnect(hci.HCI_CONNECTION_TIMEOUT_ERROR)
            except Exception:
                log.debug("virtual strap: disconnect failed", exc_info=True)

    async def go_silent(self, duration_s: float) -> None:
        """Out of range for ``duration_s`` clock seconds: disconnect and stop advertising."""
        device = self._device
        if device is None:
            return
        self._silent = True
        self._log("silent", f"{duration_s:g} s")
        try:
            await self.disconnect("out of range")
            if device.is_advertising:
                await asyncio.shield(self._spawn(device.stop_advertising(), "silence", radio=True))
            await self.clock.sleep(duration_s)
        finally:
            self._silent = False
        await asyncio.shield(self._spawn(self._advertise(), "advertise", radio=True))

    async def _dropout_loop(self) -> None:
        assert self.dropouts is not None
        lo, hi = self.dropouts
        while True:
            await self.wait_subscribed()
            await self.clock.sleep(self._rng.uniform(lo, hi))
            await self.disconnect("scheduled dropout")


def open_virtual_ble_source(
    arg: str | None = None,
    *,
    clock: Clock | None = None,
    stream: Iterable[Any] | AsyncIterable[Any] | None = None,
    strap: VirtualStrap | None = None,
    dropouts: tuple[float, float] | None = None,
    seed: int | None = 0,
    air: Any = None,
    **source_options: Any,
) -> Any:
    """The BLE source connected through bleak to a virtual strap it owns: ``--sensor virtual-ble``.

    Args:
        arg: optional strap name (``virtual-ble:NAME``).
        clock: shared by the strap and the source.
        stream: what the strap plays (default: :func:`synthetic_heart_stream` with ``seed``);
            e.g. the simulated patient's beats.
        strap: use this (not yet started) strap instead of making one; the source starts and
            closes it.
        dropouts: passed to the strap (forced link losses every min..max seconds).
        air: the virtual air (default: a fresh private one, so several sessions never meet).
        **source_options: passed to :class:`~exposure_ctrl.sensors.ble.BleHeartRateSource`
            (``stale_after_s``, back-off settings...).

    Returns:
        a :class:`~exposure_ctrl.sensors.ble.BleHeartRateSource`; ``source.strap`` is the strap.
    """
    from exposure_ctrl.sensors.ble import BleHeartRateSource
    from exposure_ctrl.sensors.bleak_bumble import VirtualAir, bleak_kwargs

    clock = clock if clock is not None else MonotonicClock()
    if strap is None:
        strap = VirtualStrap(
            stream if stream is not None else synthetic_heart_stream(seed=seed),
            name=arg or DEFAULT_STRAP_NAME,
            air=air if air is not None else VirtualAir("virtual-ble"),
            clock=clock,
            dropouts=dropouts,
            seed=seed,
        )
    elif stream is not None or dropouts is not None:
        raise ConfigError("give either a strap or stream/dropouts for a new strap, not both")
    kw = bleak_kwargs(strap._air_ref if strap._air_ref is not None else None)
    source = BleHeartRateSource(
        device_name=strap.name,
        clock=clock,
        scanner_kwargs=kw["scanner"],
        client_kwargs=kw["client"],
        source_name="virtual-ble",
        owned=[strap],
        **source_options,
    )
    source.strap = strap  # type: ignore[attr-defined]
    return source

