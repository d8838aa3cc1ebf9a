"""The vocabulary of the session store: enums, patient codes, and the typed rows read back.

Writing goes through :class:`~exposure_ctrl.store.writer.SessionWriter`; reading returns the frozen
dataclasses below (one per table), gathered per session in :class:`SessionRecord`.

Times: every ``t`` is in *session seconds* (0 = the moment the session started, on the session's
monotonic clock); the session's UTC wall-clock start is ``SessionInfo.started_at``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import logging
import re
from typing import Any

from exposure_ctrl.errors import PatientCodeError

__all__ = [
    "Outcome",
    "Phase",
    "Mode",
    "Trigger",
    "GapKind",
    "SudsSource",
    "Response",
    "validate_patient_code",
    "SessionInfo",
    "SessionSummary",
    "Sample",
    "Baseline",
    "Decision",
    "SceneChange",
    "Event",
    "Gap",
    "Suds",
    "Note",
    "ModelEstimate",
    "PhaseChange",
    "Command",
    "SessionRecord",
]

log = logging.getLogger(__name__)


class _StrEnum(str, enum.Enum):
    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: "str | _StrEnum", what: str) -> "_StrEnum":
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"{what} must be one of {allowed}; found {value!r}") from None


class Outcome(_StrEnum):
    """How a session ended."""

    COMPLETED = "completed"
    THERAPIST_ENDED = "therapist_ended"
    ABORTED_BY_PATIENT = "aborted_by_patient"
    SAFETY = "safety"


class Phase(_StrEnum):
    """Session phases, in order (DESIGN.md)."""

    BASELINE = "baseline"
    EXPOSURE = "exposure"
    RECOVERY = "recovery"
    ENDED = "ended"


class Mode(_StrEnum):
    """Who acts: the policy (autonomous), the therapist on the policy's advice, or the therapist."""

    AUTONOMOUS = "autonomous"
    ADVISORY = "advisory"
    MANUAL = "manual"


class Trigger(_StrEnum):
    """Who caused a scene change."""

    POLICY = "policy"
    SHIELD = "shield"
    THERAPIST = "therapist"
    SYSTEM = "system"


class GapKind(_StrEnum):
    """What went missing during a gap."""

    SENSOR = "sensor"
    HEADSET = "headset"


class SudsSource(_StrEnum):
    """Where a SUDS rating came from."""

    THERAPIST = "therapist"
    HEADSET = "headset"


