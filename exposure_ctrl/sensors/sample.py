"""The one heart-rate sample type every source produces (BLE strap, replay, simulated patient)."""

from __future__ import annotations

import dataclasses
import enum
import math

__all__ = ["HeartSample", "Quality"]


class Quality(enum.IntFlag):
    """Why a sample, or part of it, must not be used. ``Quality(0)`` is a clean sample.

    Sources set what they know (e.g. ``NO_CONTACT`` from the strap's contact bits); the artifact
    filter (``exposure_ctrl.arousal``) sets the rest. Flagged data is excluded, never silently used,
    and counted.
    """

    BPM_IMPOSSIBLE = 1  # bpm outside 30..220
    RR_IMPOSSIBLE = 2  # at least one RR interval outside 270..2000 ms (those are dropped)
    RR_ECTOPIC = 4  # at least one RR interval deviates too far from the local median
    NO_CONTACT = 8  # the strap reports no skin contact
    AFTER_GAP = 16  # first sample after the stream was stale (a gap precedes it)
    DEVICE_ERROR = 32  # the source reported a problem with this reading


@dataclasses.dataclass(frozen=True, slots=True)
class HeartSample:
    """One heart-rate reading.

    Attributes:
        t: time of the reading, monotonic seconds on the session's clock (for a BLE strap: when
            the notification arrived; its last RR interval ends at ``t``).
        bpm: heart rate reported by the source, beats per minute.
        rr_ms: RR intervals (ms) carried by this reading, oldest first; empty when the source
            sends none.
        contact: sensor contact as reported: True, False, or None when not reported.
        source: which source produced it (``ble:<address>``, ``replay``, ``sim``…).
        flags: quality flags, see :class:`Quality`.
    """

    t: float
    bpm: float
    rr_ms: tuple[float, ...] = ()
    contact: bool | None = None
    source: str = ""
    flags: Quality = Quality(0)

    def __post_init__(self) -> None:
        if not math.isfinite(self.t):
            raise ValueError(f"HeartSample.t must be finite, found {self.t!r}")
        if not isinstance(self.rr_ms, tuple):
            object.__setattr__(self, "rr_ms", tuple(float(x) for x in self.rr_ms))

    @property
    def clean(self) -> bool:
        """True when no quality flag is set."""
        return not self.flags

    def beat_times(self) -> tuple[float, ...]:
        """Time at which each RR interval ends, back-dated from ``t`` (the last beat is at ``t``)."""
        times = []
        acc = self.t
        for rr in reversed(self.rr_ms):
            times.append(acc)
            acc -= rr / 1000.0
        return tuple(reversed(times))

    def with_flags(self, flags: Quality) -> "HeartSample":
        """A copy with ``flags`` added."""
        return dataclasses.replace(self, flags=self.flags | flags)
