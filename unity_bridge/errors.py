"""The bridge's own exception tree (``unity_bridge`` imports nothing from ``exposure_ctrl``).

::

    BridgeError                           every error this package raises on purpose
    ├── ProtocolError (ValueError)        a frame or message breaks PROTOCOL.md; ``.code`` is the
    │   │                                 error code the controller answers with (or None)
    │   ├── MalformedMessage              not msgpack, not a map, envelope or field types wrong
    │   │   └── FrameTooLarge             more than 65,536 bytes
    │   ├── VersionMismatch               ``v`` is not 1 (``.version`` holds what was found)
    │   └── UnknownMessageType            a ``type`` this version does not know (ignored, logged)
    ├── BridgeConfigError (ValueError)    bad settings given to an endpoint, emulator or key tool
    │   ├── InsecureBindError             plaintext listening beyond loopback without ``insecure``
    │   └── KeyFileError                  a CURVE key file or allow-list directory is missing/bad
    ├── BridgeStateError                  an illegal lifecycle step (start twice, send after close)
    │   └── BridgeClosed                  the endpoint or emulator is closed
    └── NotAdmitted                       the headset side was refused (``.code``: version, ...)

The session translates these at its boundary into ``exposure_ctrl.errors``; nothing here knows
that tree. Messages say what was expected, what was found and, where it helps, the fix.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BridgeError",
    "ProtocolError",
    "MalformedMessage",
    "FrameTooLarge",
    "VersionMismatch",
    "UnknownMessageType",
    "BridgeConfigError",
    "InsecureBindError",
    "KeyFileError",
    "BridgeStateError",
    "BridgeClosed",
    "NotAdmitted",
]


class BridgeError(Exception):
    """Base class of every error ``unity_bridge`` raises on purpose."""


# --- wire ------------------------------------------------------------------------------------


class ProtocolError(BridgeError, ValueError):
    """A frame or message does not follow PROTOCOL.md.

    ``code`` is the protocol error code the controller replies with (``"malformed"``,
    ``"version"``), or ``None`` when the message is to be ignored without a reply.
    """

    code: str | None = "malformed"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class MalformedMessage(ProtocolError):
    """Not msgpack, not a map with string keys, envelope keys missing, or a field of wrong type."""

    code = "malformed"


class FrameTooLarge(MalformedMessage):
    """A frame is larger than the protocol's 65,536-byte limit."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class VersionMismatch(ProtocolError):
    """The envelope's ``v`` is not this implementation's major version (1)."""

    code = "version"

    def __init__(self, message: str, version: Any) -> None:
        super().__init__(message)
        self.version = version


class UnknownMessageType(ProtocolError):
    """A well-formed envelope with a ``type`` this version does not know: ignored and logged."""

    code = None

    def __init__(self, message: str, type_: str) -> None:
        super().__init__(message)
        self.type = type_


# --- configuration ---------------------------------------------------------------------------


class BridgeConfigError(BridgeError, ValueError):
    """A setting given to the endpoint, the emulator or the key tools is wrong."""


class InsecureBindError(BridgeConfigError):
    """Listening beyond loopback in plaintext was requested without the explicit insecure flag."""


class KeyFileError(BridgeConfigError):
    """A CURVE key file or the allow-list directory is missing, unreadable or malformed."""


# --- lifecycle -------------------------------------------------------------------------------


class BridgeStateError(BridgeError):
    """An operation is illegal in the object's current lifecycle state (from → requested)."""


class BridgeClosed(BridgeStateError):
    """The endpoint or emulator has been closed."""


class NotAdmitted(BridgeError):
    """The controller refused this headset (``code``: ``version`` or ``unsupported_parameters``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
