"""Pure parsers (and encoders) for the GATT characteristics a heart-rate strap exposes.

- Heart Rate Measurement, 0x2A37 (notify), per the Bluetooth *Heart Rate Service* specification::

      byte 0  flags  bit 0    heart-rate value format: 0 = uint8, 1 = uint16 (little endian)
                     bits 1-2 sensor contact: 0/1 = not supported, 2 = supported but no contact,
                              3 = supported and in contact
                     bit 3    energy expended present (uint16, kilojoules)
                     bit 4    RR intervals present (one or more uint16, units of 1/1024 s)
                     bits 5-7 reserved (ignored)
      then    heart rate (1 or 2 bytes), [energy expended (2 bytes)], [RR intervals (2 bytes each)]

- Body Sensor Location, 0x2A38 (read): one byte, 0 other, 1 chest, 2 wrist, 3 finger, 4 hand,
  5 ear lobe, 6 foot.
- Battery Level, 0x2A19 (read/notify): one byte, percent 0..100.

Every parser takes ``bytes`` and returns a value or raises
:class:`~exposure_ctrl.errors.SensorDataError` saying what is wrong with the packet. Nothing
here does I/O, so a recording of raw packets (``exposure-ctrl hr record``) can be parsed again
later with the same code.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Sequence

from exposure_ctrl.errors import SensorDataError

__all__ = [
    "HEART_RATE_SERVICE_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "BODY_SENSOR_LOCATION_UUID",
    "BATTERY_SERVICE_UUID",
    "BATTERY_LEVEL_UUID",
    "HeartRateMeasurement",
    "BodySensorLocation",
    "parse_heart_rate_measurement",
    "encode_heart_rate_measurement",
    "parse_body_sensor_location",
    "parse_battery_level",
    "rr_raw_to_ms",
    "rr_ms_to_raw",
]


def _uuid16(short: int) -> str:
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HEART_RATE_SERVICE_UUID = _uuid16(0x180D)
HEART_RATE_MEASUREMENT_UUID = _uuid16(0x2A37)
BODY_SENSOR_LOCATION_UUID = _uuid16(0x2A38)
BATTERY_SERVICE_UUID = _uuid16(0x180F)
BATTERY_LEVEL_UUID = _uuid16(0x2A19)

_FLAG_HR16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY = 0x08
_FLAG_RR = 0x10

_RR_MAX_RAW = 0xFFFF


def rr_raw_to_ms(raw: int) -> float:
    """An RR interval in units of 1/1024 s -> milliseconds, rounded to 0.1 ms."""
    return round(raw * 1000.0 / 1024.0, 1)


def rr_ms_to_raw(ms: float) -> int:
    """Milliseconds -> the nearest RR interval in units of 1/1024 s (what a strap sends)."""
    raw = round(ms * 1024.0 / 1000.0)
    if not 0 <= raw <= _RR_MAX_RAW:
        raise ValueError(f"RR interval {ms!r} ms does not fit 16 bits of 1/1024 s (0..63999 ms)")
    return raw


@dataclasses.dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One parsed 0x2A37 notification.

    Attributes:
        bpm: heart rate, beats per minute.
        rr_ms: RR intervals in milliseconds, oldest first (empty when none were sent).
        contact: True/False when the strap reports skin contact, None when it does not.
        energy_kj: cumulative energy expended in kilojoules, or None when absent.
    """

    bpm: int
    rr_ms: tuple[float, ...] = ()
    contact: bool | None = None
    energy_kj: int | None = None


