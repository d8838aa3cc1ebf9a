"""The command line of the store and the report: sessions list, review, progress, export."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exposure_ctrl.cli import cli
from exposure_ctrl.store import Store


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sessions_list_json(demo: tuple[Store, int]) -> None:
    store, _ = demo
    res = _run("sessions", "list", "--json", "--store", str(store.path))
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["id"] for r in rows] == [1, 2, 3]
    for key in ("id", "patient", "scenario", "started_at", "ended_at", "outcome", "n_samples",
                "n_scene_changes"):
        assert key in rows[0]
    assert rows[2]["outcome"] is None and rows[2]["ended_at"] is None
    only = json.loads(_run("sessions", "list", "--json", "--patient", "P-0002", "--store",
                           str(store.path)).output)
    assert [r["patient"] for r in only] == ["P-0002"]
    table = _run("sessions", "list", "--store", str(store.path))
    assert table.exit_code == 0 and "P-0002" in table.output


def test_review_writes_an_owner_only_report_and_prints_its_path(
    demo: tuple[Store, int], tmp_path: Path
) -> None:
    store, _ = demo
    out = tmp_path / "r" / "review.html"
    res = _run("review", "2", "--store", str(store.path), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    default = _run("review", "latest", "--store", str(store.path))
    path = Path(default.output.strip())
    assert path == store.path.parent / "reports" / "session-3.html" and path.is_file()


def test_progress_json_and_html(demo: tuple[Store, int], tmp_path: Path) -> None:
    store, _ = demo
    out = tmp_path / "progress.html"
    res = _run("progress", "P-0001", "--json", "--store", str(store.path), "--out", str(out))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["patient"] == "P-0001" and [s["session"] for s in doc["sessions"]] == [1, 2]
    assert all(s["peak_rise_per_step_bpm"] for s in doc["sessions"])
    assert out.is_file() and stat.S_IMODE(os.stat(out).st_mode) == 0o600
    table = _run("progress", "P-0001", "--store", str(store.path))
    assert table.exit_code == 0 and "Progress of patient P-0001" in table.output


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export(demo: tuple[Store, int], tmp_path: Path, fmt: str) -> None:
    store, _ = demo
    res = _run("export", "1", "--format", fmt, "--store", str(store.path))
    assert res.exit_code == 0
    if fmt == "json":
        assert json.loads(res.output)["session"]["id"] == 1
    else:
        assert res.output.startswith("# id: 1\n")
    out = tmp_path / f"s1.{fmt}"
    res = _run("export", "1", "--format", fmt, "--out", str(out), "--store", str(store.path))
    assert res.exit_code == 0 and out.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


def test_mistakes_exit_2_and_a_missing_store_exits_1(demo: tuple[Store, int], tmp_path: Path) -> None:
    store, _ = demo
    res = CliRunner().invoke(cli, ["review", "42", "--store", str(store.path)])
    assert res.exit_code == 2 and "no session 42" in res.output
    res = CliRunner().invoke(cli, ["progress", "Jane Doe", "--store", str(store.path)])
    assert res.exit_code == 2 and "looks like a name" in res.output
    res = CliRunner().invoke(cli, ["progress", "P-9999", "--store", str(store.path)])
    assert res.exit_code == 2 and "no sessions for patient" in res.output
    missing = tmp_path / "none.sqlite"
    res = CliRunner().invoke(cli, ["sessions", "list", "--store", str(missing)])
    assert res.exit_code == 1 and "no session store at" in res.output
    assert not missing.exists()
