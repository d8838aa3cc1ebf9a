"""Export: JSON holds every table; CSV has one row per record and cannot run formulas."""

from __future__ import annotations

import csv
import io
import json

from exposure_ctrl.report.export import FORMAT, render_csv, render_json
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.store import Store

_TABLES = ("samples", "baselines", "decisions", "scene_changes", "headset_events",
           "sensor_events", "gaps", "suds", "notes", "estimates", "phases", "commands")


def _csv_rows(text: str) -> list[dict[str, str]]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("# "))
    return list(csv.DictReader(io.StringIO(body)))


def test_json_holds_every_record(demo: tuple[Store, int]) -> None:
    store, sid = demo
    rec = store.load_session(sid)
    doc = json.loads(render_json(rec))
    assert doc["format"] == FORMAT and doc["format_version"] == 1
    assert doc["session"]["id"] == sid and doc["session"]["patient"] == "P-0001"
    for table in _TABLES:
        assert len(doc[table]) == len(getattr(rec, table)), table
    assert doc["samples"][0]["t"] == rec.samples[0].t
    assert doc["scene_changes"][1]["state"] == rec.scene_changes[1].state


def test_csv_has_one_row_per_record_in_time_order(demo: tuple[Store, int]) -> None:
    store, sid = demo
    rec = store.load_session(sid)
    text = render_csv(rec)
    assert "# patient: P-0001" in text
    rows = _csv_rows(text)
    assert len(rows) == sum(len(getattr(rec, t)) for t in _TABLES)
    kinds = {r["record"] for r in rows}
    assert {"sample", "decision", "scene_change", "gap", "suds", "note", "estimate"} <= kinds
    times = [float(r["t"] or r["start_t"]) for r in rows]
    assert times == sorted(times)
    samples = [r for r in rows if r["record"] == "sample"]
    assert [float(r["bpm"]) for r in samples] == [s.bpm for s in rec.samples]


def test_csv_cells_cannot_become_formulas(store: Store, spider: Scenario) -> None:
    with store.begin_session(patient="P-1", scenario=spider, mode="manual") as w:
        w.note(1.0, "=HYPERLINK(\"http://x.invalid\")", "@therapist")
        w.sample(HeartSample(t=0.0, bpm=70, source="-cmd"))
    rows = _csv_rows(render_csv(store.load_session(w.session_id)))
    note = next(r for r in rows if r["record"] == "note")
    assert note["text"].startswith("'=") and note["author"] == "'@therapist"
    sample = next(r for r in rows if r["record"] == "sample")
    assert sample["source"] == "'-cmd" and sample["t"] == "0.0"
