"""Recordings of raw strap traffic: a line-based format, its writer and its reader.

A recording keeps the packets exactly as the strap sent them, with their arrival times, so that
parsing can be re-run later with newer code (``exposure-ctrl hr record``; played back by
:mod:`exposure_ctrl.sensors.replay`). The file is UTF-8 JSON Lines:

- line 1, the header::

      {"format": "exposure-ctrl/hr-recording", "version": 1, "created_utc": "2026-01-01T09:00:00+00:00",
       "source": "ble:C4:7C:8D:6A:12:34", "software": "exposure-ctrl 0.1.0"}

- then one object per line, in arrival order, ``t`` in seconds since the recording started:

  ============================================  ============================================
  ``{"t": 1.012, "char": "2a37", "hex": "163c1104"}``   a notification: 16-bit characteristic
                                                         (2a37 heart rate, 2a19 battery), bytes
  ``{"t": 5.3, "status": "disconnected", "detail": "link lost"}``  link state (connecting,
                                                         connected, disconnected)
  ``{"t": 6.1, "info": {"name": "...", "battery_pct": 87, ...}}``  device information
  ============================================  ============================================

Unknown keys are ignored by readers of the same major ``version``, so later versions can add
fields; a different version is refused with a clear message. No patient data is in a
recording; name files with patient codes only.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from exposure_ctrl.errors import SensorDataError, SensorUnavailable, SensorUnavailableReason
from exposure_ctrl.sensors.source import DeviceInfo, RawNotification, SourceState, SourceStatus

__all__ = [
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "RecordingWriter",
    "RecordedPacket",
    "RecordedStatus",
    "RecordedInfo",
    "RecordLine",
    "read_recording",
]

RECORDING_FORMAT = "exposure-ctrl/hr-recording"
RECORDING_VERSION = 1

_RECORDED_STATES = {SourceState.CONNECTING, SourceState.CONNECTED, SourceState.DISCONNECTED}


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedPacket:
    t: float
    char: str
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedStatus:
    t: float
    state: SourceState
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedInfo:
    t: float
    name: str | None = None
    address: str | None = None
    battery_pct: int | None = None
    body_location: str | None = None


RecordLine = RecordedPacket | RecordedStatus | RecordedInfo


class RecordingWriter:
    """Writes a recording; feed it source events with :meth:`write_event`.

    Times are written relative to the first event (or to ``origin_t`` when given). Use as a
    context manager, or call :meth:`close` (idempotent). Lines are flushed as they are written,
    so an interrupted recording keeps everything up to the interruption.
    """

    def __init__(
        self,
        out: str | Path | TextIO,
        *,
        source: str = "",
        created_utc: str | None = None,
        origin_t: float | None = None,
    ) -> None:
        from exposure_ctrl import __version__
        from exposure_ctrl.clock import utc_now

        if isinstance(out, (str, Path)):
            self._file: TextIO = open(out, "w", encoding="utf-8", newline="\n")
            self._owns = True
        else:
            self._file = out
            self._owns = False
        self.path = Path(out) if isinstance(out, (str, Path)) else None
        self._origin = origin_t
        self.packets = 0
        header = {
            "format": RECORDING_FORMAT,
            "version": RECORDING_VERSION,
            "created_utc": created_utc or utc_now().isoformat(timespec="seconds"),
            "source": source,
            "software": f"exposure-ctrl {__version__}",
        }
        self._write(header)

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._file.flush()

    def _rel(self, t: float) -> float:
        if self._origin is None:
            self._origin = t
        return round(t - self._origin, 6)

    def write_event(self, event: Any) -> bool:
        """Write what a recording keeps (raw packets, link states, device info); True if written."""
        if isinstance(event, RawNotification):
            self._write({"t": self._rel(event.t), "char": event.char, "hex": event.payload.hex()})
            self.packets += 1
            return True
        if isinstance(event, SourceStatus) and event.state in _RECORDED_STATES:
            self._write({"t": self._rel(event.t), "status": event.state.value, "detail": event.detail})
            return True
        if isinstance(event, DeviceInfo):
            info = {
                k: v
                for k, v in (
                    ("name", event.name),
                    ("address", event.address),
                    ("battery_pct", event.battery_pct),
                    ("body_location", event.body_location),
                )
                if v is not None
            }
            self._write({"t": self._rel(event.t), "info": info})
            return True
        return False

    def close(self) -> None:
        if self._owns and not self._file.closed:
            self._file.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_recording(path: str | Path) -> tuple[dict[str, Any], list[RecordLine]]:
    """Read a whole recording: ``(header, lines)``.

    Raises ``SensorUnavailable(reason=FILE)`` if the file cannot be opened and
    ``SensorDataError`` (``file:line: what is wrong``) if its content is malformed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SensorUnavailable(
            f"cannot read the heart-rate recording {str(p)!r}: {e}", SensorUnavailableReason.FILE
        ) from e
    return _parse(io.StringIO(text), str(p))


