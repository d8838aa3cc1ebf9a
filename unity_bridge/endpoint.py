"""The controller's end of the bridge: one asyncio ROUTER socket speaking PROTOCOL.md v1.

Use it as an async context manager; it owns its ZeroMQ context, socket and (with CURVE) its ZAP
authenticator, and closes all of them on exit::

    endpoint = ControllerEndpoint(
        "tcp://127.0.0.1:5556",
        session_id="S-0042", scenario_id="spider",
        parameters=["jar", "distance_m", ...],
        initial_state=scenario.start, safe_state=scenario.safe_state,
    )
    async with endpoint:
        await endpoint.wait_connected(timeout=30)
        seq = await endpoint.send_scene(new_state, transition_s=2.0)
        async for ev in endpoint.events():
            match ev:
                case Panic(): ...          # safe was already sent by the endpoint (rule 8)
                case SceneAcked(): ...     # store: ev.sent_at, ev.acked_at, ev.rtt_s
                case HeadsetLost(): ...    # pause the policy (rule 5)

What the endpoint does by itself, so that the session does not have to:

* **Handshake** (rules 1-3): answers ``hello`` with ``welcome`` carrying the *current* state;
  refuses peers that skip ``hello`` (``error hello_first``), speak another version
  (``error version``) or cannot render every parameter (``error unsupported_parameters``).
  The newest admitted ``hello`` wins; the previous peer gets ``end replaced``.
* **Heartbeats** (rule 4): sends ``heartbeat`` whenever nothing was sent to the headset for
  ``heartbeat_s``; declares the headset lost after ``timeout_s`` of silence and keeps the
  current state for the next ``welcome`` (rule 5).
* **Scenes** (rule 7): :meth:`send_scene` sends the full state and tracks the ack; an unacked
  scene is re-sent (same state, new seq) ``timeout_s`` after its transition should have ended
  (``sent_at + transition_s + timeout_s``). Only the newest scene is re-sent; an older one it
  superseded still yields :class:`SceneAcked` if its ack arrives.
* **Panic** (rule 8): on ``event panic`` it sends ``safe`` immediately, from the receive path,
  *then* delivers :class:`~unity_bridge.events.Panic` (whose ``reaction_s`` is the delay).
* **Bad input** (rule 9): drops and counts every bad frame, answering ``error malformed`` at most
  once per second per peer; nothing a peer sends can stop the endpoint.

Without a headset, :meth:`send_scene` and :meth:`send_safe` still update the current state and
return ``None``: the next ``welcome`` carries it. After :meth:`end`, further ``hello``\\ s are
answered with ``end`` and the same reason. :meth:`close` is safe to call twice; if a headset is
still admitted it is sent ``end`` ``closed`` first so that it shows its safe state at once.

``curve`` is a :class:`~unity_bridge.security.CurveServer` or the directory written by
``exposure-ctrl keys generate``; without it the endpoint refuses to listen beyond loopback unless
``insecure=True`` (:func:`~unity_bridge.security.check_bind`).

The clock ``now`` (default ``time.monotonic``) stamps messages (``t``), events (``at``) and
round-trip times; waits use the event loop's timers. Counters are in :attr:`counters`; scene
round-trip figures in :attr:`rtt`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import statistics
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from unity_bridge import events as ev
from unity_bridge.codec import pack, unpack
from unity_bridge.errors import (
    BridgeClosed,
    BridgeConfigError,
    BridgeStateError,
    ProtocolError,
    UnknownMessageType,
    VersionMismatch,
)
from unity_bridge.messages import (
    MAX_FRAME_BYTES,
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
    check_state,
)
from unity_bridge.security import CurveServer, check_bind

__all__ = ["ControllerEndpoint", "EndpointState", "Counters", "RttStats", "TRANSPORT_MAX_BYTES"]

log = logging.getLogger(__name__)

#: libzmq drops a connection whose frame exceeds this (ZMQ_MAXMSGSIZE), before the application
#: sees it: a memory guard. Frames between MAX_FRAME_BYTES and this are received, dropped,
#: counted and answered with ``error malformed`` as rule 9 says.
TRANSPORT_MAX_BYTES = 1 << 20

_MEMORY = 4096  # peers remembered for seq numbers and error rate limits
_SCENES_REMEMBERED = 256  # sent scenes whose late acks are still matched


class EndpointState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class Counters:
    """What the endpoint counted since it started (for logs, the store and the console)."""

    frames_in: int = 0
    frames_out: int = 0
    hellos: int = 0  # valid hello messages (admitted or not)
    messages_in: int = 0  # valid non-hello messages from the admitted headset
    malformed: int = 0  # rule 9: dropped bad frames
    errors_sent: int = 0
    errors_suppressed: int = 0  # ``error malformed`` withheld by the once-per-second limit
    hello_first: int = 0
    version: int = 0
    unsupported: int = 0
    unknown_types: int = 0
    unknown_events: int = 0
    unknown_acks: int = 0
    admitted: int = 0
    replaced: int = 0
    losses: int = 0  # headset declared lost after timeout_s of silence
    byes: int = 0
    scenes: int = 0
    resends: int = 0
    acks: int = 0
    safes: int = 0
    panics: int = 0
    heartbeats_sent: int = 0
    rejected_keys: int = 0  # CURVE handshakes refused by the allow-list

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RttStats:
    """Scene → ack delays beyond the transition (``rtt_s - transition_s``), last ``window``."""

    def __init__(self, window: int = 10_000) -> None:
        self._d: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, overhead_s: float) -> None:
        self._d.append(overhead_s)
        self.count += 1

    def values(self) -> list[float]:
        return list(self._d)

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile (``q`` in 0..1) of the window; NaN when empty."""
        if not self._d:
            return math.nan
        xs = sorted(self._d)
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]

    @property
    def last_s(self) -> float:
        return self._d[-1] if self._d else math.nan

    def summary(self) -> dict[str, float]:
        xs = self._d
        return {
            "count": float(self.count),
            "last_s": self.last_s,
            "mean_s": statistics.fmean(xs) if xs else math.nan,
            "p50_s": self.quantile(0.50),
            "p99_s": self.quantile(0.99),
            "max_s": max(xs) if xs else math.nan,
        }


