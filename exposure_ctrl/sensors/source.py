"""The heart-rate source interface, its events, and the registry that picks a source by name.

Every source (a real strap through bleak, the virtual strap, a replayed recording, a simulated
patient) is used the same way::

    from exposure_ctrl.sensors.source import open_source, SourceStatus, Gap, DeviceInfo

    async with open_source("virtual-ble", clock=clock) as source:
        async for event in source:
            match event:
                case HeartSample():      ...  # one reading (bpm, RR intervals, contact, flags)
                case SourceStatus():     ...  # connecting / streaming / stale / disconnected / ended
                case Gap():              ...  # a stretch without samples, reported when it ends
                case DeviceInfo():       ...  # name, address, battery %, body location
                case RawNotification():  ...  # packet bytes, only with include_raw=True

Events come in time order. Iteration ends after ``SourceStatus(state=ENDED)`` (a recording ran
out) or when the source is closed; a live strap never ends by itself, it reconnects.

**What a source promises** (``tests/sensors/test_source_contract.py`` checks it for every
source):

- ``async with`` opens it (a source that cannot be used at all raises
  :class:`~exposure_ctrl.errors.SensorUnavailable` here, with a one-sentence message and a
  ``reason``) and closes it; ``aclose()`` may be called any number of times.
- Samples' ``t`` never decreases and comes from the injected :class:`~exposure_ctrl.clock.Clock`.
- When no sample has arrived for ``stale_after_s`` clock seconds the source yields
  ``SourceStatus(STALE)``: the controller is blind and must not escalate (DESIGN.md invariant 2).
  With a clock whose ``speed`` is infinite (:class:`~exposure_ctrl.clock.ManualClock`) nothing
  can wait in real time, so staleness is detected when the next sample arrives.
- After a stale stretch or a lost connection, the first sample is preceded by a :class:`Gap`
  (``start`` = time of the last sample before, ``end`` = time of this sample) and carries
  ``Quality.AFTER_GAP``.

**Writing a source.** Subclass :class:`BaseHeartRateSource` (it owns the queue, the staleness
check, gap accounting and the lifecycle) and implement ``_run()``: a coroutine that produces by
calling ``self._emit_sample()`` (a ready :class:`HeartSample`) or ``self._emit_raw(t, "2a37",
payload)`` (packet bytes, decoded by the consumer with :func:`decode_raw`: what a notification
callback does), ``self._emit_status()`` (``DISCONNECTED`` opens a gap), ``self._emit_info()``
and, when the stream is over, ``self._emit_end()``. Optionally override ``_open()`` (runs
inside ``__aenter__``, may raise ``SensorUnavailable``) and ``_close()``. Everything goes
through one queue, so events keep their order. Staleness is checked while the consumer waits
for the next event (``async for``), which the session always does. Any object with the same
surface (:class:`HeartRateSource` is a ``Protocol``) works too.

``include_raw=True`` (a constructor argument, or the attribute before opening) also yields each
:class:`RawNotification` before what it decodes to; ``exposure-ctrl hr record`` uses it.

**Choosing a source by name** (like python-can's interfaces)::

    open_source("ble")                    # the first heart-rate strap found
    open_source("ble:C4:7C:8D:6A:12:34")  # by address (or ble:NAME, matched on the advertised name)
    open_source("virtual-ble")            # the virtual strap (bumble), through the real bleak API
    open_source("replay:P001.jsonl")      # a recording made with `exposure-ctrl hr record`
    open_source("virtual-ble", stream=patient_beats, dropouts=(10, 150))  # see virtual_strap

``name:argument`` is split at the first colon; keyword options go to the factory. A factory is
``factory(arg: str | None, *, clock: Clock, **options) -> HeartRateSource``. To add a source,
call :func:`register_source` with the factory, or with a ``"package.module:callable"`` string so
that nothing is imported until the source is chosen (that is how the built-in ones, and
``sim``, are registered below; a string is a name, not an import, so the layering holds).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import difflib
import enum
import importlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Union, runtime_checkable

from exposure_ctrl.clock import Clock, MonotonicClock
from exposure_ctrl.errors import ConfigError, SensorDataError, SensorError
from exposure_ctrl.sensors.hrm import parse_battery_level, parse_heart_rate_measurement
from exposure_ctrl.sensors.sample import HeartSample, Quality

__all__ = [
    "SourceState",
    "SourceStatus",
    "Gap",
    "DeviceInfo",
    "RawNotification",
    "SourceEvent",
    "HeartRateSource",
    "BaseHeartRateSource",
    "SourceFactory",
    "register_source",
    "open_source",
    "available_sources",
    "parse_source_spec",
    "decode_raw",
    "DEFAULT_STALE_AFTER_S",
]

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER_S = 5.0
"""No sample for this many seconds means the controller is blind (a strap sends ~1/s)."""


class SourceState(str, enum.Enum):
    """Where a source is in its life; carried by :class:`SourceStatus`."""

    CONNECTING = "connecting"  # looking for the strap / opening the file
    CONNECTED = "connected"  # link up (device info follows), notifications being switched on
    STREAMING = "streaming"  # samples flow (sent before the first sample, and after each gap)
    STALE = "stale"  # no sample for stale_after_s: blind
    DISCONNECTED = "disconnected"  # link lost; a live source reconnects by itself
    ENDED = "ended"  # no more samples will come (a recording ran out); iteration stops


@dataclasses.dataclass(frozen=True, slots=True)
class SourceStatus:
    """A change of state. ``detail`` says why, in words (for the log and the console)."""

    t: float
    state: SourceState
    detail: str = ""
    source: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Gap:
    """A stretch without samples, reported when it is over.

    ``start`` is the time of the last sample before the gap, ``end`` the time of the first
    sample after it; ``reason`` is what opened it (``"disconnected"`` or ``"stale"``).
    """

    start: float
    end: float
    reason: str
    source: str = ""

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclasses.dataclass(frozen=True, slots=True)
class RawNotification:
    """A packet exactly as the device sent it, before parsing (only when ``include_raw``).

    ``char`` is the 16-bit characteristic as 4 hex digits (``"2a37"`` heart rate measurement,
    ``"2a19"`` battery level). ``exposure-ctrl hr record`` writes these so that parsing can be
    re-run later.
    """

    t: float
    char: str
    payload: bytes
    source: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the source knows about the device; sent after (re)connecting and when it changes."""

    t: float
    name: str | None = None
    address: str | None = None
    battery_pct: int | None = None
    body_location: str | None = None  # "chest", "wrist", ... (Body Sensor Location 0x2A38)
    source: str = ""


