"""The controller ↔ headset bridge: PROTOCOL.md v1 over ZeroMQ and msgpack.

A component of its own: it imports nothing from ``exposure_ctrl`` (only pyzmq and msgpack), so
a headset developer can use it without the controller. The pieces:

* :mod:`unity_bridge.messages` and :mod:`unity_bridge.codec`: typed messages, ``pack``/``unpack``;
* :class:`ControllerEndpoint` (:mod:`unity_bridge.endpoint`): the controller's ROUTER, with
  handshake, heartbeats, scene acks and re-sends, panic → safe, and typed events
  (:mod:`unity_bridge.events`);
* :class:`HeadsetEmulator` and :func:`run_emulator` (:mod:`unity_bridge.emulator`): the
  reference headset (DEALER);
* :mod:`unity_bridge.security`: CURVE key pairs, the headset allow-list, the loopback rule;
* :mod:`unity_bridge.errors`: this package's exception tree;
* ``PROTOCOL.md`` and ``vectors.json`` (golden encodings) beside this file, and ``unity/``, the
  Unity package (C#) for the headset side.
"""

from unity_bridge.emulator import (
    Applied,
    EmulatorCounters,
    EmulatorStatus,
    HeadsetEmulator,
    Snapshot,
    run_emulator,
)
from unity_bridge.endpoint import ControllerEndpoint, Counters, EndpointState, RttStats
from unity_bridge.errors import (
    BridgeClosed,
    BridgeConfigError,
    BridgeError,
    BridgeStateError,
    FrameTooLarge,
    InsecureBindError,
    KeyFileError,
    MalformedMessage,
    NotAdmitted,
    ProtocolError,
    UnknownMessageType,
    VersionMismatch,
)
from unity_bridge.events import (
    BridgeEvent,
    Bye,
    Gaze,
    HeadsetConnected,
    HeadsetLost,
    HeadsetReplaced,
    Panic,
    Removed,
    SceneAcked,
    Suds,
    Worn,
)
from unity_bridge.messages import MAX_FRAME_BYTES, PROTOCOL_VERSION
from unity_bridge.security import CurveClient, CurveServer, generate_keys

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_FRAME_BYTES",
    "ControllerEndpoint",
    "EndpointState",
    "Counters",
    "RttStats",
    "HeadsetEmulator",
    "EmulatorStatus",
    "EmulatorCounters",
    "Applied",
    "Snapshot",
    "run_emulator",
    "CurveServer",
    "CurveClient",
    "generate_keys",
    "BridgeEvent",
    "HeadsetConnected",
    "HeadsetReplaced",
    "HeadsetLost",
    "Bye",
    "SceneAcked",
    "Panic",
    "Suds",
    "Removed",
    "Worn",
    "Gaze",
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
