"""Full training runs (slow: minutes of CPU each). Run with --runslow or EXPOSURE_CTRL_SLOW=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from exposure_ctrl.policy.evaluate import evaluate
from exposure_ctrl.scenario import resolve_scenario


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("sid", ["spider"])
def test_default_training_beats_the_best_baseline(tmp_path: Path, sid: str) -> None:
    """The default recipe (exposure-ctrl train defaults) beats band PI on held-out patients,
    with no more aborts and no more time above the ceiling."""
    from exposure_ctrl.policy.train import TrainConfig, train

    sc = resolve_scenario(sid)
    train(TrainConfig(scenario=sid, seed=0, checkpoint_every=None), tmp_path, scenario=sc)
    ev = evaluate(sc, ["band-pi", str(tmp_path)], patients=40, course_sessions=1)
    base, ppo = (r.summary for r in ev.results)
    assert ppo["time_in_window_pct"][0] > base["time_in_window_pct"][0]
    assert ppo["abort_pct"][0] <= base["abort_pct"][0]
    assert ppo["above_ceiling_pct"][0] <= base["above_ceiling_pct"][0] + 0.05