SourceEvent = Union[HeartSample, SourceStatus, Gap, DeviceInfo, RawNotification]


@runtime_checkable
class HeartRateSource(Protocol):
    """What the session consumes: an async context manager that iterates over events."""

    name: str

    async def __aenter__(self) -> "HeartRateSource": ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> AsyncIterator[SourceEvent]: ...

    async def aclose(self) -> None: ...


class _Life(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True, slots=True)
class _Interrupted:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_END = object()


class BaseHeartRateSource:
    """Shared machinery of a source: lifecycle, event queue, staleness, gaps.

    Subclasses implement ``_run()`` and produce with the ``_emit_*`` methods (callable from
    any coroutine or plain callback running on the event loop). The producer never blocks:
    the queue is unbounded, and the consumer (``async for``) does the accounting.

    Args:
        name: the source's name, copied into every sample's and event's ``source``.
        clock: the session's clock; every ``t`` comes from it.
        stale_after_s: clock seconds without a sample before ``STALE`` is reported; ``None``
            disables the check.
        include_raw: also yield each :class:`RawNotification` (before what it decodes to).
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock | None = None,
        stale_after_s: float | None = DEFAULT_STALE_AFTER_S,
        include_raw: bool = False,
    ) -> None:
        if stale_after_s is not None and not (stale_after_s > 0 and math.isfinite(stale_after_s)):
            raise ConfigError(
                f"stale_after_s must be a positive number of seconds or None, found {stale_after_s!r}"
            )
        self.name = name
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.stale_after_s = stale_after_s
        self.include_raw = include_raw
        self._life = _Life.NEW
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._ready: collections.deque[SourceEvent] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._last_sample_t: float | None = None
        self._opened_t: float | None = None
        self._gap_reason: str | None = None  # set while a gap is open
        self._stale = False
        self._ended = False
        self.counts: collections.Counter[str] = collections.Counter()

    # --- for subclasses ---------------------------------------------------------------------

    async def _open(self) -> None:
        """Prepare (connect, open a file). May raise ``SensorUnavailable``."""

    async def _run(self) -> None:
        """Produce events until the stream ends or the task is cancelled."""
        raise NotImplementedError

    async def _close(self) -> None:
        """Release what ``_open``/``_run`` acquired. Called once, after ``_run`` stopped."""

    def _emit_sample(self, sample: HeartSample) -> None:
        self._queue.put_nowait(sample)

    def _emit_raw(self, t: float, char: str, payload: bytes) -> None:
        """Enqueue an undecoded packet; the consumer decodes it with :meth:`_decode`.

        This is all a notification callback should do: stamp the arrival time and enqueue.
        """
        self._queue.put_nowait(RawNotification(t, char, bytes(payload), self.name))

    def _decode(self, raw: RawNotification) -> Sequence[SourceEvent]:
        """Turn a raw packet into events (a sample, device info); may raise SensorDataError.

        The default understands 0x2A37 (heart rate measurement) and 0x2A19 (battery level).
        """
        return decode_raw(raw)

    def _emit_status(self, state: SourceState, detail: str = "", *, t: float | None = None) -> None:
        if state is SourceState.ENDED:
            self._emit_end(detail, t=t)
            return
        self._queue.put_nowait(
            SourceStatus(self.clock.now() if t is None else t, state, detail, self.name)
        )
        if state is SourceState.DISCONNECTED:
            self._queue.put_nowait(_Interrupted("disconnected"))

    def _emit_info(self, info: DeviceInfo) -> None:
        self._queue.put_nowait(info)

    def _emit_end(self, detail: str = "", *, t: float | None = None) -> None:
        self._queue.put_nowait(
            SourceStatus(self.clock.now() if t is None else t, SourceState.ENDED, detail, self.name)
        )
        self._queue.put_nowait(_END)

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> "BaseHeartRateSource":
        if self._life is not _Life.NEW:
            raise SensorError(
                f"source {self.name!r} is {self._life.value}; a source can be opened only once "
                "(make a new one with open_source)"
            )
        self._life = _Life.OPEN
        self._opened_t = self.clock.now()
        try:
            await self._open()
        except BaseException:
            self._life = _Life.CLOSED
            await self._close()
            raise
        self._task = asyncio.create_task(self._guarded_run(), name=f"heart-rate source {self.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop producing and release everything. Safe to call twice."""
        if self._life is _Life.CLOSED:
            return
        was_open = self._life is _Life.OPEN
        self._life = _Life.CLOSED
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # gather(return_exceptions=True) absorbs the task's own CancelledError but not ours
            await asyncio.gather(task, return_exceptions=True)
        if was_open:
            await self._close()

    async def _guarded_run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # handed to the consumer, raised from __anext__
            log.debug("source %s failed", self.name, exc_info=True)
            self._queue.put_nowait(_Failed(e))

    @property
    def closed(self) -> bool:
        return self._life is _Life.CLOSED

    # --- consumer side ----------------------------------------------------------------------

    def __aiter__(self) -> "BaseHeartRateSource":
        return self

    async def __anext__(self) -> SourceEvent:
        while True:
            if self._ready:
                return self._ready.popleft()
            if self._ended or self._life is _Life.CLOSED:
                raise StopAsyncIteration
            if self._life is _Life.NEW:
                raise SensorError(
                    f"source {self.name!r} is not open; use `async with source:` before iterating"
                )
            item = await self._next_item()
            self._account(item)

    async def _next_item(self) -> Any:
        timeout = self._stale_timeout_real_s()
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None  # the staleness deadline passed with nothing to read

    def _stale_timeout_real_s(self) -> float | None:
        """Real seconds until the stream counts as stale, or None when there is nothing to wait for."""
        if self.stale_after_s is None or self._stale or not math.isfinite(self.clock.speed):
            return None
        ref = self._last_sample_t if self._last_sample_t is not None else self._opened_t
        if ref is None:
            return None
        remaining = ref + self.stale_after_s - self.clock.now()
        return max(0.0, remaining) / self.clock.speed

    def _account(self, item: Any) -> None:
        """Turn one queued item (or a staleness timeout, ``None``) into ready events."""
        if item is None:
            self._go_stale(self.clock.now())
        elif isinstance(item, HeartSample):
            self._account_sample(item)
        elif isinstance(item, RawNotification):
            if self.include_raw:
                self._ready.append(item)
            try:
                decoded = self._decode(item)
            except SensorDataError as e:
                self.counts["malformed"] += 1
                log.warning("source %s: dropped a malformed packet: %s", self.name, e)
                return
            for ev in decoded:
                self._account(ev)
        elif isinstance(item, _Interrupted):
            if self._last_sample_t is not None and self._gap_reason is None:
                self._gap_reason = item.reason
        elif isinstance(item, _Failed):
            self._ended = True
            raise item.error
        elif item is _END:
            self._ended = True
        else:
            if isinstance(item, SourceStatus):
                self.counts[item.state.value] += 1
            self._ready.append(item)

    def _go_stale(self, t: float) -> None:
        if self._stale:
            return
        self._stale = True
        self.counts["stale"] += 1
        if self._last_sample_t is not None and self._gap_reason is None:
            self._gap_reason = "stale"
        since = self._last_sample_t if self._last_sample_t is not None else self._opened_t
        waited = t - since if since is not None else float("nan")
        self._ready.append(
            SourceStatus(
                t,
                SourceState.STALE,
                f"no heart-rate sample for {waited:.1f} s (limit {self.stale_after_s:g} s)",
                self.name,
            )
        )

    def _account_sample(self, s: HeartSample) -> None:
        last = self._last_sample_t
        if last is not None and s.t < last:
            # a source must not go back in time; clamp rather than break the features
            log.warning("source %s: sample at %.3f before previous %.3f; clamped", self.name, s.t, last)
            s = dataclasses.replace(s, t=last)
        if (
            not math.isfinite(self.clock.speed)
            and self.stale_after_s is not None
            and last is not None
            and s.t - last > self.stale_after_s
        ):
            # no real-time wait is possible on a manual clock: detect staleness afterwards
            self._go_stale(last + self.stale_after_s)
        resumed = self._stale or self._gap_reason is not None or last is None
        if self._gap_reason is not None and last is not None:
            self._ready.append(Gap(last, s.t, self._gap_reason, self.name))
            self.counts["gaps"] += 1
            s = s.with_flags(Quality.AFTER_GAP)
        self._gap_reason = None
        self._stale = False
        if resumed:
            detail = "first sample" if last is None else "samples again"
            self._ready.append(SourceStatus(s.t, SourceState.STREAMING, detail, self.name))
        if not s.source:
            s = dataclasses.replace(s, source=self.name)
        self._last_sample_t = s.t
        self.counts["samples"] += 1
        self._ready.append(s)


