"""The golden vectors (unity_bridge/vectors.json): the Python codec must match them byte for byte.

The C# package checks the same file (test_bridge_unity_package.py runs its tests).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from vectors_source import build

from unity_bridge.codec import from_map, pack, to_map, unpack
from unity_bridge.errors import MalformedMessage, UnknownMessageType, VersionMismatch
from unity_bridge.messages import Heartbeat

VECTORS = json.loads(resources.files("unity_bridge").joinpath("vectors.json").read_text(encoding="utf-8"))
ERRORS = {"malformed": MalformedMessage, "version": VersionMismatch, "unknown_type": UnknownMessageType}


def _ids(group: str) -> list[str]:
    return [v["name"] for v in VECTORS[group]]


@pytest.mark.parametrize("vec", VECTORS["valid"], ids=_ids("valid"))
def test_valid_vector_encodes_and_decodes_exactly(vec: dict[str, Any]) -> None:
    msg = from_map(vec["message"])
    assert pack(msg).hex() == vec["msgpack"]
    decoded = unpack(bytes.fromhex(vec["msgpack"]))
    assert decoded == msg
    assert to_map(decoded) == vec["message"]


@pytest.mark.parametrize("vec", VECTORS["decode_only"], ids=_ids("decode_only"))
def test_decode_only_vector_is_accepted(vec: dict[str, Any]) -> None:
    assert unpack(bytes.fromhex(vec["msgpack"])) == from_map(vec["message"])


@pytest.mark.parametrize("vec", VECTORS["invalid"], ids=_ids("invalid"))
def test_invalid_vector_is_rejected_with_its_error(vec: dict[str, Any]) -> None:
    with pytest.raises(ERRORS[vec["error"]]):
        unpack(bytes.fromhex(vec["msgpack"]))


def test_every_message_type_has_a_valid_vector() -> None:
    types = {v["message"]["type"] for v in VECTORS["valid"]}
    assert types == {"hello", "ack", "event", "heartbeat", "bye", "welcome", "scene", "safe", "error", "end"}


def test_a_vector_checked_by_hand() -> None:
    """Independent of the codec: the bytes of heartbeat(seq=1, t=0.5) spelled out."""
    expected = (
        "84"  # fixmap, 4 entries
        "a176" "01"  # "v": 1
        "a474797065" "a9" + b"heartbeat".hex()  # "type": "heartbeat"
        + "a3736571" "01"  # "seq": 1
        "a174" "cb3fe0000000000000"  # "t": float64 0.5
    )
    vec = next(v for v in VECTORS["valid"] if v["name"] == "heartbeat")
    assert vec["msgpack"] == expected
    assert pack(Heartbeat(seq=1, t=0.5)).hex() == expected


def test_committed_file_is_what_the_source_describes() -> None:
    """vectors.json was generated from vectors_source.py and not edited by hand since."""
    assert build() == VECTORS


def test_the_protocol_copy_begins_with_the_shared_contract_unchanged() -> None:
    """unity_bridge/PROTOCOL.md = ../shared/PROTOCOL.md + detail (only where shared/ is beside)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    shared = repo.parent / "shared" / "PROTOCOL.md"
    if not shared.is_file():
        pytest.skip(f"{shared} is not beside this checkout")
    ours = (repo / "unity_bridge" / "PROTOCOL.md").read_text(encoding="utf-8")
    assert ours.startswith(shared.read_text(encoding="utf-8")), "PROTOCOL.md no longer starts with the shared contract"
