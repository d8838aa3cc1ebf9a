"""One ``pack``/``unpack`` pair between typed messages and msgpack frames.

>>> from unity_bridge.messages import Heartbeat
>>> frame = pack(Heartbeat(seq=1, t=0.5))
>>> frame.hex()
'84a17601a474797065a9686561727462656174a373657101a174cb3fe0000000000000'
>>> unpack(frame) == Heartbeat(seq=1, t=0.5)
True

Encoding is canonical so that every implementation produces the same bytes (the golden vectors
in ``vectors.json`` pin it): one map; keys in the order ``v``, ``type``, ``seq``, ``t``, then the
type's own keys in the order of PROTOCOL.md; ints in their shortest msgpack form; floats always
float64; strings as msgpack str (never bin); an absent optional key is left out, not sent as nil.

Decoding is tolerant where the protocol says so (unknown keys ignored, ints accepted for floats,
float32 accepted) and strict everywhere else. Every way a frame can be wrong ends in one of the
:class:`~unity_bridge.errors.ProtocolError` subclasses, never in another exception:

* more than :data:`MAX_FRAME_BYTES` → :class:`FrameTooLarge`;
* not exactly one msgpack object, not a map, non-string keys, envelope keys missing or of the
  wrong type, fields missing or wrong → :class:`MalformedMessage`;
* ``v`` an int other than 1 → :class:`VersionMismatch` (checked before anything but ``v``);
* a well-formed envelope with an unknown ``type`` → :class:`UnknownMessageType`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

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
    PROTOCOL_VERSION,
    Message,
    _kind,
    check_float,
    check_seq,
    check_str,
)

__all__ = ["pack", "unpack", "to_map", "from_map", "decode_frame"]

_ENVELOPE = ("v", "type", "seq", "t")


def to_map(msg: Message) -> dict[str, Any]:
    """The message as the plain map that goes on the wire (canonical key order)."""
    out: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": msg.TYPE, "seq": msg.seq, "t": msg.t}
    out.update(msg.body())
    return out


def pack(msg: Message) -> bytes:
    """Encode one message as one frame; raises :class:`FrameTooLarge` beyond 64 KiB."""
    if not isinstance(msg, Message) or not msg.TYPE:
        raise TypeError(f"pack() needs a unity_bridge message, not {type(msg).__name__}")
    frame = msgpack.packb(to_map(msg), use_bin_type=True, use_single_float=False)
    if len(frame) > MAX_FRAME_BYTES:
        raise FrameTooLarge(
            f"{msg.TYPE}: frame of {len(frame)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
            len(frame),
        )
    return frame


def decode_frame(frame: bytes) -> Any:
    """The single msgpack object in ``frame`` (size-checked), or :class:`MalformedMessage`."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"frame: expected bytes, found {type(frame).__name__}")
    size = len(frame)
    if size > MAX_FRAME_BYTES:
        raise FrameTooLarge(
            f"frame: {size} bytes exceeds the {MAX_FRAME_BYTES}-byte limit", size
        )
    if size == 0:
        raise MalformedMessage("frame: empty (expected one msgpack map)")
    try:
        # raw=False: str must be valid UTF-8; strict_map_key: keys must be str (or bin, caught
        # below); the unpacker's own limits default to the buffer size, so nothing can claim
        # more elements than there are bytes.
        return msgpack.unpackb(bytes(frame), raw=False, strict_map_key=True, use_list=True)
    except msgpack.ExtraData:
        raise MalformedMessage("frame: more than one msgpack object") from None
    except Exception as e:  # msgpack raises ValueError, FormatError, StackError, TypeError, ...
        raise MalformedMessage(f"frame: not valid msgpack ({type(e).__name__})") from None


def from_map(obj: Any) -> Message:
    """Validate a decoded msgpack object and build the typed message."""
    if not isinstance(obj, Mapping):
        raise MalformedMessage(f"message: expected a map, found {_kind(obj)}")
    for k in obj:
        if not isinstance(k, str):
            raise MalformedMessage(f"message: expected str keys, found a {_kind(k)} key")
    if "v" not in obj:
        raise MalformedMessage("message: missing envelope key 'v'")
    v = obj["v"]
    if isinstance(v, bool) or not isinstance(v, int):
        raise MalformedMessage(f"message.v: expected int, found {_kind(v)}")
    if v != PROTOCOL_VERSION:
        raise VersionMismatch(
            f"protocol version {v} is not supported (this side speaks {PROTOCOL_VERSION})", v
        )
    for k in _ENVELOPE[1:]:
        if k not in obj:
            raise MalformedMessage(f"message: missing envelope key {k!r}")
    type_ = check_str("message.type", obj["type"])
    seq = check_seq(f"{type_}.seq", obj["seq"])
    t = check_float(f"{type_}.t", obj["t"])
    cls = MESSAGE_TYPES.get(type_)
    if cls is None:
        raise UnknownMessageType(f"unknown message type {type_!r} (seq {seq}) ignored", type_)
    kwargs: dict[str, Any] = {}
    for name, required in cls.wire_fields():
        if name in obj:
            kwargs[name] = obj[name]
        elif required:
            raise MalformedMessage(f"{type_}: missing key {name!r}")
    return cls(seq=seq, t=t, **kwargs)


def unpack(frame: bytes) -> Message:
    """Decode and validate one frame; every failure is a :class:`ProtocolError`."""
    try:
        return from_map(decode_frame(frame))
    except ProtocolError:
        raise
    except RecursionError:
        raise MalformedMessage("frame: nested too deeply") from None
