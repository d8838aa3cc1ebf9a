"""The thin layer that reads the store and the scenario file and writes reports to disk.

The rendering itself is pure (:mod:`exposure_ctrl.report.html`); here are the side effects:
loading the session, checking the scenario file against the hash recorded with the session, and
writing owner-only files.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from exposure_ctrl.clock import utc_now
from exposure_ctrl.errors import ScenarioError, StoreError
from exposure_ctrl.report.analysis import session_stats
from exposure_ctrl.report.html import ProgressRow, ReviewInput, render_progress, render_review
from exposure_ctrl.scenario import Scenario, load_scenario, resolve_scenario
from exposure_ctrl.store import SessionInfo, Store, write_private_text

__all__ = [
    "session_scenario",
    "build_review",
    "write_review",
    "default_report_path",
    "progress_rows",
    "write_progress",
]

log = logging.getLogger(__name__)


def _current_file(info: SessionInfo) -> Scenario | None:
    """The scenario file as it is now: the recorded path if it still exists, else by id."""
    try:
        if info.scenario_source and Path(info.scenario_source).is_file():
            return load_scenario(info.scenario_source)
        return resolve_scenario(info.scenario_id)
    except ScenarioError as e:
        log.info("scenario of session %d cannot be loaded now: %s", info.id, e)
        return None


def session_scenario(info: SessionInfo) -> tuple[Scenario, list[str]]:
    """The scenario a session ran with, and notes for the reader when its file changed.

    The copy recorded with the session is preferred (its targets and hierarchy were in force);
    the file on disk is used only if no usable copy was recorded. A file whose SHA-256 differs
    from the recorded one is flagged either way.
    """
    notes: list[str] = []
    recorded: Scenario | None = None
    if info.scenario_snapshot:
        try:
            recorded = Scenario.model_validate(info.scenario_snapshot)
        except ValidationError as e:
            notes.append(
                "The scenario copy recorded with this session no longer validates with this "
                f"software ({e.error_count()} problem(s)); the current file is used instead."
            )
    current = _current_file(info)
    src = info.scenario_source
    moved = bool(src) and not Path(src).is_file()  # type: ignore[arg-type]
    use = (
        "the report uses the copy recorded with the session"
        if recorded is not None
        else "the report uses the current file, whose targets or hierarchy may differ"
    )
    if moved:
        notes.append(f"The scenario file used by this session ({src}) is no longer there.")
    if current is None:
        if recorded is None:
            raise StoreError(
                f"session {info.id}: scenario {info.scenario_id!r} cannot be found and no usable "
                "copy was recorded with the session; put the scenario file back (or on "
                "$EXPOSURE_CTRL_SCENARIO_PATH) to review it"
            )
        notes.append(f"No scenario {info.scenario_id!r} is available now; {use}.")
        return recorded, notes
    if info.scenario_sha256 and current.sha256 != info.scenario_sha256:
        what = (
            f"The scenario {info.scenario_id!r} found now ({current.source}) differs from the "
            "one this session used"
            if moved
            else f"The scenario file {current.source or src} has changed since this session"
        )
        notes.append(
            f"{what} (recorded sha256 {info.scenario_sha256[:12]}…, now "
            f"{(current.sha256 or '?')[:12]}…); {use}."
        )
    elif moved:
        notes[-1] += f" An identical copy was found at {current.source}."
    return (recorded if recorded is not None else current), notes


def build_review(store: Store, session_id: int) -> ReviewInput:
    rec = store.load_session(session_id)
    sc, notes = session_scenario(rec.info)
    return ReviewInput(record=rec, scenario=sc, scenario_notes=notes, generated_at=utc_now())


def default_report_path(store: Store, session_id: int) -> Path:
    """``<store directory>/reports/session-<id>.html``."""
    return store.path.parent / "reports" / f"session-{session_id}.html"


def write_review(store: Store, session_id: int, out: Path | None = None) -> Path:
    """Render the review report of a session and write it (mode 0600); return its path."""
    text = render_review(build_review(store, session_id))
    path = Path(out) if out is not None else default_report_path(store, session_id)
    write_private_text(path, text)
    log.info("review report of session %d written to %s", session_id, path)
    return path


def progress_rows(store: Store, patient: str) -> tuple[list[ProgressRow], Scenario | None]:
    """Every session of ``patient`` with its summary, and the scenario of the latest one."""
    rows = []
    last_sc = None
    for s in store.list_sessions(patient=patient):
        rec = store.load_session(s.id)
        sc, _ = session_scenario(rec.info)
        rows.append(
            ProgressRow(
                info_id=s.id,
                started_at=s.started_at,
                scenario_id=s.scenario,
                outcome=s.outcome,
                stats=session_stats(rec, sc),
                hierarchy_len=len(sc.hierarchy),
            )
        )
        last_sc = sc
    return rows, last_sc


def write_progress(store: Store, patient: str, out: Path) -> Path:
    rows, sc = progress_rows(store, patient)
    return write_private_text(Path(out), render_progress(patient, rows, sc, utc_now()))
