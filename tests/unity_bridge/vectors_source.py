"""Source of the golden vectors in ``unity_bridge/vectors.json`` (not a test module).

Regenerate only when the protocol changes on purpose::

    python tests/unity_bridge/vectors_source.py > unity_bridge/vectors.json

The file is then the contract: tests in Python (test_vectors.py) and C# (Tests~/) check their
codecs against the committed bytes, so an accidental change of the encoding fails both.

Three groups:

* ``valid``: ``message`` (the wire map as JSON: a number with a decimal point is a msgpack
  float64, one without is an int) and ``msgpack`` (hex) — encoding the message must give exactly
  these bytes, and decoding the bytes must give the message;
* ``decode_only``: bytes a tolerant decoder must accept and read as ``message`` (unknown keys,
  ints for floats, float32, other key orders), though they are not the canonical encoding;
* ``invalid``: bytes a decoder must reject with ``error``: ``malformed``, ``version`` or
  ``unknown_type`` (ignored and logged, no reply).
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Any

import msgpack

SPIDER_START = {"jar": "covered", "distance_m": 3.0, "size": "tiny", "colour": "light_brown"}
SPIDER_SCENE = {"jar": "closed", "distance_m": 2.4, "size": "small", "colour": "grey"}


def _env(type_: str, seq: int, t: float, **body: Any) -> dict[str, Any]:
    return {"v": 1, "type": type_, "seq": seq, "t": t, **body}


VALID: list[tuple[str, dict[str, Any]]] = [
    ("hello", _env("hello", 1, 0.25, client="quest3", parameters=["jar", "distance_m", "size", "colour"])),
    (
        "welcome",
        _env(
            "welcome", 1, 10.5, session="S-0001", scenario="spider", state=SPIDER_START,
            safe_state=SPIDER_START, heartbeat_s=1.0, timeout_s=3.0,
        ),
    ),
    ("scene", _env("scene", 2, 11.0, state=SPIDER_SCENE, transition_s=1.5)),
    (
        "scene_int_values",
        _env("scene", 300, 1234.0625, state={"a": 0, "b": 127, "c": 128, "d": 255, "e": 256, "f": 65535,
                                              "g": 65536, "h": -1, "i": -32, "j": -33, "k": -128, "l": -129,
                                              "m": -32768, "n": -32769, "o": 4294967296, "p": -2.5},
             transition_s=0.0),
    ),
    ("ack", _env("ack", 3, 12.75, ack=2)),
    ("event_panic", _env("event", 4, 13.0, kind="panic")),
    ("event_suds", _env("event", 5, 13.5, kind="suds", value=65)),
    ("event_suds_zero", _env("event", 6, 13.75, kind="suds", value=0)),
    ("event_gaze", _env("event", 7, 14.0, kind="gaze", value=True)),
    ("event_gaze_false", _env("event", 8, 14.125, kind="gaze", value=False)),
    ("event_removed", _env("event", 9, 15.0, kind="removed")),
    ("event_worn", _env("event", 10, 16.0, kind="worn")),
    ("heartbeat", _env("heartbeat", 1, 0.5)),
    ("heartbeat_big_seq", _env("heartbeat", 70000, -1.5)),
    ("heartbeat_huge_seq", _env("heartbeat", 2**40, 1e-3)),
    ("bye", _env("bye", 11, 17.0, reason="quit")),
    ("safe", _env("safe", 3, 12.0, reason="panic")),
    ("error_hello_first", _env("error", 1, 0.0, code="hello_first", message="send hello first")),
    ("error_long_message", _env("error", 2, 0.1, code="unsupported_parameters", message="missing parameters: " + ", ".join(f"p{i:02d}" for i in range(60)))),
    ("end_replaced", _env("end", 9, 99.0, reason="replaced")),
    ("hello_unicode", _env("hello", 1, 2.0, client="casque salle 2 — café ☕ " + "x" * 20, parameters=[])),
    (
        "scene_sixteen_parameters",
        _env("scene", 12, 3.0, state={f"param_{i:02d}": (f"level_{i}" if i % 2 else float(i) / 4) for i in range(16)}, transition_s=2.0),
    ),
    ("hello_sixteen_parameters", _env("hello", 1, 4.0, client="unity", parameters=[f"param_{i:02d}" for i in range(16)])),
]


def _pack(obj: Any) -> str:
    return msgpack.packb(obj, use_bin_type=True).hex()


def _f32(x: float) -> bytes:
    return b"\xca" + struct.pack(">f", x)


def _raw_map(*pairs: tuple[bytes, bytes]) -> str:
    assert len(pairs) <= 15
    return (bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)).hex()


def _k(s: str) -> bytes:
    return msgpack.packb(s)


DECODE_ONLY: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "unknown_key_ignored",
        _pack({**_env("heartbeat", 2, 1.0), "x_future": {"nested": [1, 2, None]}}),
        _env("heartbeat", 2, 1.0),
        "unknown keys are ignored (minor versions add keys)",
    ),
    (
        "int_for_float",
        _pack(_env("scene", 5, 7, state={"jar": "open"}, transition_s=2)),
        _env("scene", 5, 7.0, state={"jar": "open"}, transition_s=2.0),
        "an int where a float is expected is read as that float",
    ),
    (
        "float32_time",
        _raw_map((_k("v"), b"\x01"), (_k("type"), _k("heartbeat")), (_k("seq"), b"\x03"), (_k("t"), _f32(0.5))),
        _env("heartbeat", 3, 0.5),
        "float32 is accepted",
    ),
    (
        "other_key_order",
        _pack({"t": 2.0, "ack": 7, "seq": 9, "type": "ack", "v": 1}),
        _env("ack", 9, 2.0, ack=7),
        "key order does not matter when decoding",
    ),
    (
        "panic_value_ignored",
        _pack(_env("event", 4, 1.0, kind="panic", value=1)),
        _env("event", 4, 1.0, kind="panic"),
        "a panic is never dropped for a stray value",
    ),
    (
        "panic_value_nil",
        _pack(_env("event", 4, 1.0, kind="panic", value=None)),
        _env("event", 4, 1.0, kind="panic"),
        "nil value is the same as an absent one",
    ),
    (
        "unknown_event_kind",
        _pack(_env("event", 4, 1.0, kind="heart_icon_tapped", value="x")),
        _env("event", 4, 1.0, kind="heart_icon_tapped", value="x"),
        "unknown event kinds decode (the controller ignores and logs them)",
    ),
]

INVALID: list[tuple[str, str, str]] = [
    ("empty", "", "malformed"),
    ("never_used_byte", "c1", "malformed"),
    ("truncated_map", _pack(_env("heartbeat", 1, 0.5))[:-4], "malformed"),
    ("two_objects", _pack(_env("heartbeat", 1, 0.5)) * 2, "malformed"),
    ("array_not_map", _pack([1, "heartbeat", 1, 0.5]), "malformed"),
    ("int_not_map", _pack(7), "malformed"),
    ("missing_v", _pack({"type": "heartbeat", "seq": 1, "t": 0.5}), "malformed"),
    ("missing_seq", _pack({"v": 1, "type": "heartbeat", "t": 0.5}), "malformed"),
    ("missing_t", _pack({"v": 1, "type": "heartbeat", "seq": 1}), "malformed"),
    ("v_is_str", _pack({**_env("heartbeat", 1, 0.5), "v": "1"}), "malformed"),
    ("v_is_2", _pack({**_env("heartbeat", 1, 0.5), "v": 2}), "version"),
    ("v_is_0_without_rest", _pack({"v": 0}), "version"),
    ("type_is_int", _pack({**_env("heartbeat", 1, 0.5), "type": 3}), "malformed"),
    ("unknown_type", _pack(_env("teleport", 1, 0.5, where="moon")), "unknown_type"),
    ("seq_zero", _pack(_env("heartbeat", 0, 0.5)), "malformed"),
    ("seq_negative", _pack(_env("heartbeat", -4, 0.5)), "malformed"),
    ("seq_is_float", _pack(_env("heartbeat", 1.0, 0.5)), "malformed"),
    ("seq_is_bool", _pack(_env("heartbeat", True, 0.5)), "malformed"),
    ("seq_too_big", _pack(_env("heartbeat", 2**63, 0.5)), "malformed"),
    ("t_is_str", _pack(_env("heartbeat", 1, "0.5")), "malformed"),
    ("t_is_nan", _pack(_env("heartbeat", 1, float("nan"))), "malformed"),
    ("t_is_inf", _pack(_env("heartbeat", 1, float("inf"))), "malformed"),
    ("t_is_nil", _pack(_env("heartbeat", 1, None)), "malformed"),
    ("int_key", msgpack.packb({**_env("heartbeat", 1, 0.5), 5: 1}, use_bin_type=True, strict_types=False).hex(), "malformed"),
    ("bin_key", _raw_map((b"\xc4\x01v", b"\x01"), (_k("type"), _k("heartbeat")), (_k("seq"), b"\x01"), (_k("t"), b"\xcb" + struct.pack(">d", 0.5))), "malformed"),
    ("bad_utf8", _raw_map((_k("v"), b"\x01"), (_k("type"), b"\xa2\xff\xfe"), (_k("seq"), b"\x01"), (_k("t"), b"\xcb" + struct.pack(">d", 0.5))), "malformed"),
    ("hello_missing_parameters", _pack(_env("hello", 1, 0.5, client="x")), "malformed"),
    ("hello_parameters_not_array", _pack(_env("hello", 1, 0.5, client="x", parameters="jar")), "malformed"),
    ("hello_parameter_not_str", _pack(_env("hello", 1, 0.5, client="x", parameters=["jar", 3])), "malformed"),
    ("hello_client_bin", _pack(_env("hello", 1, 0.5, client=b"x", parameters=[])), "malformed"),
    ("ack_missing", _pack(_env("ack", 1, 0.5)), "malformed"),
    ("ack_zero", _pack(_env("ack", 1, 0.5, ack=0)), "malformed"),
    ("event_missing_kind", _pack(_env("event", 1, 0.5)), "malformed"),
    ("suds_too_high", _pack(_env("event", 1, 0.5, kind="suds", value=101)), "malformed"),
    ("suds_negative", _pack(_env("event", 1, 0.5, kind="suds", value=-1)), "malformed"),
    ("suds_float", _pack(_env("event", 1, 0.5, kind="suds", value=50.0)), "malformed"),
    ("suds_missing", _pack(_env("event", 1, 0.5, kind="suds")), "malformed"),
    ("gaze_int", _pack(_env("event", 1, 0.5, kind="gaze", value=1)), "malformed"),
    ("scene_state_not_map", _pack(_env("scene", 1, 0.5, state=["jar"], transition_s=0.0)), "malformed"),
    ("scene_state_bool", _pack(_env("scene", 1, 0.5, state={"jar": True}, transition_s=0.0)), "malformed"),
    ("scene_state_nil", _pack(_env("scene", 1, 0.5, state={"jar": None}, transition_s=0.0)), "malformed"),
    ("scene_state_nested", _pack(_env("scene", 1, 0.5, state={"jar": {"x": 1}}, transition_s=0.0)), "malformed"),
    ("scene_state_above_int64", _pack(_env("scene", 1, 0.5, state={"n": 2**63}, transition_s=0.0)), "malformed"),
    ("scene_negative_transition", _pack(_env("scene", 1, 0.5, state={}, transition_s=-1.0)), "malformed"),
    ("scene_missing_transition", _pack(_env("scene", 1, 0.5, state={})), "malformed"),
    ("welcome_zero_heartbeat", _pack(_env("welcome", 1, 0.5, session="s", scenario="x", state={}, safe_state={}, heartbeat_s=0.0, timeout_s=3.0)), "malformed"),
    ("error_code_missing", _pack(_env("error", 1, 0.5, message="m")), "malformed"),
    ("bye_reason_int", _pack(_env("bye", 1, 0.5, reason=3)), "malformed"),
    ("ext_type_t", _raw_map((_k("v"), b"\x01"), (_k("type"), _k("heartbeat")), (_k("seq"), b"\x01"), (_k("t"), b"\xd4\x05\x00")), "malformed"),
]


def build() -> dict[str, Any]:
    """The vectors document, with every ``valid`` encoding produced by ``unity_bridge.codec``."""
    from unity_bridge.codec import from_map, pack

    valid = []
    for name, m in VALID:
        hex_ = pack(from_map(m)).hex()
        assert hex_ == _pack(m), f"{name}: codec and plain msgpack disagree"
        valid.append({"name": name, "message": m, "msgpack": hex_})
    return {
        "protocol": 1,
        "about": (
            "Golden vectors of PROTOCOL.md v1. valid: encode(message) must equal msgpack "
            "(hex) byte for byte and decode(msgpack) must equal message. decode_only: decode "
            "must accept msgpack and give message. invalid: decode must reject with error "
            "(malformed | version | unknown_type). In message, a JSON number with a decimal "
            "point or an exponent is a float64, one without is an int."
        ),
        "valid": valid,
        "decode_only": [
            {"name": n, "msgpack": h, "message": m, "why": why} for n, h, m, why in DECODE_ONLY
        ],
        "invalid": [{"name": n, "msgpack": h, "error": e} for n, h, e in INVALID],
    }


def main() -> None:
    json.dump(build(), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