def decode_raw(raw: RawNotification) -> list[SourceEvent]:
    """Decode a raw packet of a standard heart-rate strap (0x2A37, 0x2A19); others are ignored.

    A 0x2A37 packet becomes a :class:`HeartSample` at ``raw.t`` (its last RR interval ends at
    ``t``), flagged ``NO_CONTACT`` when the strap says it has no skin contact.
    """
    if raw.char == "2a37":
        m = parse_heart_rate_measurement(raw.payload)
        flags = Quality.NO_CONTACT if m.contact is False else Quality(0)
        return [HeartSample(raw.t, m.bpm, m.rr_ms, m.contact, raw.source, flags)]
    if raw.char == "2a19":
        return [DeviceInfo(raw.t, battery_pct=parse_battery_level(raw.payload), source=raw.source)]
    return []


# --- registry ------------------------------------------------------------------------------

SourceFactory = Callable[..., HeartRateSource]
"""``factory(arg: str | None, *, clock: Clock, **options) -> HeartRateSource``."""


@dataclasses.dataclass
class _Entry:
    target: SourceFactory | str
    help: str


_REGISTRY: dict[str, _Entry] = {}


def register_source(name: str, factory: SourceFactory | str, *, help: str = "") -> None:
    """Make a source selectable by ``name`` (a factory, or a lazy ``"module:callable"`` string)."""
    if not name or ":" in name:
        raise ValueError(f"a source name must be non-empty and contain no ':', found {name!r}")
    _REGISTRY[name] = _Entry(factory, help)


