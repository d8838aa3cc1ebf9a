"""The reference headset: what a correct PROTOCOL.md v1 client does, over a real DEALER socket.

It is the embedded default headset of the controller (in-process, ``async with``), the
counterpart of every bridge test, and the standalone ``exposure-ctrl headset emulate``.

Behaviour (rule numbers from PROTOCOL.md):

* connects a DEALER and sends ``hello`` first with its ``parameters`` (rule 1);
* on ``welcome`` shows ``state`` at once and adopts the controller's ``heartbeat_s`` and
  ``timeout_s``;
* on ``scene`` starts a transition of ``transition_s`` and, once it is done, shows the state and
  sends ``ack`` (rule 7). A scene that arrives during a transition to another state replaces it
  (the replaced one is never acked: it was never fully shown); a re-sent scene with the same
  state joins the running transition and every seq is acked when it ends; a scene equal to what
  is already shown is acked at once;
* on ``safe`` shows ``safe_state`` at once (it does *not* go safe by itself on a panic press: it
  sends ``event panic`` and the controller answers with ``safe``, rule 8);
* sends ``heartbeat`` whenever it has sent nothing for ``heartbeat_s`` (rule 4);
* when it hears nothing from the controller for ``timeout_s`` it shows ``safe_state`` by itself,
  closes the connection, opens a new one and sends ``hello`` again, and keeps doing so until a
  ``welcome`` arrives (rule 6); on ``error hello_first`` (a restarted controller) it sends
  ``hello`` again;
* on ``end`` it shows ``safe_state`` and stops (``replaced`` or session over); on ``error
  version`` or ``unsupported_parameters`` it stops as refused.

Observation: :attr:`state` (what it shows now, ``None`` before the first welcome),
:attr:`showing_safe`, :attr:`transition`, :attr:`applied` (every state shown, with time, source
and seq), :attr:`received` (every message received, with time), :attr:`status`, :attr:`counters`.

Scripting: :meth:`send_event` (``panic``, ``suds``, ``removed``, ``worn``, ``gaze``),
:meth:`bye`, :meth:`send_raw` (any frames, for fuzzing). Misbehaviour knobs for tests:
``ack_scenes = False`` (stops acking), ``silent = True`` (sends nothing at all), ``deaf = True``
(drops everything received, i.e. a broken controller → headset path).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from unity_bridge.codec import pack, unpack
from unity_bridge.errors import (
    BridgeClosed,
    BridgeConfigError,
    BridgeStateError,
    NotAdmitted,
    ProtocolError,
    UnknownMessageType,
)
from unity_bridge.messages import (
    Ack,
    Bye,
    End,
    Error,
    Event,
    Heartbeat,
    Hello,
    Message,
    Safe,
    Scene,
    StateValue,
    Welcome,
)
from unity_bridge.security import CurveClient

__all__ = [
    "HeadsetEmulator",
    "EmulatorStatus",
    "EmulatorCounters",
    "Applied",
    "Received",
    "Snapshot",
    "run_emulator",
]

log = logging.getLogger(__name__)


class EmulatorStatus(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"  # hello sent, no welcome yet
    ACTIVE = "active"  # welcomed, controller alive
    LOST = "lost"  # controller silent: showing safe_state, reconnecting
    ENDED = "ended"  # end received (session over or replaced)
    REFUSED = "refused"  # error version / unsupported_parameters
    CLOSED = "closed"


_FINAL = (EmulatorStatus.ENDED, EmulatorStatus.REFUSED, EmulatorStatus.CLOSED)


@dataclass(frozen=True)
class Applied:
    """One state the headset started showing: ``source`` is ``welcome``, ``scene``, ``safe``,
    ``fallback`` (controller lost) or ``end``; ``seq`` the controller message's seq."""

    at: float
    state: dict[str, StateValue]
    source: str
    seq: int | None
    reason: str | None = None


