"""Tabular Q-learning (Mahmoudi-Nejad et al. 2025): ε-greedy with ε = 0.05, online learning."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.policy.qlearning import QLearningConfig, TabularQ

from .conftest import Scripted, run_closed_loop


def test_the_paper_s_exploration_rate(spider, scripted_spider: Scripted) -> None:
    pol = TabularQ(spider, QLearningConfig(seed=3))
    assert pol.config.epsilon == 0.05
    pos = tuple(int(x) for x in spider.hierarchy_positions[5])
    n = 4000
    obs = np.repeat(scripted_spider.obs(pos, hr_above_bpm=13.0), n, axis=0)
    mask = np.repeat(scripted_spider.mask(pos), n, axis=0)
    pol.reset(n)
    pol.q[:, :, 3] = 1.0  # one clearly best action everywhere
    a, reasons = pol.act(obs, mask)
    explored = np.mean(a != 3)
    # exploring picks a random legal action, sometimes the best one again: ~0.05 * (1 - 1/legal)
    assert 0.025 < explored < 0.07
    assert sum("exploring" in r for r in reasons) == pytest.approx(0.05 * n, rel=0.25)


def test_anxiety_and_intensity_are_discretised(spider, scripted_spider: Scripted) -> None:
    pol = TabularQ(spider)
    pos = tuple(int(x) for x in spider.hierarchy_positions[0])
    states = [int(pol.state_of(scripted_spider.obs(pos, hr_above_bpm=hr))[0]) for hr in (0.0, 5.0, 10.0, 15.0, 20.0, 30.0)]
    assert len(set(states)) == 6  # six anxiety bands around the window
    assert pol.reward_of(scripted_spider.obs(pos, hr_above_bpm=13.0))[0] == pytest.approx(1.0)
    assert pol.reward_of(scripted_spider.obs(pos, hr_above_bpm=8.0))[0] == pytest.approx(0.0)
    assert pol.reward_of(scripted_spider.obs(pos, hr_above_bpm=40.0))[0] == pytest.approx(-1.0)


def test_learns_online_from_a_scripted_patient(dial) -> None:
    """A scripted patient whose arousal is 5 bpm per level: the table learns to sit in the window."""
    scripted = Scripted(dial)
    pol = TabularQ(dial, QLearningConfig(seed=0))
    pol.reset(1)
    level = 0
    inside = []
    for _ in range(400):
        obs = scripted.obs((level,), hr_above_bpm=5.0 * level)
        a, _ = pol.act(obs, scripted.mask((level,)))
        level = int(dial.apply_action(np.array([[level]]), a)[0, 0])
        inside.append(8.0 <= 5.0 * level <= 18.0)
    assert np.mean(inside[-100:]) > 0.8
    # what it learnt: the window's states are worth more than those below or above it
    value = {lv: pol.q[0, int(pol.state_of(scripted.obs((lv,), hr_above_bpm=5.0 * lv))[0])].max() for lv in range(5)}
    assert min(value[2], value[3]) > max(value[0], value[4])


def test_updates_with_the_executed_action(dial) -> None:
    scripted = Scripted(dial)
    pol = TabularQ(dial, QLearningConfig(epsilon=0.0, alpha=1.0, gamma=0.0))
    pol.reset(1)
    pol.q[:, :, 1] = 0.5  # prefer "up"
    pol.act(scripted.obs((1,), hr_above_bpm=5.0), scripted.mask((1,)))
    s = int(pol.prev_state[0])
    # the shield refused the move: positions unchanged → the update goes to "hold"
    pol.act(scripted.obs((1,), hr_above_bpm=5.0), scripted.mask((1,)))
    assert pol.q[0, s, 0] == pytest.approx(pol.reward_of(scripted.obs((1,), hr_above_bpm=5.0))[0])
    assert pol.q[0, s, 1] == pytest.approx(0.5)


def test_closed_loop_on_the_trivial_patient(dial) -> None:
    run = run_closed_loop(dial, TabularQ(dial, QLearningConfig(seed=1)))
    assert run["moves"].min() > 0
    assert np.all(np.isfinite(run["in_window"]))