def _parse(f: TextIO, name: str) -> tuple[dict[str, Any], list[RecordLine]]:
    lines = iter(enumerate(f, start=1))
    header = _header(lines, name)
    out: list[RecordLine] = []
    last_t = float("-inf")
    for no, text in lines:
        if not text.strip():
            continue
        rec = _line(no, text, name)
        if rec.t < last_t:
            raise SensorDataError(f"{name}:{no}: time {rec.t} goes back (previous {last_t})")
        last_t = rec.t
        out.append(rec)
    return header, out


def _header(lines: Iterator[tuple[int, str]], name: str) -> dict[str, Any]:
    for no, text in lines:
        if not text.strip():
            continue
        try:
            header = json.loads(text)
        except json.JSONDecodeError as e:
            raise SensorDataError(f"{name}:{no}: the header is not JSON ({e.msg})") from None
        if not isinstance(header, dict) or header.get("format") != RECORDING_FORMAT:
            raise SensorDataError(
                f"{name}:{no}: not a heart-rate recording (expected a header with "
                f'"format": "{RECORDING_FORMAT}"; make one with `exposure-ctrl hr record`)'
            )
        if header.get("version") != RECORDING_VERSION:
            raise SensorDataError(
                f"{name}:{no}: recording format version {header.get('version')!r} is not "
                f"supported (this software reads version {RECORDING_VERSION})"
            )
        return header
    raise SensorDataError(f"{name}: the recording is empty (no header line)")


def _line(no: int, text: str, name: str) -> RecordLine:
    where = f"{name}:{no}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise SensorDataError(f"{where}: not JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise SensorDataError(f"{where}: expected a JSON object, found {type(obj).__name__}")
    t = obj.get("t")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t != t or t in (float("inf"), float("-inf")):
        raise SensorDataError(f"{where}: 't' must be a finite number of seconds, found {t!r}")
    t = float(t)
    if "char" in obj:
        char, hexes = obj.get("char"), obj.get("hex")
        if not isinstance(char, str) or len(char) != 4:
            raise SensorDataError(f"{where}: 'char' must be 4 hex digits like \"2a37\", found {char!r}")
        if not isinstance(hexes, str):
            raise SensorDataError(f"{where}: 'hex' must be a string of hex digits, found {hexes!r}")
        try:
            payload = bytes.fromhex(hexes)
        except ValueError:
            raise SensorDataError(f"{where}: 'hex' is not hexadecimal: {hexes!r}") from None
        return RecordedPacket(t, char.lower(), payload)
    if "status" in obj:
        try:
            state = SourceState(obj["status"])
        except ValueError:
            raise SensorDataError(
                f"{where}: unknown status {obj['status']!r} (expected connecting, connected or "
                "disconnected)"
            ) from None
        detail = obj.get("detail", "")
        return RecordedStatus(t, state, detail if isinstance(detail, str) else str(detail))
    if "info" in obj:
        info = obj["info"]
        if not isinstance(info, dict):
            raise SensorDataError(f"{where}: 'info' must be an object")
        battery = info.get("battery_pct")
        if battery is not None and (isinstance(battery, bool) or not isinstance(battery, int)):
            raise SensorDataError(f"{where}: 'battery_pct' must be an integer, found {battery!r}")
        return RecordedInfo(
            t,
            name=_opt_str(info.get("name")),
            address=_opt_str(info.get("address")),
            battery_pct=battery,
            body_location=_opt_str(info.get("body_location")),
        )
    raise SensorDataError(f"{where}: expected one of the keys 'char', 'status' or 'info'")


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)