@dataclass(frozen=True)
class Received:
    at: float
    message: Message


@dataclass
class EmulatorCounters:
    frames_in: int = 0
    frames_out: int = 0
    malformed: int = 0
    unknown_types: int = 0
    dropped_deaf: int = 0
    dropped_silent: int = 0
    hellos_sent: int = 0
    acks_sent: int = 0
    heartbeats_sent: int = 0
    events_sent: int = 0
    errors_received: int = 0
    fallbacks: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Snapshot:
    """A copy of what the emulator shows and knows, for display."""

    status: str
    client: str
    session: str | None
    scenario: str | None
    state: dict[str, StateValue] | None
    showing_safe: bool
    transition: tuple[dict[str, StateValue], float] | None  # (target, seconds left)
    last_applied: Applied | None
    end_reason: str | None
    last_error: str | None
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class _Transition:
    target: dict[str, StateValue]
    seqs: list[int]
    done_at: float


class HeadsetEmulator:
    """The reference headset (DEALER connect). See the module docstring."""

    def __init__(
        self,
        connect: str,
        *,
        parameters: Sequence[str],
        client: str = "emulator",
        curve: CurveClient | None = None,
        heartbeat_s: float = 1.0,
        timeout_s: float = 3.0,
        now: Callable[[], float] = time.monotonic,
        reconnect: bool = True,
        log_size: int = 100_000,
    ) -> None:
        if "://" not in connect:
            raise BridgeConfigError(f"connect address {connect!r} needs a transport, e.g. tcp://127.0.0.1:5556")
        if not (heartbeat_s > 0 and timeout_s > heartbeat_s):
            raise BridgeConfigError(f"need 0 < heartbeat_s < timeout_s, found {heartbeat_s}, {timeout_s}")
        self.connect = connect
        self.parameters = tuple(parameters)
        self.client = client
        self._curve = curve
        self.heartbeat_s = float(heartbeat_s)
        self.timeout_s = float(timeout_s)
        self._now = now
        self._reconnect = reconnect

        # knobs for tests
        self.ack_scenes = True
        self.silent = False
        self.deaf = False

        self.counters = EmulatorCounters()
        self.applied: deque[Applied] = deque(maxlen=log_size)
        self.received: deque[Received] = deque(maxlen=log_size)
        self.status = EmulatorStatus.NEW
        self.session: str | None = None
        self.scenario: str | None = None
        self.safe_state: dict[str, StateValue] | None = None
        self.end_reason: str | None = None
        self.last_error: Error | None = None
        self.refusal: NotAdmitted | None = None
        self._state: dict[str, StateValue] | None = None
        self._transition: _Transition | None = None
        self._seq = 0
        self._last_sent = 0.0
        self._last_heard = 0.0
        self._hello_at = 0.0
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._welcomed = asyncio.Event()
        self._stopped = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> HeadsetEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.status is not EmulatorStatus.NEW:
            raise BridgeStateError(f"cannot start an emulator that is {self.status.value}")
        self._ctx = zmq.asyncio.Context()
        self._open()
        self.status = EmulatorStatus.CONNECTING
        self._hello(self._now())
        self._task = asyncio.create_task(self._run(), name=f"headset-emulator {self.client}")

    async def close(self) -> None:
        """Stop and release the socket and context. Safe to call twice."""
        if self.status is EmulatorStatus.CLOSED:
            return
        self.status = EmulatorStatus.CLOSED
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # pragma: no cover
                log.exception("emulator loop failed")
        self._close_socket()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self._stopped.set()

    # --- observation -------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, StateValue] | None:
        """The scene shown now (``None`` before the first welcome)."""
        return dict(self._state) if self._state is not None else None

    @property
    def showing_safe(self) -> bool:
        return self._state is not None and self._state == self.safe_state

    @property
    def transition(self) -> tuple[dict[str, StateValue], float] | None:
        """``(target state, done_at)`` of the running transition, if any."""
        t = self._transition
        return (dict(t.target), t.done_at) if t is not None else None

    @property
    def active(self) -> bool:
        return self.status is EmulatorStatus.ACTIVE

    def snapshot(self) -> Snapshot:
        t = self._transition
        return Snapshot(
            status=self.status.value,
            client=self.client,
            session=self.session,
            scenario=self.scenario,
            state=self.state,
            showing_safe=self.showing_safe,
            transition=(dict(t.target), max(0.0, t.done_at - self._now())) if t else None,
            last_applied=self.applied[-1] if self.applied else None,
            end_reason=self.end_reason,
            last_error=f"{self.last_error.code}: {self.last_error.message}" if self.last_error else None,
            counters=self.counters.as_dict(),
        )

    def received_of(self, cls: type[Message]) -> list[Received]:
        """The received messages of one type, oldest first."""
        return [r for r in self.received if isinstance(r.message, cls)]

    async def wait_until(self, predicate: Callable[[HeadsetEmulator], bool], timeout: float) -> None:
        """Wait until ``predicate(self)`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            if loop.time() >= deadline:
                raise TimeoutError(f"emulator condition not met within {timeout} s (status {self.status.value})")
            await asyncio.sleep(0.005)

    async def wait_welcomed(self, timeout: float) -> None:
        await asyncio.wait_for(self._welcomed.wait(), timeout)

    # --- scripting ---------------------------------------------------------------------------

    async def send_event(self, kind: str, value: Any = None) -> int | None:
        """Send ``event``; returns its seq, or ``None`` when not welcomed (nothing sent)."""
        self._check_usable("send an event")
        msg_fields = {"kind": kind, "value": value}
        Event(seq=1, t=0.0, **msg_fields)  # validate before anything is counted or sent
        if self.status is not EmulatorStatus.ACTIVE or self._sock is None:
            log.info("event %s not sent: emulator is %s", kind, self.status.value)
            return None
        seq = self._next_seq()
        frame = pack(Event(seq=seq, t=self._now(), **msg_fields))
        if self.silent:
            self.counters.dropped_silent += 1
            return seq
        await self._sock.send(frame)  # may wait (high-water mark): back-pressure, never loss
        self._last_sent = self._now()
        self.counters.frames_out += 1
        self.counters.events_sent += 1
        return seq

    async def bye(self, reason: str = "quit") -> None:
        """Leave in order: send ``bye`` and stop (status ENDED)."""
        self._check_usable("say bye")
        if self._sock is not None and self.status is EmulatorStatus.ACTIVE:
            self._send(Bye, reason=reason)
        self.end_reason = f"bye: {reason}"
        self.status = EmulatorStatus.ENDED
        self._stopped.set()

    async def send_raw(self, *frames: bytes) -> None:
        """Send arbitrary frames on the current connection (fuzzing, misbehaviour tests)."""
        self._check_usable("send raw frames")
        if self._sock is None:
            raise BridgeStateError("no connection open")
        await self._sock.send_multipart(list(frames))
        self.counters.frames_out += 1

    def _check_usable(self, what: str) -> None:
        if self.status is EmulatorStatus.CLOSED:
            raise BridgeClosed(f"cannot {what}: the emulator is closed")
        if self.status is EmulatorStatus.NEW:
            raise BridgeStateError(f"cannot {what}: start the emulator first (async with)")

    # --- connection --------------------------------------------------------------------------

    def _open(self) -> None:
        assert self._ctx is not None
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.reconnect_ivl = 100
        sock.reconnect_ivl_max = 1000
        if "[" in self.connect:
            sock.ipv6 = True
        if self._curve is not None:
            self._curve.apply(sock)
        sock.connect(self.connect)
        self._sock = sock
        self._seq = 0

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, cls: type[Message], **fields: Any) -> int:
        seq = self._next_seq()
        now = self._now()
        if self.silent:
            self.counters.dropped_silent += 1
            return seq
        assert self._sock is not None
        fut = self._sock.send(pack(cls(seq=seq, t=now, **fields)))
        if fut.done():
            if not fut.cancelled() and fut.exception() is not None:
                log.warning("send of %s failed: %s", cls.TYPE, fut.exception())
        else:
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._last_sent = now
        self.counters.frames_out += 1
        return seq

    def _hello(self, now: float) -> None:
        self._send(Hello, client=self.client, parameters=list(self.parameters))
        self.counters.hellos_sent += 1
        self._hello_at = now
        if self.status is not EmulatorStatus.LOST:
            self.status = EmulatorStatus.CONNECTING

    async def _run(self) -> None:
        while True:
            outcome = await self._serve()
            if outcome in _FINAL or not self._reconnect:
                self._stopped.set()
                return
            # the controller went silent: new connection, hello again (rule 6)
            self._close_socket()
            await asyncio.sleep(0.05)
            self._open()
            self.counters.reconnects += 1
            self._hello(self._now())

    async def _serve(self) -> EmulatorStatus:
        """Run one connection until it is lost (returns LOST) or ends (a final status)."""
        while True:
            tick = max(0.002, min(0.01, self.heartbeat_s / 10))  # heartbeat_s may change on welcome
            sock = self._sock
            assert sock is not None
            t = self._transition
            wait = tick if t is None else max(0.001, min(tick, t.done_at - self._now()))
            sock.rcvtimeo = max(1, int(wait * 1000))
            try:
                frame_list = await sock.recv_multipart()
            except zmq.Again:
                frame_list = None
            now = self._now()
            if frame_list is not None:
                if self.deaf:
                    self.counters.dropped_deaf += 1
                else:
                    self._last_heard = now
                    try:
                        self._on_frames(frame_list, now)
                    except Exception:
                        log.exception("emulator failed on a frame; dropped")
            if self.status in _FINAL:
                return self.status
            if self._tick(now):
                return EmulatorStatus.LOST

    def _on_frames(self, frame_list: list[bytes], now: float) -> None:
        self.counters.frames_in += 1
        if len(frame_list) != 1:
            self.counters.malformed += 1
            log.info("dropped a %d-frame message", len(frame_list))
            return
        try:
            msg = unpack(frame_list[0])
        except UnknownMessageType as e:
            self.counters.unknown_types += 1
            log.info("%s", e)
            return
        except ProtocolError as e:
            self.counters.malformed += 1
            log.info("malformed frame from the controller dropped: %s", e)
            return
        self.received.append(Received(now, msg))
        if isinstance(msg, Welcome):
            self._on_welcome(msg, now)
        elif isinstance(msg, Scene):
            self._on_scene(msg, now)
        elif isinstance(msg, Safe):
            self._transition = None
            if self.safe_state is not None:
                self._show(self.safe_state, "safe", msg.seq, now, msg.reason)
        elif isinstance(msg, Heartbeat):
            pass
        elif isinstance(msg, Error):
            self._on_error(msg, now)
        elif isinstance(msg, End):
            self._transition = None
            self.end_reason = msg.reason
            if self.safe_state is not None:
                self._show(self.safe_state, "end", msg.seq, now, msg.reason)
            self.status = EmulatorStatus.ENDED
            log.info("controller ended the session: %s", msg.reason)
        else:
            self.counters.malformed += 1
            log.info("%r is a headset-to-controller message; dropped", msg.TYPE)

    def _on_welcome(self, msg: Welcome, now: float) -> None:
        self.session, self.scenario = msg.session, msg.scenario
        self.safe_state = dict(msg.safe_state)
        self.heartbeat_s, self.timeout_s = msg.heartbeat_s, msg.timeout_s
        self._transition = None
        self._show(msg.state, "welcome", msg.seq, now)
        self.status = EmulatorStatus.ACTIVE
        self._welcomed.set()

    def _on_scene(self, msg: Scene, now: float) -> None:
        if self.status is not EmulatorStatus.ACTIVE:
            log.info("scene %d before welcome ignored", msg.seq)
            return
        t = self._transition
        if t is not None and t.target == msg.state:
            t.seqs.append(msg.seq)  # a re-send of the scene in progress
            return
        if msg.transition_s <= 0 or (t is None and self._state == msg.state):
            self._transition = None
            self._show(msg.state, "scene", msg.seq, now)
            self._ack([msg.seq])
            return
        self._transition = _Transition(dict(msg.state), [msg.seq], now + msg.transition_s)

    def _on_error(self, msg: Error, now: float) -> None:
        self.counters.errors_received += 1
        self.last_error = msg
        log.info("controller error %s: %s", msg.code, msg.message)
        if msg.code == "hello_first":
            self._hello(now)
        elif msg.code in ("version", "unsupported_parameters"):
            self.refusal = NotAdmitted(f"controller refused this headset: {msg.message}", msg.code)
            self.status = EmulatorStatus.REFUSED

    def _show(self, state: dict[str, StateValue], source: str, seq: int | None, now: float, reason: str | None = None) -> None:
        self._state = dict(state)
        self.applied.append(Applied(now, dict(state), source, seq, reason))

    def _ack(self, seqs: list[int]) -> None:
        if not self.ack_scenes:
            return
        for s in seqs:
            self._send(Ack, ack=s)
            self.counters.acks_sent += 1

    def _tick(self, now: float) -> bool:
        """Timers; returns True when the controller is lost and the connection must be renewed."""
        t = self._transition
        if t is not None and now >= t.done_at:
            self._transition = None
            self._show(t.target, "scene", t.seqs[-1], now)
            self._ack(t.seqs)
        if self.status is EmulatorStatus.ACTIVE:
            if now - self._last_heard >= self.timeout_s:
                self._fallback(now, "controller silent")
                return True
            if now - self._last_sent >= self.heartbeat_s:
                self._send(Heartbeat)
                self.counters.heartbeats_sent += 1
        elif self.status in (EmulatorStatus.CONNECTING, EmulatorStatus.LOST):
            if now - self._hello_at >= self.timeout_s:
                return True  # no welcome: try a fresh connection
        return False

    def _fallback(self, now: float, why: str) -> None:
        self._transition = None
        self.status = EmulatorStatus.LOST
        self.counters.fallbacks += 1
        self._welcomed.clear()
        log.warning("controller lost (%s): showing the safe state", why)
        if self.safe_state is not None:
            self._show(self.safe_state, "fallback", None, now, why)


async def run_emulator(
    connect: str,
    *,
    parameters: Sequence[str],
    client: str = "emulator",
    curve: CurveClient | None = None,
    on_update: Callable[[Snapshot], None] | None = None,
    update_s: float = 0.1,
    stop: asyncio.Event | None = None,
    **kwargs: Any,
) -> Snapshot:
    """Run a headset until the controller ends or refuses it, or ``stop`` is set.

    ``on_update`` receives a :class:`Snapshot` every ``update_s`` seconds (the CLI draws it).
    Returns the last snapshot; raises :class:`NotAdmitted` if the controller refused it.
    """
    stop = stop or asyncio.Event()
    async with HeadsetEmulator(connect, parameters=parameters, client=client, curve=curve, **kwargs) as emu:
        while emu.status not in _FINAL and not stop.is_set():
            if on_update is not None:
                on_update(emu.snapshot())
            try:
                await asyncio.wait_for(stop.wait(), update_s)
            except asyncio.TimeoutError:
                pass
        snap = emu.snapshot()
        if on_update is not None:
            on_update(snap)
        if emu.refusal is not None:
            raise emu.refusal
        if stop.is_set() and emu.active:
            await emu.bye("operator quit")
            await asyncio.sleep(0.05)  # let the bye leave before the socket closes
    return snap

