"""Typed messages of protocol version 1 (see PROTOCOL.md beside this file).

Every message is a frozen, keyword-only dataclass carrying the envelope's ``seq`` and ``t``; the
``v`` and ``type`` keys are implied by the class (``PROTOCOL_VERSION`` and ``cls.TYPE``). Fields
are validated when a message is built, so an invalid message cannot exist: building one with a
wrong field raises :class:`~unity_bridge.errors.MalformedMessage` with the field's path, which is
exactly what :func:`unity_bridge.codec.unpack` reports for a bad frame.

>>> Scene(seq=3, t=12.5, state={"jar": "closed", "distance_m": 2.4}, transition_s=1.0).TYPE
'scene'

Headset → controller: :class:`Hello`, :class:`Ack`, :class:`Event`, :class:`Heartbeat`,
:class:`Bye`. Controller → headset: :class:`Welcome`, :class:`Scene`, :class:`Safe`,
:class:`Heartbeat`, :class:`Error`, :class:`End`.

Numbers: float fields accept a msgpack int too (some encoders write ``1.0`` as ``1``) and store a
``float``; every float must be finite. ``seq`` and ``ack`` are ints from 1 to 2**63-1. A state map
has string keys and str or number values (bool is not a number here; ints are int64 so that every
client language can hold them). In an :class:`Event`, the
``value`` is checked per kind: ``suds`` needs an int 0..100, ``gaze`` a bool; for ``panic``,
``removed`` and ``worn`` a value is ignored (a panic must never be dropped for a stray value);
unknown kinds keep their value as received and are ignored by the controller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Union

from unity_bridge.errors import MalformedMessage

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_FRAME_BYTES",
    "SEQ_MAX",
    "ERROR_CODES",
    "EVENT_KINDS",
    "StateValue",
    "Message",
    "Hello",
    "Ack",
    "Event",
    "Heartbeat",
    "Bye",
    "Welcome",
    "Scene",
    "Safe",
    "Error",
    "End",
    "MESSAGE_TYPES",
    "check_state",
]

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 65_536
SEQ_MAX = 2**63 - 1

ERROR_CODES = (
    "hello_first",
    "version",
    "unsupported_parameters",
    "malformed",
    "busy",
    "unauthorised",
)
EVENT_KINDS = ("panic", "suds", "removed", "worn", "gaze")

StateValue = Union[str, int, float]


# --- field checks ----------------------------------------------------------------------------


def _kind(x: Any) -> str:
    """Name a found value's type the way the protocol does (for error messages)."""
    if x is None:
        return "nil"
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str):
        return "str"
    if isinstance(x, (bytes, bytearray)):
        return "bin"
    if isinstance(x, (list, tuple)):
        return "array"
    if isinstance(x, Mapping):
        return "map"
    return type(x).__name__


def _bad(where: str, expected: str, found: Any) -> MalformedMessage:
    return MalformedMessage(f"{where}: expected {expected}, found {_kind(found)}")


def check_str(where: str, x: Any) -> str:
    if not isinstance(x, str):
        raise _bad(where, "str", x)
    return x


