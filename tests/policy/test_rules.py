"""Rule baselines on scripted patients: each behaves as specified.

Two kinds of scripted patient: hand-built observations (one decision, every feature chosen by
name) and the simulator's deterministic ``trivial`` patient on the one-parameter ``dial`` scene
(closed loop, shield inside), whose heart-rate rise is 0/5/10/15/20 bpm at levels l0..l4.
"""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.policy.navigate import action_toward
from exposure_ctrl.policy.rules import (
    BandPI,
    BandPIConfig,
    FixedSchedule,
    FixedScheduleConfig,
    GreedyConfig,
    GreedyModel,
    HabituationConfig,
    HabituationCriterion,
)

from .conftest import Scripted, run_closed_loop, step_positions


def is_up(a: int) -> bool:
    return a > 0 and a % 2 == 1


def is_down(a: int) -> bool:
    return a > 0 and a % 2 == 0


# --- fixed schedule ----------------------------------------------------------------------------


def test_fixed_schedule_heads_for_the_step_the_clock_says(spider, scripted_spider: Scripted) -> None:
    pol = FixedSchedule(spider, FixedScheduleConfig(step_every_s=120))
    s0 = step_positions(spider, 0)
    frac = 250 / spider.timing.exposure_max_s  # 250 s: step index 2
    a, why = pol.act(scripted_spider.obs(s0, exposure_time_frac=frac), scripted_spider.mask(s0))
    want = action_toward(spider, np.array([s0]), spider.hierarchy_positions[[2]])[0]
    assert a[0] == want and is_up(int(a[0]))
    assert "step 3 of 12" in why[0]
    # At the start the schedule holds.
    a, _ = pol.act(scripted_spider.obs(s0, exposure_time_frac=0.0), scripted_spider.mask(s0))
    assert a[0] == 0


def test_fixed_schedule_ignores_arousal_but_waits_for_the_dwell(spider, scripted_spider: Scripted) -> None:
    pol = FixedSchedule(spider, FixedScheduleConfig(step_every_s=120))
    s0 = step_positions(spider, 0)
    frac = 250 / spider.timing.exposure_max_s
    a, _ = pol.act(scripted_spider.obs(s0, exposure_time_frac=frac, hr_above_bpm=24.0), scripted_spider.mask(s0))
    assert is_up(int(a[0]))  # regardless of arousal (the shield is the one that objects)
    a, why = pol.act(scripted_spider.obs(s0, exposure_time_frac=frac, since_scene_change_s=10.0), scripted_spider.mask(s0))
    assert a[0] == 0 and "dwell" in why[0]


def test_fixed_schedule_default_spreads_the_hierarchy_over_the_session(spider) -> None:
    pol = FixedSchedule(spider)
    assert pol.step_every_s == pytest.approx(spider.timing.exposure_max_s / len(spider.hierarchy))


