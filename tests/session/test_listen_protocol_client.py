"""`exposure-ctrl run --headset listen` with a headset written only from PROTOCOL.md.

The client below uses nothing of this project: a pyzmq DEALER and msgpack, following the
document's envelope, handshake, heartbeat and ack rules by hand.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import zmq

from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.store import Store

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HandWrittenHeadset:
    """PROTOCOL.md v1, by hand."""

    def __init__(self, endpoint: str, parameters: list[str]) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.seq = 0
        self.parameters = parameters
        self.last_sent = 0.0
        self.received: list[dict] = []
        self.shown: dict | None = None

    def send(self, type_: str, **extra) -> None:
        self.seq += 1
        msg = {"v": 1, "type": type_, "seq": self.seq, "t": time.monotonic(), **extra}
        self.sock.send(msgpack.packb(msg, use_bin_type=True))
        self.last_sent = time.monotonic()

    def poll(self, timeout_s: float) -> None:
        if self.sock.poll(int(timeout_s * 1000)):
            msg = msgpack.unpackb(self.sock.recv(), raw=False)
            assert isinstance(msg, dict) and msg["v"] == 1 and isinstance(msg["seq"], int)
            self.received.append(msg)
            if msg["type"] == "welcome":
                self.shown = msg["state"]
            elif msg["type"] == "scene":
                self.shown = msg["state"]  # transitions are instantaneous here
                self.send("ack", ack=msg["seq"])
            elif msg["type"] == "safe":
                self.shown = None
        if time.monotonic() - self.last_sent >= 1.0:
            self.send("heartbeat")

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def test_a_headset_written_from_the_protocol_document_runs_a_session(tmp_path):
    sc = resolve_scenario("spider")
    port = _free_port()
    store = tmp_path / "p.sqlite"
    cmd = [
        sys.executable, "-m", "exposure_ctrl", "run", "--headset", "listen",
        "--bind", f"tcp://127.0.0.1:{port}", "--store", str(store), "--speed", "60",
        "--baseline-s", "150", "--duration-s", "600", "--seed", "3", "--no-report",
        "--view", "plain", "--patient", "L-0001", "--no-console",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    hs = HandWrittenHeadset(f"tcp://127.0.0.1:{port}", list(sc.parameter_ids))
    try:
        # Rule 1: anything before hello gets error hello_first.
        hs.send("heartbeat")
        deadline = time.monotonic() + 60
        while not any(m["type"] == "error" for m in hs.received) and time.monotonic() < deadline:
            hs.poll(0.1)
        assert any(m["type"] == "error" and m["code"] == "hello_first" for m in hs.received)
        hs.send("hello", client="hand-written", parameters=list(sc.parameter_ids))
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            hs.poll(0.05)
            if any(m["type"] == "end" for m in hs.received):
                break
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        hs.close()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 0, out
    types = [m["type"] for m in hs.received]
    assert "welcome" in types and "scene" in types and types[-1] == "end"
    welcome = next(m for m in hs.received if m["type"] == "welcome")
    assert set(welcome["state"]) == set(sc.parameter_ids) == set(welcome["safe_state"])
    for m in hs.received:
        if m["type"] == "scene":
            assert set(m["state"]) == set(sc.parameter_ids)  # full state, never a diff
            sc.positions(m["state"])  # every value is legal
    with Store.open(store, create=False) as st:
        rec = st.load_session(1)
    assert rec.info.outcome == "completed", (rec.info.outcome, rec.info.end_reason, out[-2000:])
    sent = [c for c in rec.scene_changes if c.wire_seq is not None]
    assert sent and all(c.acked_t is not None for c in sent)  # our acks reached the store
    assert any(e.kind == "connected" and e.detail.get("client") == "hand-written" for e in rec.headset_events)
