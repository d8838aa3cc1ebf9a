"""A heart-rate strap over Bluetooth LE, through bleak: find, connect, subscribe, survive drop-outs.

:class:`BleHeartRateSource` is a :class:`~exposure_ctrl.sensors.source.HeartRateSource`:

- **Find** a strap by address, by advertised name, or (neither given) the first device that
  advertises the Heart Rate service 0x180D.
- **Connect** with a *fresh* ``BleakClient`` every time (a client is never reused after its link
  dropped), read Body Sensor Location (0x2A38) and Battery Level (0x2A19) when present,
  subscribe to Heart Rate Measurement (0x2A37) and to battery notifications.
- The **notification callback only stamps the arrival time and enqueues the raw bytes**; the
  consumer (``async for``) parses them (:func:`~exposure_ctrl.sensors.source.decode_raw`), so
  order is kept and a malformed packet is dropped and counted, never fatal.
- **Drop-outs**: bleak's ``disconnected_callback`` enqueues ``SourceStatus(DISCONNECTED)``;
  the source then reconnects with exponential back-off (``backoff_initial_s`` doubling up to
  ``backoff_max_s``, ±20 % jitter from a seeded generator) for as long as it is open. The next
  sample is preceded by a :class:`~exposure_ctrl.sensors.source.Gap` with start and end.
- **Staleness** (no sample for ``stale_after_s``) and gaps are handled by
  :class:`~exposure_ctrl.sensors.source.BaseHeartRateSource`.
- **No Bluetooth** (no adapter, no BlueZ; here bleak fails with ``FileNotFoundError`` from
  D-Bus): ``async with`` raises :class:`~exposure_ctrl.errors.SensorUnavailable` with
  ``reason=NO_BLUETOOTH`` and one sentence saying what to do. A strap that is not found at
  start raises ``reason=NOT_FOUND``; once a session has started, the source keeps trying.

Timeouts for scanning and connecting (``scan_timeout_s``, ``connect_timeout_s``) are real
seconds, because they are radio timeouts; back-off and staleness are in the clock's seconds.

The bleak backend is injected: ``scanner_kwargs``/``client_kwargs`` are passed to
``BleakScanner``/``BleakClient`` (e.g. ``backend=BumbleScanner``; see
:mod:`exposure_ctrl.sensors.bleak_bumble` and :func:`~exposure_ctrl.sensors.virtual_strap.
open_virtual_ble_source`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Sequence
from typing import Any

from exposure_ctrl.clock import Clock
from exposure_ctrl.errors import (
    ConfigError,
    SensorDataError,
    SensorError,
    SensorUnavailable,
    SensorUnavailableReason,
)
from exposure_ctrl.sensors.hrm import (
    BATTERY_LEVEL_UUID,
    BODY_SENSOR_LOCATION_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    parse_battery_level,
    parse_body_sensor_location,
)
from exposure_ctrl.sensors.source import (
    DEFAULT_STALE_AFTER_S,
    BaseHeartRateSource,
    DeviceInfo,
    SourceState,
)

__all__ = [
    "BleHeartRateSource",
    "FoundStrap",
    "scan_heart_rate_straps",
    "bluetooth_unavailable",
    "open_ble_source",
]

log = logging.getLogger(__name__)

_NO_BT_HINT = (
    "connect a Bluetooth LE adapter and make sure the Bluetooth service (BlueZ) is running, or "
    "use the virtual strap (--virtual, --sensor virtual-ble)"
)


def bluetooth_unavailable(error: BaseException) -> SensorUnavailable | None:
    """The one-sentence :class:`SensorUnavailable` for an error meaning 'no usable Bluetooth'.

    Returns None when ``error`` is something else (e.g. a strap that went out of range).
    """
    from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError

    if isinstance(error, BleakBluetoothNotAvailableError):
        return SensorUnavailable(
            f"Bluetooth is not available on this machine ({error}); {_NO_BT_HINT}.",
            SensorUnavailableReason.NO_BLUETOOTH,
        )
    if isinstance(error, PermissionError):
        return SensorUnavailable(
            "The operating system refused access to Bluetooth; allow this program to use "
            "Bluetooth (on Linux: membership of the 'bluetooth' group or a D-Bus policy).",
            SensorUnavailableReason.PERMISSION,
        )
    if isinstance(error, (FileNotFoundError, ConnectionRefusedError)):
        return SensorUnavailable(
            "Bluetooth is not available on this machine (bleak could not reach the system "
            f"Bluetooth service over D-Bus); {_NO_BT_HINT}.",
            SensorUnavailableReason.NO_BLUETOOTH,
        )
    if isinstance(error, BleakDBusError) and error.dbus_error in (
        "org.bluez.Error.NotReady",
        "org.freedesktop.DBus.Error.ServiceUnknown",
    ):
        return SensorUnavailable(
            f"The Bluetooth adapter is off or missing ({error.dbus_error}); switch it on, or "
            f"{_NO_BT_HINT.split(', or ')[-1]}.",
            SensorUnavailableReason.NO_BLUETOOTH,
        )
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class FoundStrap:
    """A device seen while scanning."""

    name: str | None
    address: str
    rssi: int
    heart_rate: bool  # advertises the Heart Rate service 0x180D


async def scan_heart_rate_straps(
    timeout_s: float = 5.0,
    *,
    all_devices: bool = False,
    scanner_kwargs: dict[str, Any] | None = None,
) -> list[FoundStrap]:
    """Scan for ``timeout_s`` real seconds; heart-rate straps first, strongest signal first.

    Raises ``SensorUnavailable(NO_BLUETOOTH)`` when there is no usable Bluetooth.
    """
    from bleak import BleakScanner

    try:
        found = await BleakScanner.discover(timeout_s, return_adv=True, **(scanner_kwargs or {}))
    except Exception as e:
        unavailable = bluetooth_unavailable(e)
        if unavailable is not None:
            raise unavailable from e
        raise
    out = []
    for device, ad in found.values():
        is_hr = HEART_RATE_SERVICE_UUID in (ad.service_uuids or [])
        if is_hr or all_devices:
            out.append(FoundStrap(ad.local_name or device.name, device.address, ad.rssi, is_hr))
    out.sort(key=lambda s: (not s.heart_rate, -s.rssi, s.address))
    return out


class _NotFound(SensorError):
    pass


class BleHeartRateSource(BaseHeartRateSource):
    """A heart-rate strap through bleak (see the module docstring).

    Args:
        address: connect to this address (or macOS UUID) only.
        device_name: connect to the device advertising this local name.
        clock: the session's clock.
        stale_after_s: see :class:`BaseHeartRateSource`.
        scan_timeout_s / connect_timeout_s: real seconds per attempt.
        initial_attempts: attempts in ``async with`` before giving up with ``NOT_FOUND``.
        backoff_initial_s / backoff_max_s / backoff_factor: reconnection back-off (clock s).
        seed: for the back-off jitter.
        scanner_kwargs / client_kwargs: passed to ``BleakScanner`` / ``BleakClient`` (backend).
        source_name: the ``source`` of samples (default ``ble:<address>`` once connected).
        owned: objects with async ``start()``/``aclose()`` started before connecting and closed
            after (the virtual strap of ``virtual-ble``).
        include_raw: also yield raw notifications (for recording).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        device_name: str | None = None,
        clock: Clock | None = None,
        stale_after_s: float | None = DEFAULT_STALE_AFTER_S,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 15.0,
        initial_attempts: int = 3,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        backoff_factor: float = 2.0,
        seed: int | None = 0,
        scanner_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        source_name: str | None = None,
        owned: Sequence[Any] = (),
        include_raw: bool = False,
    ) -> None:
        if address and device_name:
            raise ConfigError("give a strap's address or its name, not both")
        if not (backoff_initial_s > 0 and backoff_max_s >= backoff_initial_s and backoff_factor >= 1):
            raise ConfigError(
                "back-off must satisfy 0 < backoff_initial_s <= backoff_max_s and "
                f"backoff_factor >= 1, found {backoff_initial_s}, {backoff_max_s}, {backoff_factor}"
            )
        if initial_attempts < 1:
            raise ConfigError(f"initial_attempts must be at least 1, found {initial_attempts}")
        label = source_name or (f"ble:{address}" if address else "ble")
        super().__init__(label, clock=clock, stale_after_s=stale_after_s, include_raw=include_raw)
        self._fixed_name = source_name is not None or address is not None
        self.address = address
        self.device_name = device_name
        self.scan_timeout_s = scan_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.initial_attempts = initial_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.backoff_factor = backoff_factor
        self._rng = random.Random(seed)
        self._scanner_kwargs = dict(scanner_kwargs or {})
        self._client_kwargs = dict(client_kwargs or {})
        self._owned = list(owned)
        self._started: list[Any] = []
        self._client: Any = None
        self._generation = 0
        self._lost = asyncio.Event()
        self.connections = 0  # links established so far (each with a fresh client)

    # --- lifecycle hooks ---

    async def _open(self) -> None:
        for o in self._owned:
            await o.start()
            self._started.append(o)
        self._emit_status(SourceState.CONNECTING, self._target_text())
        last: BaseException | None = None
        for attempt in range(self.initial_attempts):
            if attempt:
                await self.clock.sleep(self._backoff(attempt - 1))
            try:
                await self._connect_once()
                return
            except SensorUnavailable:
                raise
            except Exception as e:
                unavailable = bluetooth_unavailable(e)
                if unavailable is not None:
                    raise unavailable from e
                last = e
                log.info("connecting to %s failed (attempt %d): %s", self._target_text(), attempt + 1, e)
        raise SensorUnavailable(
            f"No heart-rate strap could be connected ({self._target_text()}; "
            f"{self.initial_attempts} attempt(s), last: {last}); check that the strap is worn, "
            "moistened and charged, and not connected to a phone or another computer.",
            SensorUnavailableReason.NOT_FOUND,
        )

    async def _run(self) -> None:
        while True:
            await self._lost.wait()
            await self._drop_client()
            attempt = 0
            while True:
                delay = self._backoff(attempt)
                await self.clock.sleep(delay)
                self._emit_status(
                    SourceState.CONNECTING, f"reconnecting, attempt {attempt + 1}"
                )
                try:
                    await self._connect_once()
                    break
                except Exception as e:
                    attempt += 1
                    unavailable = bluetooth_unavailable(e)
                    reason = str(unavailable) if unavailable is not None else f"{type(e).__name__}: {e}"
                    log.info("reconnect attempt %d failed: %s", attempt, reason)
                    await self._drop_client()

    async def _close(self) -> None:
        await self._drop_client()
        for o in reversed(self._started):
            try:
                await o.aclose()
            except Exception:
                log.warning("closing %r failed", o, exc_info=True)
        self._started.clear()

    # --- connection ---

    def _target_text(self) -> str:
        if self.address:
            return f"address {self.address}"
        if self.device_name:
            return f"name {self.device_name!r}"
        return "any device advertising the Heart Rate service 0x180D"

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_initial_s * self.backoff_factor**attempt)
        return base * self._rng.uniform(0.8, 1.2)

    async def _find(self) -> Any:
        from bleak import BleakScanner

        kwargs = dict(self._scanner_kwargs)
        if self.address:
            want = self.address.upper()

            def match(d: Any, ad: Any) -> bool:
                return str(d.address).upper() == want

        elif self.device_name:
            want_name = self.device_name

            def match(d: Any, ad: Any) -> bool:
                return (ad.local_name or d.name) == want_name

        else:
            kwargs.setdefault("service_uuids", [HEART_RATE_SERVICE_UUID])

            def match(d: Any, ad: Any) -> bool:
                return HEART_RATE_SERVICE_UUID in (ad.service_uuids or [])

        device = await BleakScanner.find_device_by_filter(match, timeout=self.scan_timeout_s, **kwargs)
        if device is None:
            raise _NotFound(f"nothing found within {self.scan_timeout_s:g} s")
        return device

    async def _connect_once(self) -> None:
        from bleak import BleakClient

        device = await self._find()
        self._generation += 1
        generation = self._generation
        self._lost.clear()

        def on_disconnected(_client: Any) -> None:
            if generation == self._generation and not self._lost.is_set():
                self._emit_status(SourceState.DISCONNECTED, "link lost")
                self._lost.set()

        client = BleakClient(
            device,
            disconnected_callback=on_disconnected,
            timeout=self.connect_timeout_s,
            **self._client_kwargs,
        )
        self._client = client
        await client.connect()
        self.connections += 1
        services = client.services
        hrm = services.get_characteristic(HEART_RATE_MEASUREMENT_UUID)
        if hrm is None:
            raise _NotFound(f"{device.address} has no Heart Rate Measurement characteristic")
        address = str(client.address)
        if not self._fixed_name:
            self.name = f"ble:{address}"
        info = DeviceInfo(self.clock.now(), name=device.name, address=address, source=self.name)
        info = await self._read_info(client, info)
        self._emit_status(SourceState.CONNECTED, f"{device.name or ''} {address}".strip())
        self._emit_info(dataclasses.replace(info, t=self.clock.now()))

        def on_measurement(_char: Any, data: bytearray) -> None:
            self._emit_raw(self.clock.now(), "2a37", data)

        await client.start_notify(hrm, on_measurement)
        battery = services.get_characteristic(BATTERY_LEVEL_UUID)
        if battery is not None and "notify" in battery.properties:

            def on_battery(_char: Any, data: bytearray) -> None:
                self._emit_raw(self.clock.now(), "2a19", data)

            await client.start_notify(battery, on_battery)
        if self._lost.is_set():
            raise SensorError("the link dropped while subscribing")

    async def _read_info(self, client: Any, info: DeviceInfo) -> DeviceInfo:
        services = client.services
        location = services.get_characteristic(BODY_SENSOR_LOCATION_UUID)
        if location is not None and "read" in location.properties:
            try:
                loc = parse_body_sensor_location(await client.read_gatt_char(location))
                info = dataclasses.replace(info, body_location=loc.label)
            except SensorDataError as e:
                log.warning("body sensor location unreadable: %s", e)
        battery = services.get_characteristic(BATTERY_LEVEL_UUID)
        if battery is not None and "read" in battery.properties:
            try:
                info = dataclasses.replace(
                    info, battery_pct=parse_battery_level(await client.read_gatt_char(battery))
                )
            except SensorDataError as e:
                log.warning("battery level unreadable: %s", e)
        return info

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._generation += 1  # callbacks of the old client are ignored from now on
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), 5.0)
            except Exception:
                log.debug("disconnecting the old client failed", exc_info=True)


def open_ble_source(arg: str | None = None, *, clock: Clock, **options: Any) -> BleHeartRateSource:
    """Factory for ``ble``, ``ble:ADDRESS`` and ``ble:NAME`` (an address has 6 hex pairs or is a UUID)."""
    if arg and _looks_like_address(arg):
        return BleHeartRateSource(address=arg, clock=clock, **options)
    return BleHeartRateSource(device_name=arg or None, clock=clock, **options)


def _looks_like_address(text: str) -> bool:
    import re

    return bool(
        re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", text)
        or re.fullmatch(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}", text)
    )
