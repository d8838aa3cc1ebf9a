"""Typed records the environments emit to an optional recorder (instead of history lists).

A recorder is anything with ``record(rec)`` (:class:`Recorder`); :class:`ListRecorder` keeps
them in memory. Records carry the row (patient slot) they belong to, so one recorder serves a
vector environment too. Ground truth appears only in :class:`StepRecord` ``truth_*`` fields,
for evaluation.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Union, runtime_checkable

__all__ = ["SessionStart", "StepRecord", "SessionEnd", "Record", "Recorder", "ListRecorder"]


@dataclasses.dataclass(frozen=True)
class SessionStart:
    """A session began (after its baseline phase)."""

    row: int
    t_s: float
    scenario_id: str
    scenario_sha256: str | None
    cohort: str
    split: str
    patient_index: int
    session: int  # 0-based index within the patient's course
    baseline_bpm: float
    baseline_good: bool
    baseline_reasons: str
    versions: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One decision period of one patient."""

    row: int
    t_s: float  # session time at the decision
    positions: tuple[int, ...]  # the scene shown during the period
    proposed: int
    executed: int
    shield_reason: str
    go_safe: bool
    reward: float
    in_window: float
    above_ceiling: float
    hr_above_bpm: float  # the feature the live controller would see
    suds: float | None  # a rating given at the end of the period
    aborted: bool
    truth_fear: float
    truth_arousal_bpm: float


@dataclasses.dataclass(frozen=True)
class SessionEnd:
    """A session ended: ``how`` is ``completed`` (exposure time over) or ``aborted``."""

    row: int
    t_s: float
    how: str
    exposure_s: float
    highest_step: int
    time_in_window_frac: float
    recovery_s: float | None  # time to get back near baseline in the recovery phase


Record = Union[SessionStart, StepRecord, SessionEnd]


@runtime_checkable
class Recorder(Protocol):
    def record(self, rec: Record) -> None: ...


class ListRecorder:
    """Keeps every record in ``records``."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def record(self, rec: Record) -> None:
        self.records.append(rec)

    def of(self, kind: type) -> list:
        return [r for r in self.records if isinstance(r, kind)]
