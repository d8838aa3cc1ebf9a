"""Play a recording (``exposure-ctrl hr record``) back as a heart-rate source: ``replay:FILE``.

The recorded packets go through the same decoding as live ones
(:func:`~exposure_ctrl.sensors.source.decode_raw`), so a recording re-run with newer code gives
what that code would have seen live. Recorded link losses come back as
``SourceStatus(DISCONNECTED)`` and hence as :class:`~exposure_ctrl.sensors.source.Gap` events.

Pacing: the source sleeps on its clock for the recorded interval between two lines, divided by
``speed``, and stamps each event with ``clock.now()``. So the recording plays in real time on a
real clock; to play it faster *with consistent times* run the session on a
:class:`~exposure_ctrl.clock.ScaledClock` (or a :class:`~exposure_ctrl.clock.ManualClock`:
instantaneous and deterministic). ``speed`` > 1 on a real clock plays faster but compresses the
timestamps relative to the RR intervals; it is meant for quick looks, not for analysis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from exposure_ctrl.clock import Clock
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.sensors.record import (
    RecordedInfo,
    RecordedPacket,
    RecordedStatus,
    RecordLine,
    read_recording,
)
from exposure_ctrl.sensors.source import DEFAULT_STALE_AFTER_S, BaseHeartRateSource, DeviceInfo

__all__ = ["ReplaySource", "open_replay_source"]


class ReplaySource(BaseHeartRateSource):
    """A recording played back as a source (see the module docstring).

    The file is read and checked in ``async with`` (a missing file raises
    ``SensorUnavailable(reason=FILE)``, a malformed one ``SensorDataError`` with file:line).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        speed: float = 1.0,
        stale_after_s: float | None = DEFAULT_STALE_AFTER_S,
        include_raw: bool = False,
    ) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ConfigError(f"replay speed must be a positive number, found {speed!r}")
        super().__init__("replay", clock=clock, stale_after_s=stale_after_s, include_raw=include_raw)
        self.path = Path(path)
        self.speed = float(speed)
        self.header: dict[str, Any] = {}
        self._lines: list[RecordLine] = []

    async def _open(self) -> None:
        self.header, self._lines = read_recording(self.path)

    async def _run(self) -> None:
        previous: float | None = None
        packets = 0
        for line in self._lines:
            if previous is not None and line.t > previous:
                await self.clock.sleep((line.t - previous) / self.speed)
            previous = line.t
            now = self.clock.now()
            if isinstance(line, RecordedPacket):
                packets += 1
                self._emit_raw(now, line.char, line.payload)
            elif isinstance(line, RecordedStatus):
                self._emit_status(line.state, line.detail, t=now)
            elif isinstance(line, RecordedInfo):
                self._emit_info(
                    DeviceInfo(
                        now,
                        name=line.name,
                        address=line.address,
                        battery_pct=line.battery_pct,
                        body_location=line.body_location,
                        source=self.name,
                    )
                )
        self._emit_end(f"end of recording {self.path.name} ({packets} notifications)")


def open_replay_source(arg: str | None = None, *, clock: Clock, **options: Any) -> ReplaySource:
    """Factory for ``replay:FILE``."""
    if not arg:
        raise ConfigError("the replay source needs a file: --sensor replay:FILE")
    return ReplaySource(arg, clock=clock, **options)

