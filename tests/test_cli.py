"""The command line through click's runner and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from exposure_ctrl import __version__
from exposure_ctrl.cli import cli, main

ROOT = Path(__file__).parents[1]
SHIPPED = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
BROKEN = ROOT / "tests" / "scenario" / "broken"


def run(*args: str):
    return CliRunner(env={"COLUMNS": "160"}).invoke(cli, list(args), catch_exceptions=False)


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.output


def test_validate_shipped_scenarios_exits_0():
    r = run("scenario", "validate", *SHIPPED)
    assert r.exit_code == 0, r.output
    assert r.output.count("ok  ") == len(SHIPPED)


def test_validate_reports_every_file_and_exits_2():
    r = run("scenario", "validate", SHIPPED[0], str(BROKEN / "misspelt_key.yaml"), str(BROKEN / "off_grid.yaml"))
    assert r.exit_code == 2
    assert "misspelt_key.yaml:5:1: indicaton: unknown key 'indicaton' (did you mean 'indication'?)" in r.stderr
    assert "off_grid.yaml:19:27: safe_state.distance_m" in r.stderr
    assert "2 of 3 file(s) invalid" in r.stderr
    assert "Traceback" not in r.output + r.stderr


def test_show_prints_parameters_and_hierarchy():
    r = run("scenario", "show", "spider")
    assert r.exit_code == 0, r.output
    for word in ("jar", "distance_m", "fear hierarchy", "Tiny spider in a closed jar, far away", "arousal window"):
        assert word in r.output


def test_show_unknown_id_is_a_clear_error_exit_2():
    r = run("scenario", "show", "spidr")
    assert r.exit_code == 2
    assert "did you mean 'spider'?" in r.stderr


def test_schema_prints_json_schema():
    r = run("scenario", "schema")
    assert r.exit_code == 0
    schema = json.loads(r.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["additionalProperties"] is False


def test_main_returns_exit_status(capsys):
    assert main(["scenario", "validate", str(BROKEN / "wrong_type.yaml")]) == 2
    assert 'expected a number; found "high"' in capsys.readouterr().err
    assert main(["--version"]) == 0


def test_python_dash_m_runs_as_a_process():
    p = subprocess.run(
        [sys.executable, "-m", "exposure_ctrl", "scenario", "validate", str(BROKEN / "misspelt_key.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 2
    assert "did you mean 'indication'?" in p.stderr
    assert "Traceback" not in p.stderr
