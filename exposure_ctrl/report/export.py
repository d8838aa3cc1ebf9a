"""Export a session's record as JSON (one document) or CSV (one table), pure functions.

JSON: ``{"format": "exposure-ctrl-session", "format_version": 1, "session": {...}, "samples":
[...], "decisions": [...], ...}``, every table of the store, times in session seconds.

CSV: one row per record of any kind, in time order, with a ``record`` column (``sample``,
``decision``, ``scene_change``, ``headset_event``, ``sensor_event``, ``gap``, ``suds``, ``note``,
``estimate``, ``phase``, ``command``, ``baseline``) and the union of all fields as columns
(empty where a field does not apply); nested values (states, observations) are JSON text. Filter
on ``record`` in a spreadsheet or with pandas. The session's own fields are in the JSON export
and in ``# key: value`` comment lines at the top of the CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

from exposure_ctrl.store.records import SessionRecord

__all__ = ["FORMAT", "FORMAT_VERSION", "session_to_dict", "render_json", "render_csv"]

FORMAT = "exposure-ctrl-session"
FORMAT_VERSION = 1

_TABLES = (
    ("sample", "samples"),
    ("baseline", "baselines"),
    ("decision", "decisions"),
    ("scene_change", "scene_changes"),
    ("headset_event", "headset_events"),
    ("sensor_event", "sensor_events"),
    ("gap", "gaps"),
    ("suds", "suds"),
    ("note", "notes"),
    ("estimate", "estimates"),
    ("phase", "phases"),
    ("command", "commands"),
)


def _row(obj: Any) -> dict[str, Any]:
    d = dataclasses.asdict(obj)
    for k, v in list(d.items()):
        if isinstance(v, tuple):
            d[k] = list(v)
    return d


def session_to_dict(rec: SessionRecord) -> dict[str, Any]:
    """The whole record as JSON-able data."""
    info = dataclasses.asdict(rec.info)
    for k in ("started_at", "ended_at"):
        info[k] = info[k].isoformat() if info[k] is not None else None
    out: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "session": info}
    for _, attr in _TABLES:
        out[attr] = [_row(r) for r in getattr(rec, attr)]
    return out


def render_json(rec: SessionRecord) -> str:
    return json.dumps(session_to_dict(rec), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v  # a spreadsheet must not run recorded text as a formula
    return v


def _time_of(kind: str, row: dict[str, Any]) -> float:
    return float(row.get("t", row.get("start_t", 0.0)) or 0.0)


def render_csv(rec: SessionRecord) -> str:
    """See the module docstring."""
    rows: list[tuple[float, int, str, dict[str, Any]]] = []
    columns: list[str] = []
    for order, (kind, attr) in enumerate(_TABLES):
        for r in getattr(rec, attr):
            d = _row(r)
            for k in d:
                if k not in columns:
                    columns.append(k)
            rows.append((_time_of(kind, d), order, kind, d))
    rows.sort(key=lambda x: (x[0], x[1]))
    buf = io.StringIO()
    info = rec.info
    for key in ("id", "uid", "patient", "scenario_id", "scenario_sha256", "policy_id", "mode",
                "seed", "started_at", "ended_at", "outcome"):
        value = getattr(info, key)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        text = str(value).replace("\n", " ").replace("\r", " ")
        buf.write(f"# {key}: {text}\n")
    if "t" in columns:  # time first, for the reader
        columns.remove("t")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["session_id", "record", "t", *columns])
    for t, _, kind, d in rows:
        writer.writerow([info.id, kind, _cell(d.get("t", t)), *(_cell(d.get(c)) for c in columns)])
    return buf.getvalue()
