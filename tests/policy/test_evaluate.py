"""Evaluation: paired patients, metrics, confidence intervals, the goal check, files and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from exposure_ctrl.cli import cli
from exposure_ctrl.policy.evaluate import (
    Evaluation,
    PolicyResult,
    _summarise,
    evaluate,
    goal_check,
    mean_ci,
    render_markdown,
    wilson_ci,
    write_evaluation,
)

DIAL = str(Path(__file__).parent / "dial.yaml")


def test_confidence_intervals() -> None:
    m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.291, t(3) = 3.182 → half-width 2.054
    assert m == 2.5 and lo == pytest.approx(0.446, abs=1e-3) and hi == pytest.approx(4.554, abs=1e-3)
    p, lo, hi = wilson_ci(0, 40)
    assert p == 0 and lo == 0 and hi == pytest.approx(8.76, abs=0.01)
    p, lo, hi = wilson_ci(5, 10)
    assert p == 50 and lo == pytest.approx(23.66, abs=0.01) and hi == pytest.approx(76.34, abs=0.01)


def test_policies_meet_the_same_patients(dial) -> None:
    ev = evaluate(dial, ["fixed-schedule", "band-pi"], cohort="trivial", patients=3, course_sessions=2, sensor="ideal", seed=4)
    again = evaluate(dial, ["band-pi"], cohort="trivial", patients=3, course_sessions=2, sensor="ideal", seed=4)
    a = ev.result("band-pi").per_patient
    b = again.result("band-pi").per_patient
    assert all(np.array_equal(a[k], b[k]) for k in a)  # order and company do not matter
    for r in ev.results:
        assert set(r.per_patient) >= {"time_in_window_pct", "final_step", "max_intensity", "above_ceiling_pct",
                                       "abort_pct", "changes_per_10min", "sessions_to_top"}
        assert all(len(v) == 3 for v in r.per_patient.values())
        assert np.all((r.per_patient["time_in_window_pct"] >= 0) & (r.per_patient["time_in_window_pct"] <= 100))
    # the fixed schedule climbs to l4 (above the window); band PI stays in it
    assert np.all(ev.result("fixed-schedule").per_patient["final_step"] == 4)
    assert ev.result("band-pi").summary["time_in_window_pct"][0] > ev.result("fixed-schedule").summary["time_in_window_pct"][0]
    # the trivial patient never habituates: once at the top, the next session starts there again
    assert np.all(ev.result("fixed-schedule").per_patient["sessions_to_top"] == 1)


def _fake(name: str, kind: str, window: list[float], step: float = 10.0, aborts: float = 0.0, above: float = 0.0) -> PolicyResult:
    n = len(window)
    per = {
        "time_in_window_pct": np.array(window),
        "final_step": np.full(n, step),
        "max_intensity": np.full(n, 0.8),
        "above_ceiling_pct": np.full(n, above),
        "abort_pct": np.full(n, aborts),
        "changes_per_10min": np.full(n, 5.0),
        "sessions_to_top": np.full(n, 2.0),
        "reached_top_pct": np.full(n, 100.0),
    }
    return PolicyResult(name, kind, name, None, per, _summarise(per), 0.0)


def _ev(*results: PolicyResult) -> Evaluation:
    return Evaluation("spider", None, "spider-moderate", "eval", 3, 0, 4, "strap", list(results), {})


def test_goal_check() -> None:
    ev = _ev(
        _fake("band-pi", "rule", [40, 40, 40]),
        _fake("habituation", "rule", [20, 20, 20]),
        _fake("ppo-spider", "maskable-ppo", [50, 50, 50]),
        _fake("oracle", "oracle", [55, 55, 55]),
    )
    g = goal_check(ev)
    assert g["best_baseline"] == "band-pi" and g["met"]
    assert g["relative_to_best_baseline"] == pytest.approx(0.25)
    assert g["fraction_of_oracle"] == pytest.approx(50 / 55)
    ev = _ev(_fake("band-pi", "rule", [40, 40, 40]), _fake("ppo", "maskable-ppo", [47, 47, 47]), _fake("oracle", "oracle", [50] * 3))
    assert not goal_check(ev)["checks"]["beats_best_baseline_by_20pct"]
    ev = _ev(_fake("band-pi", "rule", [40] * 3, step=11), _fake("ppo", "maskable-ppo", [50] * 3, step=10, above=0.1),
             _fake("oracle", "oracle", [70] * 3))
    c = goal_check(ev)["checks"]
    assert not c["same_or_higher_step"] and not c["no_more_time_above_ceiling"] and not c["reaches_85pct_of_oracle"]
    assert goal_check(_ev(_fake("band-pi", "rule", [40] * 3))) is None
    assert "goal met: yes" in render_markdown(_ev(_fake("b", "rule", [40] * 3), _fake("p", "maskable-ppo", [50] * 3), _fake("o", "oracle", [55] * 3)))


def test_files_are_written(tmp_path: Path) -> None:
    ev = _ev(_fake("band-pi", "rule", [40, 42, 38]), _fake("oracle", "oracle", [55, 60, 50]))
    paths = write_evaluation(ev, tmp_path)
    assert paths["png"].stat().st_size > 10_000
    data = json.loads(paths["json"].read_text())
    assert data["results"][0]["summary"]["time_in_window_pct"]["mean"] == pytest.approx(40.0)
    assert "| band-pi | 40.0 [" in paths["markdown"].read_text()


def test_cli_evaluate(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["evaluate", "--scenario", DIAL, "--cohort", "trivial", "--sensor", "ideal",
                                   "--policies", "fixed-schedule,band-pi", "--patients", "2", "--course-sessions", "1",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "| band-pi |" in res.output
    assert {p.name for p in tmp_path.iterdir()} == {"evaluation.md", "evaluation.json", "evaluation.png"}


def test_cli_evaluate_refuses_an_unknown_policy(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["evaluate", "--scenario", DIAL, "--policies", "band_pi", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "did you mean 'band-pi'" in res.output


def test_cli_train_writes_a_policy_that_loads(tmp_path: Path, dial) -> None:
    from exposure_ctrl.policy import load_policy

    out = tmp_path / "p"
    res = CliRunner().invoke(cli, ["train", "--scenario", DIAL, "--cohort", "trivial", "--timesteps", "256", "--n-envs", "2",
                                   "--seed", "1", "--out", str(out), "--no-progress", "--checkpoint-every", "128",
                                   "--set", "warm_start=none", "--set", "select_every=none", "--set", "reward_ceiling=7.5"])
    assert res.exit_code == 0, res.output
    assert "trained" in res.output
    lp = load_policy(str(out), dial)
    assert lp.kind == "maskable-ppo"
    assert list((out / "checkpoints").glob("*.zip"))
    meta = json.loads((out / "policy.json").read_text())
    assert meta["training"]["config"]["reward_ceiling"] == 7.5 and meta["training"]["config"]["warm_start"] is None
    res = CliRunner().invoke(cli, ["train", "--scenario", DIAL, "--out", str(out), "--set", "reward_celing=3"])
    assert res.exit_code == 2 and "did you mean 'reward_ceiling'" in res.output


def test_cli_train_tensorboard_needs_its_package(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorboard is installed")
    res = CliRunner().invoke(cli, ["train", "--scenario", DIAL, "--timesteps", "64", "--out", str(tmp_path / "p"),
                                   "--tensorboard", str(tmp_path / "tb"), "--no-progress"])
    assert res.exit_code == 2 and "pip install tensorboard" in res.output
