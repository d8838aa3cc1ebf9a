"""unity_bridge.messages / unity_bridge.codec: round-trips, validation, and bad input never crashes."""

from __future__ import annotations

import math
import struct

import msgpack
import pytest
from bridge_helpers import frame_of_size
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from unity_bridge.codec import decode_frame, from_map, pack, to_map, unpack
from unity_bridge.errors import (
    FrameTooLarge,
    MalformedMessage,
    ProtocolError,
    UnknownMessageType,
    VersionMismatch,
)
from unity_bridge.messages import (
    MAX_FRAME_BYTES,
    MESSAGE_TYPES,
    SEQ_MAX,
    Ack,
    Bye,
    End,
    Error,
    Event,
    Heartbeat,
    Hello,
    Safe,
    Scene,
    Welcome,
)

# --- strategies ------------------------------------------------------------------------------

seqs = st.integers(1, SEQ_MAX)
times = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=40)
durations = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
state_values = st.one_of(
    texts,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
states = st.dictionaries(texts, state_values, max_size=12)
plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _event(seq: int, t: float, kind: str, draw: st.DrawFn) -> Event:
    if kind == "suds":
        value = draw(st.integers(0, 100))
    elif kind == "gaze":
        value = draw(st.booleans())
    elif kind in ("panic", "removed", "worn"):
        value = None
    else:
        value = draw(plain)
    return Event(seq=seq, t=t, kind=kind, value=value)


@st.composite
def messages(draw: st.DrawFn) -> object:
    seq, t = draw(seqs), draw(times)
    kind = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    if kind == "hello":
        return Hello(seq=seq, t=t, client=draw(texts), parameters=draw(st.lists(texts, max_size=10)))
    if kind == "ack":
        return Ack(seq=seq, t=t, ack=draw(seqs))
    if kind == "event":
        ek = draw(st.sampled_from(["panic", "suds", "removed", "worn", "gaze"]) | texts)
        return _event(seq, t, ek, draw)
    if kind == "heartbeat":
        return Heartbeat(seq=seq, t=t)
    if kind == "bye":
        return Bye(seq=seq, t=t, reason=draw(texts))
    if kind == "welcome":
        return Welcome(
            seq=seq, t=t, session=draw(texts), scenario=draw(texts), state=draw(states),
            safe_state=draw(states), heartbeat_s=draw(positive), timeout_s=draw(positive),
        )
    if kind == "scene":
        return Scene(seq=seq, t=t, state=draw(states), transition_s=draw(durations))
    if kind == "safe":
        return Safe(seq=seq, t=t, reason=draw(texts))
    if kind == "error":
        return Error(seq=seq, t=t, code=draw(st.sampled_from(["malformed", "version"]) | texts), message=draw(texts))
    return End(seq=seq, t=t, reason=draw(texts))


# --- properties ------------------------------------------------------------------------------


@given(messages())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_unpack_inverts_pack(m: object) -> None:
    frame = pack(m)  # type: ignore[arg-type]
    assert len(frame) <= MAX_FRAME_BYTES
    assert unpack(frame) == m
    assert pack(unpack(frame)) == frame  # canonical: re-encoding gives the same bytes


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_give_a_message_or_a_protocol_error(data: bytes) -> None:
    try:
        m = unpack(data)
    except ProtocolError:
        return
    assert m.TYPE in MESSAGE_TYPES


anything = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | texts | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(texts | st.binary(max_size=4), inner, max_size=6),
    max_leaves=16,
)


@given(anything)
@settings(max_examples=400, deadline=None)
def test_arbitrary_msgpack_gives_a_message_or_a_protocol_error(obj: object) -> None:
    try:
        m = unpack(msgpack.packb(obj, use_bin_type=True))
    except ProtocolError:
        return
    assert m.TYPE in MESSAGE_TYPES


@given(messages(), st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_valid_message_with_one_field_replaced_never_crashes(m: object, data: st.DataObject) -> None:
    wire = to_map(m)  # type: ignore[arg-type]
    key = data.draw(st.sampled_from(sorted(wire)))
    wire[key] = data.draw(anything)
    try:
        out = unpack(msgpack.packb(wire, use_bin_type=True))
    except ProtocolError:
        return
    assert out.TYPE in MESSAGE_TYPES


@given(messages(), st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_frames_are_malformed(m: object, data: st.DataObject) -> None:
    frame = pack(m)  # type: ignore[arg-type]
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(MalformedMessage):
        unpack(frame[:cut])


@given(messages(), st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("v",)), plain, max_size=3))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_unknown_keys_are_ignored(m: object, extra: dict) -> None:
    wire = to_map(m)  # type: ignore[arg-type]
    extra = {k: v for k, v in extra.items() if k not in wire}
    assume(extra)
    assert unpack(msgpack.packb({**wire, **extra}, use_bin_type=True)) == m


# --- examples --------------------------------------------------------------------------------


def test_frame_limit_is_65536_bytes_inclusive() -> None:
    frame = frame_of_size(MAX_FRAME_BYTES)
    assert len(frame) == MAX_FRAME_BYTES
    assert unpack(frame) == Heartbeat(seq=1, t=0.0)
    bigger = frame_of_size(MAX_FRAME_BYTES + 1)
    assert len(bigger) == MAX_FRAME_BYTES + 1
    with pytest.raises(FrameTooLarge, match="65537 bytes exceeds the 65536-byte limit") as info:
        unpack(bigger)
    assert info.value.size == MAX_FRAME_BYTES + 1
    assert info.value.code == "malformed"


