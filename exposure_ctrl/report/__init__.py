"""Review report, progress across sessions, and export.

- :func:`render_review` / :func:`render_progress` (pure): records in, one self-contained HTML
  document out (inline CSS and SVG, no script, a CSP that forbids any fetch).
- :func:`write_review` / :func:`write_progress`: the thin layer that reads the store and writes
  owner-only files.
- :func:`render_json` / :func:`render_csv`: export.
- :mod:`~exposure_ctrl.report.analysis`: time in window, peak rise, habituation per level, step
  reached.
"""

from exposure_ctrl.report.analysis import SessionStats, heart_series, session_stats
from exposure_ctrl.report.export import render_csv, render_json, session_to_dict
from exposure_ctrl.report.html import ReviewInput, render_progress, render_review
from exposure_ctrl.report.review import (
    build_review,
    default_report_path,
    progress_rows,
    session_scenario,
    write_progress,
    write_review,
)

__all__ = [
    "SessionStats",
    "heart_series",
    "session_stats",
    "render_csv",
    "render_json",
    "session_to_dict",
    "ReviewInput",
    "render_review",
    "render_progress",
    "build_review",
    "default_report_path",
    "progress_rows",
    "session_scenario",
    "write_progress",
    "write_review",
]
