"""Text for heart-rate events and scans (pure functions), and the loops behind `exposure-ctrl hr`.

``format_*`` functions build strings and never print; :func:`events_for` bounds a source's
iteration by a duration on its clock; :func:`record_source` writes a recording while passing
each event on to a callback (the command line prints them).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from exposure_ctrl.clock import Clock
from exposure_ctrl.sensors.ble import FoundStrap
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sensors.source import (
    DeviceInfo,
    Gap,
    RawNotification,
    SourceEvent,
    SourceStatus,
)

__all__ = [
    "format_event",
    "format_strap_table",
    "events_for",
    "record_source",
]


def _contact(c: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[c]


def format_event(event: SourceEvent, *, t0: float = 0.0, battery_pct: int | None = None) -> str | None:
    """One line for an event (None for raw packets, which are not shown)."""
    if isinstance(event, HeartSample):
        rr = " ".join(f"{x:.1f}" for x in event.rr_ms) if event.rr_ms else "-"
        flags = [f.name.lower() for f in Quality if f in event.flags and f.name]
        parts = [
            f"{event.t - t0:8.1f} s",
            f"HR {event.bpm:5.0f} bpm",
            f"RR {rr} ms",
            f"contact {_contact(event.contact)}",
        ]
        if battery_pct is not None:
            parts.append(f"battery {battery_pct} %")
        if flags:
            parts.append("[" + ", ".join(flags) + "]")
        return "  ".join(parts)
    if isinstance(event, SourceStatus):
        detail = f": {event.detail}" if event.detail else ""
        return f"{event.t - t0:8.1f} s  -- {event.state.value}{detail}"
    if isinstance(event, Gap):
        return (
            f"{event.end - t0:8.1f} s  -- gap of {event.duration_s:.1f} s "
            f"({event.reason}, from {event.start - t0:.1f} s)"
        )
    if isinstance(event, DeviceInfo):
        parts = [p for p in (event.name, event.address) if p]
        if event.body_location:
            parts.append(f"worn on the {event.body_location}")
        if event.battery_pct is not None:
            parts.append(f"battery {event.battery_pct} %")
        return f"{event.t - t0:8.1f} s  -- device: " + ", ".join(parts)
    if isinstance(event, RawNotification):
        return None
    return f"{event!r}"


def format_strap_table(found: Sequence[FoundStrap]) -> str:
    """The `exposure-ctrl devices` table."""
    if not found:
        return "no heart-rate strap found (is it worn? straps advertise only while they sense skin)"
    rows = [("name", "address", "RSSI", "heart rate")]
    for s in found:
        rows.append((s.name or "(no name)", s.address, f"{s.rssi} dBm", "yes" if s.heart_rate else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


async def events_for(
    source: Any, clock: Clock, duration_s: float | None
) -> AsyncIterator[SourceEvent]:
    """Iterate ``source`` (already open) for ``duration_s`` seconds of ``clock`` (None: until it ends)."""
    it = source.__aiter__()
    end = None if duration_s is None else clock.now() + duration_s
    while True:
        if end is None:
            timeout = None
        else:
            remaining = end - clock.now()
            if remaining <= 0:
                return
            timeout = remaining / clock.speed if math.isfinite(clock.speed) else None
        try:
            event = await asyncio.wait_for(it.__anext__(), timeout)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            return
        yield event


async def record_source(
    source: Any,
    out: str | Path | TextIO,
    *,
    clock: Clock,
    duration_s: float | None,
    on_event: Callable[[SourceEvent], None] | None = None,
) -> int:
    """Open ``source`` with raw packets on, write them to ``out``; return the number of packets."""
    from exposure_ctrl.sensors.record import RecordingWriter

    source.include_raw = True
    origin = clock.now()
    async with source:
        with RecordingWriter(out, source=getattr(source, "name", ""), origin_t=origin) as w:
            gen = events_for(source, clock, duration_s)
            try:
                async for event in gen:
                    w.write_event(event)
                    if on_event is not None:
                        on_event(event)
            finally:
                await gen.aclose()
            return w.packets