class Response(_StrEnum):
    """The therapist's answer to a proposal in advisory mode."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


# --- patient codes ---------------------------------------------------------------------------

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")
_CAPITALISED = re.compile(r"^[A-Z][a-z]+$")
_CAMEL_WORDS = re.compile(r"[A-Z][a-z]+")


def validate_patient_code(code: str) -> str:
    """Return ``code`` if it is a valid pseudonymous patient code; else :class:`PatientCodeError`.

    A code is 2-32 characters of letters, digits, ``_`` and ``-``, starting with a letter or
    digit (e.g. ``P-0042``). Anything that looks like a person's name is refused: spaces, or two
    or more capitalised words (``Jane_Doe``, ``JaneDoe``). A code without any digit is accepted
    with a logged warning, since a single word may still be a name.
    """
    if not isinstance(code, str):
        raise PatientCodeError(f"a patient code is text such as 'P-0042'; found {code!r}")
    hint = "use a pseudonymous code such as 'P-0042', never a name"
    if any(ch.isspace() for ch in code):
        raise PatientCodeError(
            f"patient code {code!r} contains a space and looks like a name; {hint}"
        )
    if not _CODE.match(code):
        raise PatientCodeError(
            f"patient code {code!r} is malformed: expected 2-32 letters, digits, '_' or '-', "
            f"starting with a letter or digit; {hint}"
        )
    parts = [p for p in re.split(r"[_-]+", code) if p]
    words = [p for p in parts if _CAPITALISED.match(p)]
    camel = _CAMEL_WORDS.findall(code)
    if (len(parts) >= 2 and len(words) >= 2) or (
        len(parts) == 1 and "".join(camel) == code and len(camel) >= 2
    ):
        raise PatientCodeError(
            f"patient code {code!r} looks like a person's name (capitalised words); {hint}"
        )
    if not any(ch.isdigit() for ch in code):
        log.warning("patient code %r has no digit; make sure it is not a name", code)
    return code


# --- rows ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """One row of ``sessions``: what ran, with what, and how it ended."""

    id: int
    uid: str
    patient: str
    scenario_id: str
    scenario_version: int | None
    scenario_sha256: str | None
    scenario_source: str | None
    scenario_snapshot: dict[str, Any] | None
    policy_id: str | None
    policy_sha256: str | None
    software: dict[str, str]
    settings: dict[str, Any]
    seed: int | None
    mode: str
    started_at: _dt.datetime
    ended_at: _dt.datetime | None
    duration_s: float | None
    outcome: str | None
    end_reason: str | None


@dataclasses.dataclass(frozen=True)
class SessionSummary:
    """A line of ``exposure-ctrl sessions list``."""

    id: int
    patient: str
    scenario: str
    started_at: _dt.datetime
    ended_at: _dt.datetime | None
    outcome: str | None
    mode: str
    n_samples: int
    n_scene_changes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "patient": self.patient,
            "scenario": self.scenario,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "outcome": self.outcome,
            "mode": self.mode,
            "n_samples": self.n_samples,
            "n_scene_changes": self.n_scene_changes,
        }


@dataclasses.dataclass(frozen=True)
class Sample:
    t: float
    bpm: float
    rr_ms: tuple[float, ...]
    contact: bool | None
    flags: int
    source: str


@dataclasses.dataclass(frozen=True)
class Baseline:
    t: float
    bpm: float
    sd_bpm: float
    quality: float
    n_samples: int | None


@dataclasses.dataclass(frozen=True)
class Decision:
    seq: int
    t: float
    phase: str | None
    mode: str
    observation: dict[str, Any]
    proposed_action: int | None
    proposed_label: str | None
    proposal_reason: str | None
    verdict: str
    verdict_reason: str | None
    executed_action: int | None
    executed_label: str | None
    response: str | None
    responded_by: str | None
    response_t: float | None

    @property
    def shield_intervened(self) -> bool:
        """True when the shield changed or refused the policy's proposal."""
        return self.verdict != "allow"


@dataclasses.dataclass(frozen=True)
class SceneChange:
    seq: int
    t: float
    state: dict[str, Any]
    intensity: float | None
    hierarchy_index: int | None
    trigger: str
    who: str | None
    reason: str | None
    sent_t: float | None
    acked_t: float | None
    rtt_ms: float | None
    wire_seq: int | None
    resends: int


@dataclasses.dataclass(frozen=True)
class Event:
    """A headset or sensor event (``kind`` e.g. connected, lost, panic, removed, gaze)."""

    t: float
    kind: str
    detail: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Gap:
    seq: int
    kind: str
    start_t: float
    end_t: float | None  # None: still open when the record ends
    reason: str | None


@dataclasses.dataclass(frozen=True)
class Suds:
    t: float
    value: int
    source: str
    who: str | None


@dataclasses.dataclass(frozen=True)
class Note:
    t: float
    text: str
    author: str


@dataclasses.dataclass(frozen=True)
class ModelEstimate:
    """Per-parameter sensitivity ``{parameter id: {"mean": m, "sd": s}}`` in ``unit``, and any
    ``detail`` the response model gave."""

    t: float
    estimates: dict[str, dict[str, float]]
    unit: str = "bpm"
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PhaseChange:
    t: float
    phase: str
    reason: str | None


@dataclasses.dataclass(frozen=True)
class Command:
    t: float
    who: str
    command: str
    args: dict[str, Any]
    result: str | None


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    """Everything stored about one session, in time order."""

    info: SessionInfo
    samples: list[Sample]
    baselines: list[Baseline]
    decisions: list[Decision]
    scene_changes: list[SceneChange]
    headset_events: list[Event]
    sensor_events: list[Event]
    gaps: list[Gap]
    suds: list[Suds]
    notes: list[Note]
    estimates: list[ModelEstimate]
    phases: list[PhaseChange]
    commands: list[Command]

    @property
    def baseline(self) -> Baseline | None:
        """The latest baseline measured in the session, if any."""
        return self.baselines[-1] if self.baselines else None

    @property
    def end_t(self) -> float:
        """Last known session time: the end, or the latest record after a crash."""
        if self.info.duration_s is not None:
            return self.info.duration_s
        ts = [0.0]
        for rows in (self.samples, self.decisions, self.scene_changes, self.phases, self.suds):
            if rows:
                ts.append(rows[-1].t)
        return max(ts)