def test_pack_refuses_a_message_over_the_limit() -> None:
    with pytest.raises(FrameTooLarge):
        pack(Error(seq=1, t=0.0, code="x", message="m" * MAX_FRAME_BYTES))


@pytest.mark.parametrize(
    "obj, match",
    [
        ([1, 2], "expected a map, found array"),
        ({"type": "heartbeat", "seq": 1, "t": 0.0}, "missing envelope key 'v'"),
        ({"v": 1, "seq": 1, "t": 0.0}, "missing envelope key 'type'"),
        ({"v": 1, "type": "hello", "seq": 1, "t": 0.0, "client": "x"}, "hello: missing key 'parameters'"),
        ({"v": 1, "type": "hello", "seq": 1, "t": 0.0, "client": "x", "parameters": ["a", 2]}, r"hello.parameters\[1\]: expected str, found int"),
        ({"v": 1, "type": "event", "seq": 1, "t": 0.0, "kind": "suds", "value": 101}, "expected int 0..100 for kind suds, found 101"),
        ({"v": 1, "type": "scene", "seq": 1, "t": 0.0, "state": {"jar": True}, "transition_s": 0}, "scene.state.jar: expected str or number, found bool"),
        ({"v": 1, "type": "ack", "seq": 0, "t": 0.0, "ack": 1}, r"ack.seq: expected an int from 1 to 2\*\*63-1, found 0"),
        ({"v": 1, "type": "heartbeat", "seq": 1, "t": float("inf")}, "heartbeat.t: expected a finite float, found inf"),
    ],
)
def test_error_messages_name_the_field_and_what_was_found(obj: object, match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        unpack(msgpack.packb(obj))


def test_version_is_checked_before_the_rest_of_the_envelope() -> None:
    with pytest.raises(VersionMismatch, match="protocol version 2 is not supported") as info:
        unpack(msgpack.packb({"v": 2, "shape": "unknown"}))
    assert info.value.version == 2
    assert info.value.code == "version"


def test_unknown_type_is_its_own_error_with_no_reply_code() -> None:
    with pytest.raises(UnknownMessageType) as info:
        unpack(msgpack.packb({"v": 1, "type": "teleport", "seq": 4, "t": 1.0}))
    assert info.value.type == "teleport"
    assert info.value.code is None


def test_decoding_tolerates_int_for_float_and_float32() -> None:
    m = unpack(msgpack.packb({"v": 1, "type": "scene", "seq": 2, "t": 3, "state": {"d": 1}, "transition_s": 2}))
    assert isinstance(m, Scene) and m.t == 3.0 and isinstance(m.t, float) and m.transition_s == 2.0
    f32 = msgpack.packb({"v": 1, "type": "heartbeat", "seq": 1, "t": 0.5}, use_single_float=True)
    assert b"\xca" in f32 and unpack(f32) == Heartbeat(seq=1, t=0.5)


def test_state_ints_stay_ints_and_floats_stay_floats() -> None:
    m = unpack(pack(Scene(seq=1, t=0.0, state={"n": 2, "x": 2.0}, transition_s=0.0)))
    assert isinstance(m, Scene)
    assert type(m.state["n"]) is int and type(m.state["x"]) is float


def test_panic_value_is_ignored_but_suds_and_gaze_values_are_checked() -> None:
    m = from_map({"v": 1, "type": "event", "seq": 1, "t": 0.0, "kind": "panic", "value": "oops"})
    assert m == Event(seq=1, t=0.0, kind="panic")
    with pytest.raises(MalformedMessage, match="bool for kind gaze"):
        Event(seq=1, t=0.0, kind="gaze", value=1)
    assert "value" not in to_map(Event(seq=1, t=0.0, kind="worn"))


def test_decode_frame_rejects_garbage_cleanly() -> None:
    for bad in (b"", b"\xc1", b"\x81\xa1v", b"\x92\x01", b"\xdd\xff\xff\xff\xff", b"\x81\x01\x02"):
        with pytest.raises(MalformedMessage):
            unpack(bad)
    deep = b"\x91" * 100_000 + b"\x01"  # deeper than any stack
    with pytest.raises(FrameTooLarge):
        unpack(deep)
    deep_small = b"\x91" * 60_000 + b"\x01"  # within the size limit, deeper than msgpack's stack
    with pytest.raises(MalformedMessage, match="not valid msgpack"):
        decode_frame(deep_small)


def test_floats_are_always_float64_on_the_wire() -> None:
    frame = pack(Heartbeat(seq=1, t=0.5))
    assert frame.endswith(b"\xa1t\xcb" + struct.pack(">d", 0.5))
    assert not math.isnan(unpack(frame).t)


def test_unity_bridge_imports_nothing_from_exposure_ctrl() -> None:
    import subprocess
    import sys

    code = (
        "import sys, unity_bridge, unity_bridge.endpoint, unity_bridge.emulator, unity_bridge.security; "
        "bad = sorted(m for m in sys.modules if m == 'exposure_ctrl' or m.startswith('exposure_ctrl.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
