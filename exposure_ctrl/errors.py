"""One exception tree for exposure-ctrl, split by the phase in which things go wrong.

::

    ExposureCtrlError                     every error this package raises on purpose
    ├── ConfigError (ValueError)          before a session: settings, command-line options
    │   ├── ScenarioError                 a scenario file is wrong (file:line:col, key path, fix)
    │   ├── PolicyMismatchError           a policy does not fit its scenario (what differs)
    │   └── PatientCodeError              a patient code looks like a name, or is malformed
    ├── SensorError                       heart-rate sources
    │   ├── SensorDataError (ValueError)  a packet or record is malformed (what is wrong)
    │   ├── SensorTimeout (TimeoutError)  no sample for too long: the controller is blind
    │   └── SensorUnavailable             no adapter, no strap found, permission denied (.reason)
    ├── HeadsetError                      the headset side of the bridge
    │   └── HeadsetLost (TimeoutError)    nothing heard from the headset for timeout_s
    ├── StoreError                        the session store
    │   └── StoreVersionError             the file's schema is newer than this software
    ├── SessionStateError                 an illegal phase or mode transition (from → to)
    └── SafetyStop                        the session was stopped for safety (.reason)

Rules: messages say what was expected, what was found, and the likely fix. User input is
checked with these exceptions, never with ``assert``. The command line turns a ``ConfigError``
into one paragraph on stderr and exit status 2, never a traceback.

The wire protocol (``unity_bridge``) keeps its own small tree, because it imports nothing from
this package; the session translates its errors at the boundary.
"""

from __future__ import annotations

import enum

__all__ = [
    "ExposureCtrlError",
    "ConfigError",
    "ScenarioError",
    "PolicyMismatchError",
    "PatientCodeError",
    "SensorError",
    "SensorDataError",
    "SensorTimeout",
    "SensorUnavailable",
    "SensorUnavailableReason",
    "HeadsetError",
    "HeadsetLost",
    "StoreError",
    "StoreVersionError",
    "SessionStateError",
    "SafetyStop",
]


class ExposureCtrlError(Exception):
    """Base class of every error exposure-ctrl raises on purpose."""


# --- configuration ---------------------------------------------------------------------------


class ConfigError(ExposureCtrlError, ValueError):
    """A setting or option is wrong. Raised before anything runs."""


class ScenarioError(ConfigError):
    """A scenario file or model is invalid.

    ``str(err)`` is the full report (one line per problem, each ``file:line:col: key.path:
    message``); ``err.problems`` holds them one by one.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems else [message]


class PolicyMismatchError(ConfigError):
    """A policy was trained for another scenario, parameter set or action space."""


class PatientCodeError(ConfigError):
    """A patient code is malformed or looks like a person's name (pseudonyms only)."""


# --- sensors ---------------------------------------------------------------------------------


class SensorError(ExposureCtrlError):
    """Something went wrong with a heart-rate source."""


class SensorDataError(SensorError, ValueError):
    """A packet or a recorded line is malformed; the message says what is wrong."""


class SensorTimeout(SensorError, TimeoutError):
    """No usable heart-rate sample for longer than the configured staleness limit."""


class SensorUnavailableReason(str, enum.Enum):
    """Why a heart-rate source cannot be used at all."""

    NO_BLUETOOTH = "no_bluetooth"  # no adapter, no BlueZ/D-Bus, radio off
    NOT_FOUND = "not_found"  # no strap matching the name, address or service
    PERMISSION = "permission"  # the OS refused access
    FILE = "file"  # a replay file is missing or unreadable


class SensorUnavailable(SensorError):
    """The source cannot be used; ``reason`` says why, the message says what to do."""

    def __init__(self, message: str, reason: SensorUnavailableReason) -> None:
        super().__init__(message)
        self.reason = reason


# --- headset ---------------------------------------------------------------------------------


class HeadsetError(ExposureCtrlError):
    """Something went wrong on the headset side of the bridge."""


class HeadsetLost(HeadsetError, TimeoutError):
    """Nothing was heard from the headset for the protocol's ``timeout_s``."""


# --- store -----------------------------------------------------------------------------------


class StoreError(ExposureCtrlError):
    """The session store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by newer software (its schema version is unknown here)."""


# --- session ---------------------------------------------------------------------------------


class SessionStateError(ExposureCtrlError):
    """An illegal phase or mode transition was requested."""

    def __init__(self, message: str, *, current: str | None = None, requested: str | None = None):
        super().__init__(message)
        self.current = current
        self.requested = requested


class SafetyStop(ExposureCtrlError):
    """The session was stopped for safety; ``reason`` is the shield's reason code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