@dataclass
class _Peer:
    ident: bytes
    client: str
    parameters: tuple[str, ...]
    key: str | None
    last_heard: float
    last_sent: float

    @property
    def hex(self) -> str:
        return self.ident.hex()


@dataclass
class _SentScene:
    scene_seq: int
    ident: bytes
    state: dict[str, StateValue]
    transition_s: float
    due: float
    wire: dict[int, float] = field(default_factory=dict)  # wire seq -> sent_at
    acked: bool = False
    resends: int = 0


class _Closed:
    """Sentinel that ends :meth:`ControllerEndpoint.events`."""


_CLOSED = _Closed()


def _check_full_state(
    what: str, state: Mapping[str, Any], parameters: Sequence[str], error: type[Exception]
) -> dict[str, StateValue]:
    try:
        s = check_state(what, state)
    except ProtocolError as e:
        raise error(str(e)) from None
    missing = [p for p in parameters if p not in s]
    extra = [k for k in s if k not in parameters]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unknown {', '.join(extra)}")
        raise error(
            f"{what} must give every scenario parameter exactly once ({'; '.join(parts)}); "
            f"expected {', '.join(parameters)}"
        )
    return s


class ControllerEndpoint:
    """The controller side of PROTOCOL.md v1 (ROUTER bind). See the module docstring."""

    def __init__(
        self,
        bind: str = "tcp://127.0.0.1:5556",
        *,
        session_id: str,
        scenario_id: str,
        parameters: Sequence[str],
        initial_state: Mapping[str, StateValue],
        safe_state: Mapping[str, StateValue],
        heartbeat_s: float = 1.0,
        timeout_s: float = 3.0,
        curve: CurveServer | str | os.PathLike[str] | None = None,
        insecure: bool = False,
        now: Callable[[], float] = time.monotonic,
        error_interval_s: float = 1.0,
    ) -> None:
        params = tuple(parameters)
        if not params or not all(isinstance(p, str) and p for p in params):
            raise BridgeConfigError(f"parameters must be non-empty strings, found {params!r}")
        if len(set(params)) != len(params):
            raise BridgeConfigError(f"parameters must be unique, found {params!r}")
        if not (math.isfinite(heartbeat_s) and heartbeat_s > 0):
            raise BridgeConfigError(f"heartbeat_s must be > 0, found {heartbeat_s}")
        if not (math.isfinite(timeout_s) and timeout_s > heartbeat_s):
            raise BridgeConfigError(
                f"timeout_s must exceed heartbeat_s ({heartbeat_s}), found {timeout_s}"
            )
        if isinstance(curve, (str, os.PathLike)):
            curve = CurveServer.from_dir(curve)  # a directory made by `exposure-ctrl keys generate`
        check_bind(bind, curve=curve, insecure=insecure)
        self._bind = bind
        self.session_id = str(session_id)
        self.scenario_id = str(scenario_id)
        self.parameters = params
        self._initial = _check_full_state("initial_state", initial_state, params, BridgeConfigError)
        self._safe = _check_full_state("safe_state", safe_state, params, BridgeConfigError)
        self.heartbeat_s = float(heartbeat_s)
        self.timeout_s = float(timeout_s)
        self._curve = curve
        self._now = now
        self._error_interval_s = error_interval_s
        self._tick_s = max(0.002, min(0.05, heartbeat_s / 5, timeout_s / 10))

        self.counters = Counters()
        self.rtt = RttStats()
        self.last_panic: ev.Panic | None = None
        self._state = EndpointState.NEW
        self._current: dict[str, StateValue] = dict(self._initial)
        self._showing_safe = False
        self._peer: _Peer | None = None
        self._pending: _SentScene | None = None
        self._sent: OrderedDict[tuple[bytes, int], _SentScene] = OrderedDict()
        self._seq: OrderedDict[bytes, int] = OrderedDict()
        self._last_malformed_reply: OrderedDict[bytes, float] = OrderedDict()
        self._ended: str | None = None
        self._final_sent = False
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._auth: Any = None
        self._task: asyncio.Task[None] | None = None
        self.address: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> ControllerEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind and start serving. Raises :class:`BridgeConfigError` if the bind fails."""
        if self._state is not EndpointState.NEW:
            raise BridgeStateError(f"cannot start an endpoint that is {self._state.value}")
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.maxmsgsize = TRANSPORT_MAX_BYTES
        sock.rcvtimeo = max(1, int(self._tick_s * 1000))
        if "[" in self._bind:
            sock.ipv6 = True
        try:
            if self._curve is not None:
                from zmq.auth.asyncio import AsyncioAuthenticator

                self._auth = AsyncioAuthenticator(context=ctx, log=logging.getLogger(f"{__name__}.zap"))
                self._auth.start()
                self._curve.allow.on_reject = self._on_rejected_key
                self._auth.configure_curve_callback(domain="*", credentials_provider=self._curve.allow)
                self._curve.apply(sock)
            sock.bind(self._bind)
        except zmq.ZMQError as e:
            sock.close(linger=0)
            if self._auth is not None:
                self._auth.stop()
                self._auth = None
            ctx.term()
            raise BridgeConfigError(f"cannot listen on {self._bind}: {e}") from e
        self.address = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._ctx, self._sock = ctx, sock
        self._state = EndpointState.OPEN
        self._task = asyncio.create_task(self._run(), name=f"bridge-endpoint {self.address}")
        log.info(
            "listening on %s (session %s, scenario %s, %s)",
            self.address, self.session_id, self.scenario_id,
            "CURVE" if self._curve else "plaintext",
        )

    async def close(self) -> None:
        """Stop serving and release every socket. Safe to call twice."""
        if self._state is EndpointState.CLOSED:
            return
        if self._state is EndpointState.NEW:
            self._state = EndpointState.CLOSED
            self._queue.put_nowait(_CLOSED)
            return
        if self._peer is not None and self._ended is None:
            self._send(self._peer.ident, End, reason="closed")
            self._final_sent = True
        self._state = EndpointState.CLOSED
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # pragma: no cover - the loop logs its own failures
                log.exception("endpoint loop failed")
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        assert self._sock is not None and self._ctx is not None
        # A final ``end`` may still sit in the queue: give it a short linger so it leaves.
        self._sock.close(linger=100 if self._final_sent else 0)
        self._ctx.term()
        self._peer = None
        self._connected.clear()
        self._queue.put_nowait(_CLOSED)
        log.info("closed %s: %s", self.address, self.counters.as_dict())

    # --- properties --------------------------------------------------------------------------

    @property
    def state(self) -> EndpointState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is EndpointState.CLOSED

    @property
    def connected(self) -> bool:
        """Whether a headset is admitted and not lost."""
        return self._peer is not None

    @property
    def client(self) -> str | None:
        """The admitted headset's ``client`` name."""
        return self._peer.client if self._peer else None

    @property
    def current_state(self) -> dict[str, StateValue]:
        """The scene the headset should show now (what the next ``welcome`` carries)."""
        return dict(self._current)

    @property
    def safe_state(self) -> dict[str, StateValue]:
        return dict(self._safe)

    @property
    def showing_safe(self) -> bool:
        """Whether the current state is the safe state because of :meth:`send_safe` or a panic."""
        return self._showing_safe

    @property
    def pending_scene(self) -> int | None:
        """The ``scene_seq`` of the newest scene not acked yet, if any."""
        p = self._pending
        return p.scene_seq if p is not None and not p.acked else None

    @property
    def ended(self) -> str | None:
        """The reason given to :meth:`end`, or ``None``."""
        return self._ended

    # --- commands ----------------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._state is EndpointState.CLOSED:
            raise BridgeClosed(f"cannot {what}: the endpoint is closed")
        if self._state is EndpointState.NEW:
            raise BridgeStateError(f"cannot {what}: start the endpoint first (async with)")
        if self._ended is not None:
            raise BridgeStateError(f"cannot {what}: the session was ended ({self._ended})")

    async def send_scene(self, state: Mapping[str, StateValue], transition_s: float = 0.0) -> int | None:
        """Make ``state`` the current scene; send it if a headset is admitted.

        Returns the scene's seq (as later reported in ``SceneAcked.scene_seq``), or ``None``
        when no headset is admitted (the next ``welcome`` carries the state).
        """
        self._check_open("send a scene")
        s = _check_full_state("state", state, self.parameters, BridgeConfigError)
        if not (isinstance(transition_s, (int, float)) and math.isfinite(transition_s) and transition_s >= 0):
            raise BridgeConfigError(f"transition_s must be a finite number >= 0, found {transition_s!r}")
        transition_s = float(transition_s)
        self._current = s
        self._showing_safe = False
        peer = self._peer
        if peer is None:
            self._pending = None
            return None
        seq, sent_at = self._send(peer.ident, Scene, state=s, transition_s=transition_s)
        p = _SentScene(
            scene_seq=seq, ident=peer.ident, state=s, transition_s=transition_s,
            due=sent_at + transition_s + self.timeout_s,
        )
        p.wire[seq] = sent_at
        self._remember(p, seq)
        self._pending = p
        self.counters.scenes += 1
        return seq

    async def send_safe(self, reason: str = "therapist") -> int | None:
        """Send ``safe`` now and make the safe state current; ``None`` if no headset."""
        self._check_open("send safe")
        return self._go_safe(str(reason))

    async def end(self, reason: str = "session_over") -> None:
        """Tell the headset the session is over; later ``hello``\\ s get ``end`` too."""
        self._check_open("end the session")
        self._ended = str(reason)
        if self._peer is not None:
            self._send(self._peer.ident, End, reason=self._ended)
            self._final_sent = True
        self._peer = None
        self._pending = None
        self._connected.clear()
        log.info("session %s ended: %s", self.session_id, reason)

    def reload_allow_list(self) -> None:
        """Re-read the CURVE allow-list directory (after adding a headset key)."""
        if self._curve is None:
            raise BridgeStateError("this endpoint does not use CURVE; there is no allow-list")
        self._curve.allow.reload()

    # --- events ------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[ev.BridgeEvent]:
        """Yield events as they happen, until the endpoint is closed."""
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                self._queue.put_nowait(_CLOSED)  # let other consumers end too
                return
            yield item

    async def next_event(self, timeout: float | None = None) -> ev.BridgeEvent:
        """The next event; ``TimeoutError`` after ``timeout`` s, :class:`BridgeClosed` when closed."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)
            raise BridgeClosed("the endpoint is closed")
        return item

    def poll_events(self) -> list[ev.BridgeEvent]:
        """Every event queued so far, without waiting."""
        out = []
        while True:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return out
            if item is _CLOSED:
                self._queue.put_nowait(_CLOSED)
                return out
            out.append(item)

    async def wait_connected(self, timeout: float | None = None) -> str:
        """Wait until a headset is admitted; returns its ``client`` name."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        assert self._peer is not None
        return self._peer.client

    def _emit(self, event: ev.BridgeEvent) -> None:
        self._queue.put_nowait(event)

    # --- internals: sending ------------------------------------------------------------------

    def _next_seq(self, ident: bytes) -> int:
        seq = self._seq.pop(ident, 0) + 1
        self._seq[ident] = seq
        while len(self._seq) > _MEMORY:
            self._seq.popitem(last=False)
        return seq

    def _send(self, ident: bytes, cls: type[Message], **fields: Any) -> tuple[int, float]:
        assert self._sock is not None
        now = self._now()
        seq = self._next_seq(ident)
        frame = pack(cls(seq=seq, t=now, **fields))
        fut = self._sock.send_multipart([ident, frame])
        if fut.done():
            if not fut.cancelled() and fut.exception() is not None:
                log.warning("send of %s to %s failed: %s", cls.TYPE, ident.hex(), fut.exception())
        else:  # pragma: no cover - a ROUTER never blocks; kept for safety
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.counters.frames_out += 1
        if self._peer is not None and self._peer.ident == ident:
            self._peer.last_sent = now
        return seq, now

    def _error(self, ident: bytes, code: str, message: str) -> None:
        self._send(ident, Error, code=code, message=message[:500])
        self.counters.errors_sent += 1

    def _remember(self, p: _SentScene, wire_seq: int) -> None:
        self._sent[(p.ident, wire_seq)] = p
        while len(self._sent) > _SCENES_REMEMBERED:
            self._sent.popitem(last=False)

    def _go_safe(self, reason: str) -> int | None:
        self._current = dict(self._safe)
        self._showing_safe = True
        self._pending = None
        self.counters.safes += 1
        if self._peer is None:
            return None
        seq, _ = self._send(self._peer.ident, Safe, reason=reason)
        return seq

    # --- internals: receiving ----------------------------------------------------------------

    async def _run(self) -> None:
        assert self._sock is not None
        sock = self._sock
        next_tick = self._now()
        while True:
            try:
                frames = await sock.recv_multipart(copy=False)
            except zmq.Again:
                frames = None
            except zmq.ZMQError as e:
                if self._state is EndpointState.CLOSED:
                    return
                log.warning("receive failed: %s", e)
                await asyncio.sleep(self._tick_s)
                frames = None
            now = self._now()
            if frames is not None:
                try:
                    self._on_frames(frames, now)
                except Exception:  # rule 9: nothing a peer sends stops the controller
                    log.exception("unexpected failure while handling a frame; frame dropped")
            if now >= next_tick:
                try:
                    self._tick(now)
                except Exception:
                    log.exception("unexpected failure in the endpoint's timers")
                next_tick = now + self._tick_s

    def _malformed(self, ident: bytes, why: str, now: float) -> None:
        self.counters.malformed += 1
        log.info("malformed frame from %s dropped: %s", ident.hex(), why)
        last = self._last_malformed_reply.get(ident)
        if last is not None and now - last < self._error_interval_s:
            self.counters.errors_suppressed += 1
            return
        self._last_malformed_reply.pop(ident, None)
        self._last_malformed_reply[ident] = now
        while len(self._last_malformed_reply) > _MEMORY:
            self._last_malformed_reply.popitem(last=False)
        self._error(ident, "malformed", why)

    def _on_frames(self, frames: list[zmq.Frame], now: float) -> None:
        self.counters.frames_in += 1
        ident = frames[0].bytes
        peer = self._peer if self._peer is not None and self._peer.ident == ident else None
        if peer is not None:
            peer.last_heard = now
        if len(frames) != 2:
            sizes = sum(len(f.bytes) for f in frames[1:])
            why = f"expected one frame per message, found {len(frames) - 1} ({sizes} bytes)"
            if sizes > MAX_FRAME_BYTES:
                why += f"; frames are limited to {MAX_FRAME_BYTES} bytes"
            self._malformed(ident, why, now)
            return
        try:
            msg = unpack(frames[1].bytes)
        except UnknownMessageType as e:
            self.counters.unknown_types += 1
            log.info("from %s: %s", ident.hex(), e)
            return
        except VersionMismatch as e:
            self.counters.version += 1
            log.warning("from %s: %s", ident.hex(), e)
            self._error(ident, "version", f"{e}; not admitted")
            return
        except ProtocolError as e:
            self._malformed(ident, str(e), now)
            return
        if isinstance(msg, Hello):
            self.counters.hellos += 1
            self._on_hello(ident, msg, self._user_id(frames[1]), now)
        elif peer is None:
            self.counters.hello_first += 1
            log.info("%s from %s before hello: answered hello_first", msg.TYPE, ident.hex())
            self._error(ident, "hello_first", f"send hello first (received {msg.TYPE!r} before hello)")
        elif isinstance(msg, (Welcome, Scene, Safe, Error, End)):
            self._malformed(ident, f"{msg.TYPE!r} is a controller-to-headset message", now)
        else:
            self.counters.messages_in += 1
            self._dispatch(peer, msg, now)

    def _dispatch(self, peer: _Peer, msg: Message, now: float) -> None:
        if isinstance(msg, Heartbeat):
            pass
        elif isinstance(msg, Ack):
            self._on_ack(peer, msg, now)
        elif isinstance(msg, Event):
            self._on_event(peer, msg, now)
        elif isinstance(msg, Bye):
            self._on_bye(peer, msg, now)

    @staticmethod
    def _user_id(frame: zmq.Frame) -> str | None:
        try:
            uid = frame.get("User-Id")
        except (zmq.ZMQError, KeyError, AttributeError):
            return None
        return uid or None

    def _on_rejected_key(self, key: bytes) -> None:
        self.counters.rejected_keys += 1

    def _on_hello(self, ident: bytes, msg: Hello, key: str | None, now: float) -> None:
        if self._ended is not None:
            self._send(ident, End, reason=self._ended)
            return
        missing = [p for p in self.parameters if p not in msg.parameters]
        if missing:
            self.counters.unsupported += 1
            log.warning("hello from %s (%s) refused: missing parameters %s", ident.hex(), msg.client, missing)
            self._error(ident, "unsupported_parameters", "missing parameters: " + ", ".join(missing))
            if self._peer is not None and self._peer.ident == ident:
                self._lose(self._peer, now)
            return
        old = self._peer
        if old is not None and old.ident != ident:
            self._send(old.ident, End, reason="replaced")
            self.counters.replaced += 1
            log.warning("headset %s (%s) replaced by %s (%s)", old.client, old.hex, msg.client, ident.hex())
            self._emit(ev.HeadsetReplaced(old.client, msg.client, old.hex, ident.hex(), now))
        self._peer = _Peer(ident, msg.client, msg.parameters, key, last_heard=now, last_sent=now)
        self._pending = None
        self._send(
            ident, Welcome,
            session=self.session_id, scenario=self.scenario_id,
            state=self._current, safe_state=self._safe,
            heartbeat_s=self.heartbeat_s, timeout_s=self.timeout_s,
        )
        self.counters.admitted += 1
        self._connected.set()
        log.info("headset %s admitted from %s%s", msg.client, ident.hex(), f" (key {key[:8]}…)" if key else "")
        self._emit(ev.HeadsetConnected(msg.client, msg.parameters, dict(self._current), ident.hex(), key, now))

    def _on_ack(self, peer: _Peer, msg: Ack, now: float) -> None:
        p = self._sent.get((peer.ident, msg.ack))
        if p is None:
            self.counters.unknown_acks += 1
            log.info("ack of unknown scene seq %d from %s ignored", msg.ack, peer.client)
            return
        if p.acked:
            return  # the same scene acked twice (original and re-send): first one counts
        p.acked = True
        self.counters.acks += 1
        sent_at = p.wire[msg.ack]
        rtt = now - sent_at
        self.rtt.add(rtt - p.transition_s)
        if self._pending is p:
            self._pending = None
        self._emit(ev.SceneAcked(msg.ack, p.scene_seq, dict(p.state), p.transition_s, sent_at, now, rtt, p.resends, now))

    def _on_event(self, peer: _Peer, msg: Event, now: float) -> None:
        kind = msg.kind
        if kind == "panic":
            safe_seq = self._go_safe("panic")
            sent_at = self._now()
            self.counters.panics += 1
            log.warning("PANIC from %s: safe sent after %.1f ms", peer.client, (sent_at - now) * 1e3)
            panic = ev.Panic(peer.client, safe_seq or 0, sent_at, now)
            self.last_panic = panic
            self._emit(panic)
        elif kind == "suds":
            self._emit(ev.Suds(int(msg.value), now))
        elif kind == "removed":
            self._emit(ev.Removed(now))
        elif kind == "worn":
            self._emit(ev.Worn(now))
        elif kind == "gaze":
            self._emit(ev.Gaze(bool(msg.value), now))
        else:
            self.counters.unknown_events += 1
            log.info("unknown event kind %r from %s ignored", kind, peer.client)

    def _on_bye(self, peer: _Peer, msg: Bye, now: float) -> None:
        self.counters.byes += 1
        self._peer = None
        self._pending = None
        self._connected.clear()
        log.info("headset %s said bye: %s", peer.client, msg.reason)
        self._emit(ev.Bye(peer.client, msg.reason, now))

    def _lose(self, peer: _Peer, now: float) -> None:
        self.counters.losses += 1
        self._peer = None
        self._pending = None
        self._connected.clear()
        silent = now - peer.last_heard
        log.warning("headset %s lost: nothing heard for %.2f s", peer.client, silent)
        self._emit(ev.HeadsetLost(peer.client, peer.hex, silent, now))

    def _tick(self, now: float) -> None:
        peer = self._peer
        if peer is None:
            return
        if now - peer.last_heard >= self.timeout_s:
            self._lose(peer, now)
            return
        p = self._pending
        if p is not None and not p.acked and now >= p.due:
            seq, sent_at = self._send(peer.ident, Scene, state=p.state, transition_s=p.transition_s)
            p.wire[seq] = sent_at
            p.resends += 1
            p.due = sent_at + p.transition_s + self.timeout_s
            self._remember(p, seq)
            self.counters.resends += 1
            log.info("scene %d not acked: re-sent as seq %d", p.scene_seq, seq)
        if now - peer.last_sent >= self.heartbeat_s:
            self._send(peer.ident, Heartbeat)
            self.counters.heartbeats_sent += 1