def available_sources() -> dict[str, str]:
    """Registered source names and their one-line help."""
    return {name: e.help for name, e in sorted(_REGISTRY.items())}


def parse_source_spec(spec: str) -> tuple[str, str | None]:
    """``"replay:FILE"`` -> ``("replay", "FILE")``; ``"ble"`` -> ``("ble", None)``."""
    name, sep, arg = spec.partition(":")
    name = name.strip()
    if name not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown heart-rate source {name!r} (from {spec!r}); expected one of "
            f"{', '.join(known)}, optionally with ':argument' (e.g. replay:FILE).{hint}"
        )
    return name, (arg if sep and arg != "" else None)


def _resolve(entry: _Entry) -> SourceFactory:
    target = entry.target
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    entry.target = factory
    return factory


def open_source(spec: str, *, clock: Clock | None = None, **options: Any) -> HeartRateSource:
    """Build the source named by ``spec`` (not yet opened: use ``async with``)."""
    name, arg = parse_source_spec(spec)
    factory = _resolve(_REGISTRY[name])
    return factory(arg, clock=clock if clock is not None else MonotonicClock(), **options)


register_source(
    "ble",
    "exposure_ctrl.sensors.ble:open_ble_source",
    help="a heart-rate strap through bleak: ble (first found), ble:ADDRESS or ble:NAME",
)
register_source(
    "virtual-ble",
    "exposure_ctrl.sensors.virtual_strap:open_virtual_ble_source",
    help="the virtual strap (bumble, no radio) reached through the real bleak API",
)
register_source(
    "replay",
    "exposure_ctrl.sensors.replay:open_replay_source",
    help="replay:FILE plays a recording made with `exposure-ctrl hr record` (speed=... for faster)",
)
register_source(
    "sim",
    "exposure_ctrl.sim.strap:open_sim_source",
    help="a simulated patient wearing a simulated strap (scenario=..., seed=..., cohort=...)",
)
