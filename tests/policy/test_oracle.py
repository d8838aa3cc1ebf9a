"""The oracle: MPC with the true patient model, simulation only."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.policy import load_policy
from exposure_ctrl.policy.oracle import Oracle
from exposure_ctrl.policy.rules import FixedSchedule, FixedScheduleConfig

from .conftest import Scripted, run_closed_loop


def test_refused_live_and_unbound(spider, scripted_spider: Scripted) -> None:
    with pytest.raises(ConfigError, match="only in simulation"):
        load_policy("oracle", spider)
    pol = load_policy("oracle", spider, live=False).policy
    pos = tuple(int(x) for x in spider.hierarchy_positions[0])
    with pytest.raises(ConfigError, match="not bound"):
        pol.act(scripted_spider.obs(pos), scripted_spider.mask(pos))


def test_oracle_holds_the_trivial_patient_in_the_window(dial) -> None:
    run = run_closed_loop(dial, Oracle(dial))
    fixed = run_closed_loop(dial, FixedSchedule(dial, FixedScheduleConfig(step_every_s=60)))
    lo, hi = dial.targets.arousal_window_bpm.low, dial.targets.arousal_window_bpm.high
    assert np.all(run["in_window"] > 0.85)
    assert np.all(run["in_window"] > fixed["in_window"])
    assert np.all(run["arousal"] <= hi + 1e-9)  # never above the window: it knows l4 is too much
    assert np.all(run["arousal"][-10:] >= lo)


def test_plan_scores_are_exact_rollouts(dial) -> None:
    """The first move the plan picks from l0 on the trivial patient climbs toward the window."""
    from exposure_ctrl.sim.cohorts import sample_patients
    from exposure_ctrl.sim import patient as pt

    params = sample_patients(dial, "trivial", [0], split="eval")
    pos = np.array([[0]])
    state = pt.initial(params, pos, np.zeros(1), np.zeros(1))
    first, score = Oracle(dial).plan(params, state, pos)
    assert first[0] == dial.action_of("level", "up")
    assert np.isfinite(score[0])
