"""Helpers for the bridge tests: endpoint factory, a raw DEALER client, a manual clock."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from unity_bridge import ControllerEndpoint
from unity_bridge.codec import pack, unpack
from unity_bridge.messages import Hello, Message

PARAMS = ("jar", "distance_m", "size")
START = {"jar": "closed", "distance_m": 2.4, "size": "small"}
SAFE = {"jar": "covered", "distance_m": 3.0, "size": "tiny"}
CLOSER = {"jar": "open", "distance_m": 1.2, "size": "medium"}
CLOSEST = {"jar": "free", "distance_m": 0.3, "size": "huge"}
ANY_PORT = "tcp://127.0.0.1:*"


def make_endpoint(bind: str = ANY_PORT, **kw: Any) -> ControllerEndpoint:
    """An endpoint on a random loopback port with the test scenario; ``kw`` overrides."""
    args: dict[str, Any] = dict(
        session_id="S-TEST",
        scenario_id="spider",
        parameters=PARAMS,
        initial_state=START,
        safe_state=SAFE,
        heartbeat_s=0.2,
        timeout_s=2.0,
    )
    args.update(kw)
    return ControllerEndpoint(bind, **args)


class RawClient:
    """A bare DEALER speaking bytes or messages; ``async with`` closes it with linger 0."""

    def __init__(self, address: str, *, curve: Any = None, monitor: int = 0) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve is not None:
            curve.apply(self.sock)
        # socket events (e.g. zmq.EVENT_HANDSHAKE_FAILED_AUTH), watched before connecting
        self.monitor = self.sock.get_monitor_socket(monitor) if monitor else None
        self.sock.connect(address)
        self.seq = 0

    async def next_socket_event(self, timeout: float = 5.0) -> int:
        from zmq.utils.monitor import parse_monitor_message

        assert self.monitor is not None
        return parse_monitor_message(await asyncio.wait_for(self.monitor.recv_multipart(), timeout))["event"]

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.monitor is not None and not self.monitor.closed:
            self.sock.disable_monitor()
            self.monitor.close(linger=0)
        if not self.sock.closed:
            self.sock.close(linger=0)
        if not self.ctx.closed:
            self.ctx.term()

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def send(self, cls: type[Message], **fields: Any) -> int:
        seq = self.next_seq()
        await self.sock.send(pack(cls(seq=seq, t=time.monotonic(), **fields)))
        return seq

    async def send_map(self, obj: Any) -> None:
        await self.sock.send(msgpack.packb(obj, use_bin_type=True))

    async def send_bytes(self, *frames: bytes) -> None:
        await self.sock.send_multipart(list(frames))

    async def hello(self, parameters: tuple[str, ...] = PARAMS, client: str = "raw") -> int:
        return await self.send(Hello, client=client, parameters=list(parameters))

    async def recv(self, timeout: float = 2.0) -> Message:
        frame = await asyncio.wait_for(self.sock.recv(), timeout)
        return unpack(frame)

    async def recv_until(self, cls: type[Message], timeout: float = 2.0) -> Message:
        """Skip heartbeats and other types until a message of ``cls`` arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {cls.TYPE} within {timeout} s")
            msg = await self.recv(left)
            if isinstance(msg, cls):
                return msg

    async def recv_nothing_but(self, allowed: tuple[type[Message], ...], seconds: float) -> list[Message]:
        """Everything received for ``seconds`` that is not of an ``allowed`` type."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        others = []
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await self.recv(left)
            except (TimeoutError, asyncio.TimeoutError):
                break
            if not isinstance(msg, allowed):
                others.append(msg)
        return others


class ManualNow:
    """A clock the test moves by hand (``now()`` callable for the endpoint)."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def frame_of_size(size: int, seq: int = 1) -> bytes:
    """A valid ``heartbeat`` frame of exactly ``size`` bytes (padded with an unknown key)."""
    base = {"v": 1, "type": "heartbeat", "seq": seq, "t": 0.0, "pad": ""}
    n = max(0, size - len(msgpack.packb(base)))
    for k in range(n, max(-1, n - 8), -1):  # the str header grows with the length
        frame = msgpack.packb({**base, "pad": "x" * k})
        if len(frame) == size:
            return frame
    raise ValueError(f"cannot build a frame of exactly {size} bytes")


class FakeController:
    """A bare ROUTER (linger 0) that the test drives message by message."""

    def __init__(self, bind: str = ANY_PORT) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind(bind)
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.seq = 0

    async def __aenter__(self) -> FakeController:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self.sock.closed:
            self.sock.close(linger=0)
        if not self.ctx.closed:
            self.ctx.term()

    async def recv(self, timeout: float = 5.0) -> tuple[bytes, Message]:
        ident, frame = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        return ident, unpack(frame)

    async def recv_until(self, cls: type[Message], timeout: float = 5.0) -> tuple[bytes, Message]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ident, msg = await self.recv(max(0.001, deadline - loop.time()))
            if isinstance(msg, cls):
                return ident, msg

    async def send(self, ident: bytes, cls: type[Message], **fields: Any) -> int:
        self.seq += 1
        await self.sock.send_multipart([ident, pack(cls(seq=self.seq, t=time.monotonic(), **fields))])
        return self.seq
