"""Calibration: cohort statistics fall in the bands documented in docs/simulator.md."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import calibration as cal

PAIRS = [("spider", "spider-moderate"), ("public_speaking", "social-anxiety"), ("heights", "heights")]


def _check(stats: cal.Stats, band_name: str) -> None:
    for key, (lo, hi) in cal.BANDS[band_name].items():
        v = stats.values[key]
        assert lo <= v <= hi, f"{stats.name} {key} = {v:.3g}, documented band {lo:g}..{hi:g}"


@pytest.mark.parametrize("scenario,cohort", PAIRS)
def test_heart_rate_rise_at_the_top_of_the_hierarchy(scenario, cohort):
    st = cal.top_rise(resolve_scenario(scenario), cohort)
    _check(st, "top_rise")
    assert st.values["frac_above_30"] > 0  # "some > 30 bpm"


def test_severe_cohort_responds_more():
    sc = resolve_scenario("spider")
    sev = cal.top_rise(sc, "spider-severe")
    _check(sev, "top_rise_severe")
    assert sev.values["mean_bpm"] > cal.top_rise(sc, "spider-moderate").values["mean_bpm"] + 2


@pytest.mark.parametrize("scenario,cohort", PAIRS)
def test_habituation_half_time_at_a_fixed_moderate_level(scenario, cohort):
    _check(cal.habituation_half_time(resolve_scenario(scenario), cohort), "habituation_half_time")


@pytest.mark.parametrize("scenario,cohort", PAIRS)
def test_recovery_after_going_safe(scenario, cohort):
    _check(cal.recovery(resolve_scenario(scenario), cohort), "recovery")


@pytest.mark.parametrize("scenario,cohort", PAIRS)
def test_suds_and_heart_rate_agree_only_loosely(scenario, cohort):
    _check(cal.suds_hr_correlation(resolve_scenario(scenario), cohort), "suds_hr_correlation")


@pytest.mark.parametrize("scenario,cohort", PAIRS)
def test_rmssd_falls_at_high_arousal(scenario, cohort):
    _check(cal.rmssd_drop(resolve_scenario(scenario), cohort), "rmssd_drop")


def window_keeping(sc, n):
    """A sensible therapist-like rule: climb the hierarchy while the heart rate is below the
    window's lower part, step back down above the window, hold inside it."""
    from exposure_ctrl.policy.navigate import action_toward, at_state

    goal = np.ones(n, dtype=np.int64)
    last = len(sc.hierarchy) - 1
    lo, hi = sc.targets.arousal_window_bpm.low, sc.targets.arousal_window_bpm.high

    def control(above, pos, new):
        nonlocal goal
        goal = np.where(new, 1, goal)
        here = at_state(pos, sc.hierarchy_positions[goal])
        cur = np.maximum(sc.hierarchy_index_of_intensity(sc.intensity_of_positions(pos)), 0)
        goal = np.where(above > hi, np.maximum(cur - 1, 0), np.where(here & (above < lo + 2), np.minimum(goal + 1, last), goal))
        return action_toward(sc, pos, sc.hierarchy_positions[goal])

    return control


def greedy(sc, n):
    """Climb as fast as the shield allows, whatever the heart rate."""
    from exposure_ctrl.policy.navigate import action_toward, at_state

    goal = np.ones(n, dtype=np.int64)
    last = len(sc.hierarchy) - 1

    def control(above, pos, new):
        nonlocal goal
        goal = np.where(new, 1, goal)
        goal = np.where(at_state(pos, sc.hierarchy_positions[goal]), np.minimum(goal + 1, last), goal)
        return action_toward(sc, pos, sc.hierarchy_positions[goal])

    return control


def test_abort_rate_per_course_under_window_keeping_control():
    sc = resolve_scenario("spider")
    st = cal.abort_rate(sc, "spider-severe", window_keeping, n=64, sessions=4)
    _check(st, "abort_rate_severe")
    # climbing regardless of the heart rate makes more patients abort within one session
    fast = cal.abort_rate(sc, "spider-severe", greedy, n=64, sessions=1)
    slow = cal.abort_rate(sc, "spider-severe", window_keeping, n=64, sessions=1)
    assert fast.values["per_course"] > slow.values["per_course"]
