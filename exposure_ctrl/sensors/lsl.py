"""Lab Streaming Layer output (optional: ``pip install 'exposure-ctrl[lsl]'``).

Labs record the session alongside EEG, EDA or eye tracking with LabRecorder. Two streams:

- **heart** (type ``HeartRate``, 2 float32 channels ``bpm`` and ``rr_ms``, irregular rate):
  one sample per beat, time-stamped at the beat (:meth:`HeartSample.beat_times`), carrying the
  strap's heart rate and that beat's RR interval; a reading without RR intervals gives one
  sample at its time with ``rr_ms`` NaN. Samples flagged by the source (e.g. no skin contact)
  are still sent: the flags are in the marker stream, and analysis decides.
- **markers** (type ``Markers``, 1 string channel, irregular): controller events such as
  scene changes (``push_marker("scene: spider.distance 2 m -> 1 m (policy)")`` or a dict,
  sent as JSON), plus the sensor's own status changes and gaps (``sensor: stale ...``).

Time stamps: LSL uses its ``local_clock()`` (a monotonic clock; on Linux the same as
:class:`~exposure_ctrl.clock.MonotonicClock`). The outlet measures the offset between the
session clock and ``local_clock()`` once, when created, and adds it to every time, so a live
session lines up with the other devices. Simulated sessions (scaled clocks) are shifted the same
way but run at their own speed; LSL is meant for live sessions.

Network: liblsl announces streams by multicast on the local network. To keep it on one machine,
point ``LSLAPICFG`` at a configuration file with ``[multicast] ResolveScope = machine`` and
``ListenAddress = 127.0.0.1`` (see docs/sensors.md); :func:`loopback_config` writes one.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from exposure_ctrl.clock import Clock, MonotonicClock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.sensors.source import Gap, SourceStatus

__all__ = ["LslOutlet", "loopback_config", "HEART_STREAM_TYPE", "MARKER_STREAM_TYPE"]

log = logging.getLogger(__name__)

HEART_STREAM_TYPE = "HeartRate"
MARKER_STREAM_TYPE = "Markers"


def _pylsl() -> Any:
    try:
        import pylsl
    except ImportError as e:  # pragma: no cover - pylsl is installed in development
        raise ConfigError(
            "Lab Streaming Layer output needs pylsl: pip install 'exposure-ctrl[lsl]'"
        ) from e
    return pylsl


def loopback_config(
    path: str | Path,
    *,
    base_port: int = 16572,
    multicast_port: int = 16571,
    session_id: str = "default",
    log_level: int = -2,
) -> Path:
    """Write an ``lsl_api.cfg`` that keeps LSL on this machine (for ``LSLAPICFG``)."""
    p = Path(path)
    p.write_text(
        "[ports]\n"
        f"MulticastPort = {multicast_port}\n"
        f"BasePort = {base_port}\n"
        "PortRange = 16\n"
        "IPv6 = disable\n"
        "\n[multicast]\n"
        "ResolveScope = machine\n"
        "ListenAddress = 127.0.0.1\n"
        "\n[lab]\n"
        f"SessionID = {session_id}\n"
        "\n[log]\n"
        f"level = {log_level}\n",
        encoding="utf-8",
    )
    return p


class LslOutlet:
    """The heart and marker outlets of one session (see the module docstring).

    Args:
        clock: the session clock (times of samples and markers are on it).
        name: stream name prefix; the streams are ``"<name> heart"`` and ``"<name> markers"``.
        source_id: a stable id so LabRecorder can reconnect after a restart (use the session id).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        name: str = "exposure-ctrl",
        source_id: str = "exposure-ctrl",
    ) -> None:
        pylsl = _pylsl()
        self._pylsl = pylsl
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.offset_s = pylsl.local_clock() - self.clock.now()
        heart = pylsl.StreamInfo(
            f"{name} heart", HEART_STREAM_TYPE, 2, pylsl.IRREGULAR_RATE, pylsl.cf_float32,
            f"{source_id}-heart",
        )
        channels = heart.desc().append_child("channels")
        for label, unit in (("bpm", "beats per minute"), ("rr_ms", "milliseconds")):
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
        heart.desc().append_child_value("manufacturer", "exposure-ctrl")
        markers = pylsl.StreamInfo(
            f"{name} markers", MARKER_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
            f"{source_id}-markers",
        )
        self._heart: Any = pylsl.StreamOutlet(heart)
        self._markers: Any = pylsl.StreamOutlet(markers)
        self.beats_sent = 0
        self.markers_sent = 0

    def lsl_time(self, t: float) -> float:
        """Session-clock seconds -> LSL ``local_clock()`` seconds."""
        return t + self.offset_s

    def push_sample(self, sample: HeartSample) -> int:
        """Send one heart-rate reading; returns the number of LSL samples (beats) sent."""
        if self._heart is None:
            raise ConfigError("this LSL outlet is closed")
        bpm = float(sample.bpm)
        if sample.rr_ms:
            for t, rr in zip(sample.beat_times(), sample.rr_ms):
                self._heart.push_sample([bpm, float(rr)], self.lsl_time(t))
            n = len(sample.rr_ms)
        else:
            self._heart.push_sample([bpm, math.nan], self.lsl_time(sample.t))
            n = 1
        if sample.flags:
            flags = ",".join(f.name.lower() for f in type(sample.flags) if f in sample.flags and f.name)
            self.push_marker(f"sensor: flags {flags}", t=sample.t)
        self.beats_sent += n
        return n

    def push_marker(self, marker: str | dict[str, Any], *, t: float | None = None) -> None:
        """Send a marker (a string, or a dict sent as JSON) at ``t`` (default: now)."""
        if self._markers is None:
            raise ConfigError("this LSL outlet is closed")
        text = marker if isinstance(marker, str) else json.dumps(marker, separators=(",", ":"))
        self._markers.push_sample([text], self.lsl_time(self.clock.now() if t is None else t))
        self.markers_sent += 1

    def push_event(self, event: Any) -> None:
        """Send any source event: samples to the heart stream, status changes and gaps as markers."""
        if isinstance(event, HeartSample):
            self.push_sample(event)
        elif isinstance(event, SourceStatus):
            detail = f" ({event.detail})" if event.detail else ""
            self.push_marker(f"sensor: {event.state.value}{detail}", t=event.t)
        elif isinstance(event, Gap):
            self.push_marker(
                f"sensor: gap {event.duration_s:.1f} s ({event.reason}) from {self.lsl_time(event.start):.3f}",
                t=event.end,
            )

    def close(self) -> None:
        """Destroy the outlets (LabRecorder sees the streams end). Safe to call twice."""
        self._heart = None
        self._markers = None

    def __enter__(self) -> "LslOutlet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