def test_fixed_schedule_closed_loop_follows_the_clock(dial) -> None:
    run = run_closed_loop(dial, FixedSchedule(dial, FixedScheduleConfig(step_every_s=60)))
    period = dial.timing.decision_period_s
    t = period * np.arange(1, run["steps"].shape[0] + 1)
    allowed = np.minimum(t // 60, len(dial.hierarchy) - 1)
    assert np.all(run["steps"] <= allowed[:, None])  # never ahead of the schedule
    assert np.all(run["max_step"] == len(dial.hierarchy) - 1)  # reaches the top regardless


# --- habituation criterion ----------------------------------------------------------------------


def test_habituation_steps_up_once_arousal_fell_by_half(spider, scripted_spider: Scripted) -> None:
    s3 = step_positions(spider, 3)
    pol = HabituationCriterion(spider)
    pol.target[:] = 3
    obs = scripted_spider.obs(s3, hr_above_bpm=7.0, peak_above_bpm=14.0, fall_from_peak_bpm=7.0,
                              fall_from_peak_frac=0.5, at_intensity_s=120.0)
    a, why = pol.act(obs, scripted_spider.mask(s3))
    want = action_toward(spider, np.array([s3]), spider.hierarchy_positions[[4]])[0]
    assert a[0] == want and "fell by 50%" in why[0]


@pytest.mark.parametrize(
    "values",
    [
        {"fall_from_peak_frac": 0.3, "at_intensity_s": 120.0},  # not habituated yet
        {"fall_from_peak_frac": 0.8, "at_intensity_s": 20.0},  # too early to judge the peak
        {"fall_from_peak_frac": 0.8, "at_intensity_s": 120.0, "stale": 1.0},  # blind
    ],
)
def test_habituation_holds_until_the_criterion(spider, scripted_spider: Scripted, values) -> None:
    s3 = step_positions(spider, 3)
    pol = HabituationCriterion(spider)
    pol.target[:] = 3
    a, _ = pol.act(scripted_spider.obs(s3, hr_above_bpm=10.0, **values), scripted_spider.mask(s3))
    assert a[0] == 0


def test_habituation_steps_up_after_the_maximum_dwell(spider, scripted_spider: Scripted) -> None:
    s3 = step_positions(spider, 3)
    pol = HabituationCriterion(spider, HabituationConfig(max_dwell_s=60.0))
    pol.target[:] = 3
    obs = scripted_spider.obs(s3, hr_above_bpm=10.0, fall_from_peak_frac=0.0)
    period = spider.timing.decision_period_s
    actions = [int(pol.act(obs, scripted_spider.mask(s3))[0][0]) for _ in range(int(60 / period) + 1)]
    first = next(i for i, a in enumerate(actions) if a)
    assert (first + 1) * period == pytest.approx(60.0)
    assert actions[first] == action_toward(spider, np.array([s3]), spider.hierarchy_positions[[4]])[0]
    assert pol.target[0] == 4


def test_habituation_steps_down_after_sustained_overshoot(spider, scripted_spider: Scripted) -> None:
    s3 = step_positions(spider, 3)
    cfg = HabituationConfig(overshoot_s=20.0)
    pol = HabituationCriterion(spider, cfg)
    pol.target[:] = 3
    obs = scripted_spider.obs(s3, hr_above_bpm=21.0, fall_from_peak_frac=0.0)
    period = spider.timing.decision_period_s
    actions = [int(pol.act(obs, scripted_spider.mask(s3))[0][0]) for _ in range(int(cfg.overshoot_s / period))]
    assert actions[:-1] == [0] * (len(actions) - 1)  # not before the overshoot lasted overshoot_s
    assert is_down(actions[-1])
    assert pol.target[0] == 2


def test_habituation_closed_loop_climbs_and_backs_off_from_overshoot(dial) -> None:
    pol = HabituationCriterion(dial, HabituationConfig(max_dwell_s=40.0, overshoot_s=15.0))
    run = run_closed_loop(dial, pol)
    steps = run["steps"][:, 0]
    # the trivial patient never habituates: it climbs by the maximum dwell, reaches l4 (20 bpm,
    # above the window) and steps back down
    assert steps.max() == len(dial.hierarchy) - 1
    top = int(np.argmax(steps == steps.max()))
    assert np.any(steps[top:] < steps.max())
    high = dial.targets.arousal_window_bpm.high
    above = run["arousal"][:, 0] > high
    longest = max((len(r) for r in "".join("1" if x else "0" for x in above).split("0")), default=0)
    assert longest * dial.timing.decision_period_s <= 15.0 + 15.0  # overshoot_s plus the response lag


# --- band PI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hr", "kind"), [(0.0, "up"), (24.0, "down"), (13.0, "hold")])
def test_band_pi_moves_against_the_error(spider, scripted_spider: Scripted, hr: float, kind: str) -> None:
    s5 = step_positions(spider, 5)
    pol = BandPI(spider)
    a, why = pol.act(scripted_spider.obs(s5, hr_above_bpm=hr), scripted_spider.mask(s5))
    assert {"up": is_up, "down": is_down, "hold": lambda x: x == 0}[kind](int(a[0])), why[0]


def test_band_pi_integral_acts_on_a_small_persistent_error(spider, scripted_spider: Scripted) -> None:
    s5 = step_positions(spider, 5)
    pol = BandPI(spider, BandPIConfig(kp=0.12, ki=0.004))
    obs = scripted_spider.obs(s5, hr_above_bpm=11.0)  # 2 bpm below the set-point
    acts: list[int] = []
    while not any(acts) and len(acts) < 40:
        acts.append(int(pol.act(obs, scripted_spider.mask(s5))[0][0]))
    # u = 0.12*2 + 0.004*2*5*k >= 1  →  k >= 19: the 19th decision moves
    assert len(acts) == 19 and is_up(acts[-1])
    assert pol.integral[0] == 0.0  # reset after the move (bumpless)


def test_band_pi_never_escalates_blind(spider, scripted_spider: Scripted) -> None:
    s5 = step_positions(spider, 5)
    pol = BandPI(spider)
    a, _ = pol.act(scripted_spider.obs(s5, hr_above_bpm=0.0, stale=1.0), scripted_spider.mask(s5))
    assert a[0] == 0


def test_band_pi_closed_loop_settles_in_the_window(dial) -> None:
    run = run_closed_loop(dial, BandPI(dial))
    assert np.all(run["in_window"] > 0.5)
    last = run["arousal"][-12:]
    lo, hi = dial.targets.arousal_window_bpm.low, dial.targets.arousal_window_bpm.high
    assert np.all((last >= lo) & (last <= hi))


# --- model-based greedy -------------------------------------------------------------------------


def _greedy_obs(sc, scripted: Scripted, pos, preds: dict[int, float], default: float = 3.0, **kw):
    values = {}
    names = [n for n in scripted.spec.names if n.startswith("model_next_") and not n.endswith("_sd_bpm")]
    for a, name in enumerate(names):
        values[name] = preds.get(a, default)
    return scripted.obs(pos, **values, **kw)


def test_greedy_picks_the_move_predicted_closest_to_the_upper_middle(spider, scripted_spider: Scripted) -> None:
    s5 = step_positions(spider, 5)
    pol = GreedyModel(spider)
    assert pol.target_bpm == pytest.approx(8 + 0.65 * 10)
    up = spider.action_of("size", "up")
    a, why = pol.act(_greedy_obs(spider, scripted_spider, s5, {up: 14.0, 0: 6.0}), scripted_spider.mask(s5))
    assert a[0] == up and "size up" in why[0]


def test_greedy_respects_the_mask_hysteresis_and_blindness(spider, scripted_spider: Scripted) -> None:
    top = step_positions(spider, len(spider.hierarchy) - 1)
    pol = GreedyModel(spider, GreedyConfig(hysteresis_bpm=1.0))
    jar_up = spider.action_of("jar", "up")  # impossible: the jar is already free
    a, _ = pol.act(_greedy_obs(spider, scripted_spider, top, {jar_up: 14.5, 0: 6.0}), scripted_spider.mask(top))
    assert a[0] != jar_up
    s5 = step_positions(spider, 5)
    up = spider.action_of("size", "up")
    a, _ = pol.act(_greedy_obs(spider, scripted_spider, s5, {up: 14.5, 0: 14.0}), scripted_spider.mask(s5))
    assert a[0] == 0  # staying is within the hysteresis
    a, _ = pol.act(_greedy_obs(spider, scripted_spider, s5, {up: 14.5, 0: 6.0}, stale=1.0), scripted_spider.mask(s5))
    assert not is_up(int(a[0]))


def test_greedy_closed_loop_reaches_the_window(dial) -> None:
    run = run_closed_loop(dial, GreedyModel(dial))
    assert np.all(run["in_window"] > 0.4)