def check_seq(where: str, x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _bad(where, "int", x)
    if not 1 <= x <= SEQ_MAX:
        raise MalformedMessage(f"{where}: expected an int from 1 to 2**63-1, found {x}")
    return x


def check_float(where: str, x: Any, *, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise _bad(where, "float", x)
    try:
        f = float(x)
    except OverflowError:  # an int too large for a double
        raise MalformedMessage(f"{where}: expected a finite float, found {x}") from None
    if not math.isfinite(f):
        raise MalformedMessage(f"{where}: expected a finite float, found {f}")
    if positive and f <= 0.0:
        raise MalformedMessage(f"{where}: expected a float > 0, found {f}")
    if minimum is not None and f < minimum:
        raise MalformedMessage(f"{where}: expected a float >= {minimum}, found {f}")
    return f


def check_state(where: str, x: Any) -> dict[str, StateValue]:
    """Check a state map (parameter id → str or number) and return a plain ``dict`` copy."""
    if not isinstance(x, Mapping):
        raise _bad(where, "map", x)
    out: dict[str, StateValue] = {}
    for k, v in x.items():
        if not isinstance(k, str):
            raise MalformedMessage(f"{where}: expected str keys, found a {_kind(k)} key")
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(f"{where}.{k}", "str or number", v)
        elif isinstance(v, float) and not math.isfinite(v):
            raise MalformedMessage(f"{where}.{k}: expected a finite number, found {v}")
        elif isinstance(v, int) and not -(2**63) <= v <= 2**63 - 1:
            raise MalformedMessage(f"{where}.{k}: expected an int64 (-2**63..2**63-1), found {v}")
        else:
            out[k] = v
    return out


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


# --- messages --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Message:
    """Envelope shared by every message: the sender's ``seq`` (1, 2, 3, … per connection) and
    its monotonic clock ``t`` in seconds (for latency figures, not for ordering)."""

    TYPE: ClassVar[str] = ""
    seq: int
    t: float

    def __post_init__(self) -> None:
        check_seq(f"{self.TYPE}.seq", self.seq)
        _set(self, "t", check_float(f"{self.TYPE}.t", self.t))
        self._check()

    def _check(self) -> None:
        """Validate (and normalise) the fields of the concrete type."""

    @classmethod
    def wire_fields(cls) -> tuple[tuple[str, bool], ...]:
        """The type's own keys in wire order, each with whether it is required."""
        return tuple(
            (f.name, f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls)
            if f.name not in ("seq", "t")
        )

    def body(self) -> dict[str, Any]:
        """The type's own keys in declaration order, as they go on the wire."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("seq", "t")}


@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    """Headset → controller, first message: who it is and which parameters it can render."""

    TYPE: ClassVar[str] = "hello"
    client: str
    parameters: tuple[str, ...]

    def _check(self) -> None:
        check_str("hello.client", self.client)
        p = self.parameters
        if not isinstance(p, (list, tuple)):
            raise _bad("hello.parameters", "array of str", p)
        for i, x in enumerate(p):
            check_str(f"hello.parameters[{i}]", x)
        _set(self, "parameters", tuple(p))

    def body(self) -> dict[str, Any]:
        return {"client": self.client, "parameters": list(self.parameters)}


@dataclass(frozen=True, kw_only=True)
class Ack(Message):
    """Headset → controller: the ``scene`` with seq ``ack`` is fully shown (transition done)."""

    TYPE: ClassVar[str] = "ack"
    ack: int

    def _check(self) -> None:
        check_seq("ack.ack", self.ack)


@dataclass(frozen=True, kw_only=True)
class Event(Message):
    """Headset → controller: ``panic``, ``suds`` (int 0..100), ``removed``, ``worn``,
    ``gaze`` (bool). ``value`` is ``None`` when absent (the key is then not sent)."""

    TYPE: ClassVar[str] = "event"
    kind: str
    value: Any = None

    def _check(self) -> None:
        check_str("event.kind", self.kind)
        v = self.value
        if self.kind == "suds":
            if isinstance(v, bool) or not isinstance(v, int):
                raise _bad("event.value", "int 0..100 for kind suds", v)
            if not 0 <= v <= 100:
                raise MalformedMessage(f"event.value: expected int 0..100 for kind suds, found {v}")
        elif self.kind == "gaze":
            if not isinstance(v, bool):
                raise _bad("event.value", "bool for kind gaze", v)
        elif self.kind in ("panic", "removed", "worn"):
            _set(self, "value", None)

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind} if self.value is None else {"kind": self.kind, "value": self.value}


@dataclass(frozen=True, kw_only=True)
class Heartbeat(Message):
    """Either direction: liveness, sent whenever nothing else was sent for ``heartbeat_s``."""

    TYPE: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, kw_only=True)
class Bye(Message):
    """Headset → controller: orderly leave."""

    TYPE: ClassVar[str] = "bye"
    reason: str

    def _check(self) -> None:
        check_str("bye.reason", self.reason)


@dataclass(frozen=True, kw_only=True)
class Welcome(Message):
    """Controller → headset, reply to ``hello``: ``state`` is the scene to show now."""

    TYPE: ClassVar[str] = "welcome"
    session: str
    scenario: str
    state: dict[str, StateValue]
    safe_state: dict[str, StateValue]
    heartbeat_s: float
    timeout_s: float

    def _check(self) -> None:
        check_str("welcome.session", self.session)
        check_str("welcome.scenario", self.scenario)
        _set(self, "state", check_state("welcome.state", self.state))
        _set(self, "safe_state", check_state("welcome.safe_state", self.safe_state))
        _set(self, "heartbeat_s", check_float("welcome.heartbeat_s", self.heartbeat_s, positive=True))
        _set(self, "timeout_s", check_float("welcome.timeout_s", self.timeout_s, positive=True))


@dataclass(frozen=True, kw_only=True)
class Scene(Message):
    """Controller → headset: the complete scene state (not a diff); idempotent; must be acked."""

    TYPE: ClassVar[str] = "scene"
    state: dict[str, StateValue]
    transition_s: float

    def _check(self) -> None:
        _set(self, "state", check_state("scene.state", self.state))
        _set(self, "transition_s", check_float("scene.transition_s", self.transition_s, minimum=0.0))


@dataclass(frozen=True, kw_only=True)
class Safe(Message):
    """Controller → headset: show ``safe_state`` now."""

    TYPE: ClassVar[str] = "safe"
    reason: str

    def _check(self) -> None:
        check_str("safe.reason", self.reason)


@dataclass(frozen=True, kw_only=True)
class Error(Message):
    """Controller → headset: ``code`` is one of :data:`ERROR_CODES` (others are accepted as
    future codes), ``message`` says what was wrong."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str

    def _check(self) -> None:
        check_str("error.code", self.code)
        check_str("error.message", self.message)


@dataclass(frozen=True, kw_only=True)
class End(Message):
    """Controller → headset: session over, or this peer was replaced (``reason="replaced"``)."""

    TYPE: ClassVar[str] = "end"
    reason: str

    def _check(self) -> None:
        check_str("end.reason", self.reason)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Hello, Ack, Event, Heartbeat, Bye, Welcome, Scene, Safe, Error, End)
}
