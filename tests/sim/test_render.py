"""``render_mode="rgb_array"``: the picture Stable-Baselines3's ``make_vec_env`` asks for."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from exposure_ctrl.sim import render

ENV_ID = "exposure_ctrl/Exposure-v0"


def test_gymnasium_checks_both_render_modes():
    for mode in ("ansi", "rgb_array"):
        env = gym.make(ENV_ID, scenario="spider", render_mode=mode, recovery=False)
        check_env(env.unwrapped, skip_render_check=False)


def test_the_picture_shows_the_heart_rate_the_window_and_the_step():
    env = gym.make(ENV_ID, scenario="spider", cohort="spider-severe", render_mode="rgb_array", recovery=False)
    u = env.unwrapped
    env.reset(seed=0)
    rises = []
    for k in range(60):  # climb one step a minute
        _, _, term, _, info = env.step(1 if k % 12 == 0 and info_ok(u) else 0)
        rises.append(float(u.tracker.features.hr_above()[0]))
        assert not term
    img = env.render()
    assert img.shape == (render.HEIGHT, render.WIDTH, 3) and img.dtype == np.uint8
    tg = u.scenario.targets
    ceiling = float(tg.ceiling_bpm)
    chart = render.WIDTH - render.BAR
    # the newest period is the chart's last column, at the row of its heart rate
    for back, y in enumerate(reversed(rises[-10:])):
        col = img[:, chart - 1 - back]
        trace_rows = np.flatnonzero((col == render.TRACE).all(axis=1))
        assert trace_rows.tolist() == [int(render.row_of(y, ceiling))]
    # nothing drawn before the session began (61 periods: the reset's and 60 steps')
    assert not (img[:, : chart - 61] == render.TRACE).all(axis=2).any()
    # the window is shaded between its rows, the ceiling drawn on its row
    left = img[:, 0]
    shaded = np.flatnonzero((left == render.WINDOW).all(axis=1))
    assert shaded[0] == render.row_of(tg.arousal_window_bpm.high, ceiling)
    assert shaded[-1] == render.row_of(tg.arousal_window_bpm.low, ceiling)
    assert (left[render.row_of(ceiling, ceiling)] == render.CEILING).all()
    # the bar is filled up to the step shown: a higher step fills more rows
    bar = img[:, chart + render.BAR // 2]
    filled = int((bar == render.BAR_FILL).all(axis=1).sum())
    step = int(info["hierarchy_index"])
    assert step >= 1
    n = len(u.scenario.hierarchy)
    assert abs(filled - render.HEIGHT * (step + 1) / n) <= 1


def info_ok(u) -> bool:
    """The first action (one step up) is legal now."""
    return bool(u.action_masks()[1])


def test_rows_run_from_above_the_ceiling_down_to_below_baseline():
    rows = render.row_of(np.array([200.0, 30.0, 20.0, 0.0, -10.0, -50.0]), 20.0)
    assert rows[0] == 0 and rows[1] == 0 and rows[-1] == render.HEIGHT - 1 and rows[-2] == render.HEIGHT - 1
    assert list(rows) == sorted(rows)
    assert rows[2] < rows[3]