def parse_heart_rate_measurement(data: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """Parse a Heart Rate Measurement (0x2A37) value; raise ``SensorDataError`` if malformed."""
    data = bytes(data)
    n = len(data)
    if n == 0:
        raise SensorDataError("heart-rate measurement is empty: expected at least 2 bytes")
    flags = data[0]
    pos = 1
    if flags & _FLAG_HR16:
        if n < pos + 2:
            raise SensorDataError(
                f"heart-rate measurement truncated: flags 0x{flags:02x} announce a 16-bit heart "
                f"rate but the packet has {n} byte(s) ({data.hex(' ')})"
            )
        (bpm,) = struct.unpack_from("<H", data, pos)
        pos += 2
    else:
        if n < pos + 1:
            raise SensorDataError(
                "heart-rate measurement truncated: no heart-rate byte after the flags "
                f"({data.hex(' ')})"
            )
        bpm = data[pos]
        pos += 1

    contact: bool | None
    if flags & _FLAG_CONTACT_SUPPORTED:
        contact = bool(flags & _FLAG_CONTACT_DETECTED)
    else:
        contact = None

    energy: int | None = None
    if flags & _FLAG_ENERGY:
        if n < pos + 2:
            raise SensorDataError(
                f"heart-rate measurement truncated: flags 0x{flags:02x} announce energy expended "
                f"(2 bytes at offset {pos}) but the packet has {n} byte(s) ({data.hex(' ')})"
            )
        (energy,) = struct.unpack_from("<H", data, pos)
        pos += 2

    rest = n - pos
    rr: tuple[float, ...] = ()
    if flags & _FLAG_RR:
        if rest % 2:
            raise SensorDataError(
                f"heart-rate measurement inconsistent: {rest} byte(s) of RR intervals is not a "
                f"whole number of 2-byte intervals ({data.hex(' ')})"
            )
        rr = tuple(
            rr_raw_to_ms(raw) for (raw,) in struct.iter_unpack("<H", data[pos:])
        )
    elif rest:
        raise SensorDataError(
            f"heart-rate measurement inconsistent: {rest} trailing byte(s) but flags 0x{flags:02x} "
            f"announce no RR intervals ({data.hex(' ')})"
        )
    return HeartRateMeasurement(bpm=bpm, rr_ms=rr, contact=contact, energy_kj=energy)


def encode_heart_rate_measurement(
    bpm: int,
    rr_ms: Sequence[float] = (),
    contact: bool | None = None,
    energy_kj: int | None = None,
) -> bytes:
    """Build a 0x2A37 value as a strap would (8-bit heart rate when it fits).

    ``parse_heart_rate_measurement(encode_heart_rate_measurement(...))`` gives the same values
    back, with RR intervals quantised to 1/1024 s.
    """
    bpm = int(bpm)
    if not 0 <= bpm <= 0xFFFF:
        raise ValueError(f"heart rate {bpm} does not fit 16 bits")
    flags = 0
    body = bytearray()
    if bpm <= 0xFF:
        body.append(bpm)
    else:
        flags |= _FLAG_HR16
        body += struct.pack("<H", bpm)
    if contact is not None:
        flags |= _FLAG_CONTACT_SUPPORTED | (_FLAG_CONTACT_DETECTED if contact else 0)
    if energy_kj is not None:
        if not 0 <= energy_kj <= 0xFFFF:
            raise ValueError(f"energy expended {energy_kj} kJ does not fit 16 bits")
        flags |= _FLAG_ENERGY
        body += struct.pack("<H", int(energy_kj))
    if rr_ms:
        flags |= _FLAG_RR
        for ms in rr_ms:
            body += struct.pack("<H", rr_ms_to_raw(ms))
    return bytes([flags]) + bytes(body)


class BodySensorLocation(enum.IntEnum):
    """Body Sensor Location (0x2A38) values."""

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


def parse_body_sensor_location(data: bytes | bytearray | memoryview) -> BodySensorLocation:
    """Parse a Body Sensor Location (0x2A38) value."""
    data = bytes(data)
    if len(data) != 1:
        raise SensorDataError(
            f"body sensor location must be exactly 1 byte, found {len(data)} ({data.hex(' ')})"
        )
    try:
        return BodySensorLocation(data[0])
    except ValueError:
        raise SensorDataError(
            f"body sensor location {data[0]} is reserved (expected 0..6: other, chest, wrist, "
            "finger, hand, ear lobe, foot)"
        ) from None


def parse_battery_level(data: bytes | bytearray | memoryview) -> int:
    """Parse a Battery Level (0x2A19) value: percent, 0..100."""
    data = bytes(data)
    if len(data) != 1:
        raise SensorDataError(
            f"battery level must be exactly 1 byte, found {len(data)} ({data.hex(' ')})"
        )
    if data[0] > 100:
        raise SensorDataError(f"battery level {data[0]} % is out of range (expected 0..100)")
    return data[0]
