"""Terminal renderings (rich tables) of the session list and a patient's progress; pure."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from exposure_ctrl.report.html import ProgressRow, fmt_duration
from exposure_ctrl.store.records import SessionSummary

__all__ = ["sessions_table", "sessions_json", "progress_table", "progress_json"]


def _when(dt: _dt.datetime | None) -> str:
    return "–" if dt is None else dt.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def sessions_json(rows: Sequence[SessionSummary]) -> str:
    return json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False) + "\n"


def sessions_table(rows: Sequence[SessionSummary]) -> Table:
    t = Table(title=None, show_lines=False)
    for col, justify in (("id", "right"), ("patient", "left"), ("scenario", "left"),
                         ("started", "left"), ("duration", "right"), ("outcome", "left"),
                         ("mode", "left"), ("samples", "right"), ("scene changes", "right")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        dur = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
        t.add_row(str(r.id), r.patient, r.scenario, _when(r.started_at),
                  fmt_duration(dur) if dur is not None else "–",
                  r.outcome or "[red]no end recorded[/red]", r.mode, str(r.n_samples),
                  str(r.n_scene_changes))
    return t


def _progress_dict(r: ProgressRow) -> dict[str, Any]:
    st = r.stats
    return {
        "session": r.info_id,
        "started_at": r.started_at.isoformat(),
        "scenario": r.scenario_id,
        "outcome": r.outcome,
        "step_reached": None if st.step_reached is None else st.step_reached + 1,
        "step_reached_name": st.step_reached_name,
        "hierarchy_steps": r.hierarchy_len,
        "time_in_window_frac": st.time_in_window_frac,
        "time_in_window_s": st.time_in_window_s,
        "peak_rise_bpm": st.peak_rise_bpm,
        "peak_rise_per_step_bpm": {
            str(lv.index + 1): lv.peak_rise_bpm for lv in st.levels
            if lv.index >= 0 and lv.peak_rise_bpm is not None
        },
        "habituation_per_step_bpm": {
            str(lv.index + 1): lv.habituation_bpm for lv in st.levels
            if lv.index >= 0 and lv.habituation_bpm is not None
        },
    }


def progress_json(patient: str, rows: Sequence[ProgressRow]) -> str:
    return json.dumps({"patient": patient, "sessions": [_progress_dict(r) for r in rows]},
                      indent=2, ensure_ascii=False) + "\n"


def progress_table(patient: str, rows: Sequence[ProgressRow]) -> Table:
    t = Table(title=f"Progress of patient {patient}")
    for col, justify in (("session", "right"), ("started", "left"), ("scenario", "left"),
                         ("outcome", "left"), ("step reached", "right"),
                         ("in window", "right"), ("peak rise", "right"),
                         ("peak rise per step (bpm)", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        st = r.stats
        step = (f"{st.step_reached + 1}/{r.hierarchy_len}"
                if st.step_reached is not None and st.step_reached >= 0 else "–")
        frac = st.time_in_window_frac
        t.add_row(
            str(r.info_id), _when(r.started_at), r.scenario_id, r.outcome or "no end recorded",
            step, "–" if frac is None else f"{100 * frac:.0f} %",
            "–" if st.peak_rise_bpm is None else f"{st.peak_rise_bpm:+.1f}",
            "  ".join(f"{lv.index + 1}:{lv.peak_rise_bpm:+.0f}" for lv in st.levels
                      if lv.index >= 0 and lv.peak_rise_bpm is not None),
        )
    return t
