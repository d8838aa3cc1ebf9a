"""Time in window, peak rise, habituation per level and step reached, on hand-made sessions."""

from __future__ import annotations

import pytest

from exposure_ctrl.report.analysis import heart_series, phase_intervals, session_stats
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.store import Store

BASE = 70.0


def _rise(t: float) -> float:
    """Baseline 0..60 s; +12 (in the window) 60..90; step 2 at 90..130 decaying from +30 to
    +10; +30 (above the ceiling) 130..160; recovery after."""
    if t < 60 or t >= 160:
        return 0.0
    if t < 90:
        return 12.0
    if t < 130:
        return 30.0 - 20.0 * (t - 90) / 39.0
    return 30.0


def _write(store: Store, sc: Scenario, *, gap: tuple[int, int] | None = None,
           baseline: bool = True, phases: bool = True, flagged: tuple[int, ...] = ()) -> int:
    with store.begin_session(patient="P-7", scenario=sc, mode="autonomous") as w:
        if phases:
            w.phase(0, "baseline")
            w.phase(60, "exposure")
            w.phase(160, "recovery")
        if baseline:
            w.baseline(60, BASE, 1.0, 1.0, 60)
        w.scene_change(0, sc.safe_state, trigger="system", sent_t=0)
        c = w.scene_change(60, sc.hierarchy[0].state, trigger="system", sent_t=60)
        w.scene_acked(c, 60.2)
        c = w.scene_change(89.9, sc.hierarchy[2].state, trigger="policy", sent_t=89.95)
        w.scene_acked(c, 90.0)  # shown from the ack on
        w.scene_change(129.5, sc.hierarchy[1].state, trigger="shield", sent_t=130.0)  # no ack
        w.scene_change(160, sc.safe_state, trigger="system", sent_t=160)
        for t in range(0, 200):
            if gap and gap[0] <= t <= gap[1]:
                continue
            flags = Quality.RR_ECTOPIC if t in flagged else Quality(0)
            bpm = 190.0 if t in flagged else BASE + _rise(t)
            w.sample(HeartSample(t=float(t), bpm=bpm, source="t", flags=flags))
        w.end(200, "completed")
    return w.session_id


def _unsmoothed(rec):  # each sample stands alone: the numbers below follow from _rise exactly
    return heart_series(rec, smooth_s=0.5)


def test_window_ceiling_and_peak_follow_the_definitions(store: Store, spider: Scenario) -> None:
    rec = store.load_session(_write(store, spider))
    st = session_stats(rec, spider, _unsmoothed(rec))
    assert st.exposure_s == 100 and st.observed_exposure_s == 100
    # in the window (8..18): 60..89 at +12, and the decay below +18 from t = 114 to 129
    decay_in = sum(1 for t in range(90, 130) if 8 <= _rise(t) <= 18)
    assert st.time_in_window_s == pytest.approx(30 + decay_in)
    assert st.time_above_ceiling_s == pytest.approx(
        sum(1 for t in range(60, 160) if _rise(t) > 25))
    assert st.peak_rise_bpm == pytest.approx(30.0) and st.peak_rise_t == 90.0
    assert st.time_in_window_frac == pytest.approx((30 + decay_in) / 100)


def test_step_reached_and_habituation_per_level(store: Store, spider: Scenario) -> None:
    rec = store.load_session(_write(store, spider))
    st = session_stats(rec, spider, _unsmoothed(rec))
    assert st.step_reached == 2
    assert st.step_reached_name == spider.hierarchy[2].name
    assert st.changes_by_trigger == {"system": 3, "policy": 1, "shield": 1}
    levels = {lv.index: lv for lv in st.levels}
    assert sorted(levels) == [0, 1, 2]
    # step 2 shown from its ack (90.0) until the unacked shield change was sent (130.0)
    two = levels[2]
    assert two.time_s == pytest.approx(40.0)
    assert two.peak_rise_bpm == pytest.approx(30.0)
    tail = [_rise(t) for t in range(100, 130)]
    assert two.end_rise_bpm == pytest.approx(sum(tail) / len(tail))
    assert two.habituation_bpm == pytest.approx(30.0 - sum(tail) / len(tail))
    assert two.habituation_pct == pytest.approx(100 * two.habituation_bpm / 30.0)
    # step 0: acked at 60.2, left at 90.0: shorter than the 30 s tail, so no habituation figure
    assert levels[0].time_s == pytest.approx(29.8) and levels[0].habituation_bpm is None
    # step 1: the unacked change counts from when it was sent (130.0) to the end of exposure
    assert levels[1].time_s == pytest.approx(30.0) and levels[1].peak_rise_bpm == 30.0
    assert levels[1].habituation_bpm == pytest.approx(0.0)  # flat +30: no habituation


def test_gaps_count_neither_for_nor_against_the_window(store: Store, spider: Scenario) -> None:
    rec = store.load_session(_write(store, spider, gap=(70, 80)))
    st = session_stats(rec, spider, _unsmoothed(rec))
    # 11 samples missing; the last one before the gap covers at most stale_after_s (5 s)
    stale = spider.safety.stale_after_s
    assert st.observed_exposure_s == pytest.approx(100 - 11 - 1 + stale)
    decay_in = sum(1 for t in range(90, 130) if 8 <= _rise(t) <= 18)
    assert st.time_in_window_s == pytest.approx(30 - 11 - 1 + stale + decay_in)


def test_flagged_samples_are_not_used(store: Store, spider: Scenario) -> None:
    rec = store.load_session(_write(store, spider, flagged=(75, 76)))
    hs = _unsmoothed(rec)
    st = session_stats(rec, spider, hs)
    assert st.peak_rise_bpm == pytest.approx(30.0)  # the flagged 190 bpm is ignored
    assert st.n_flagged == 2 and st.n_clean == 198


def test_smoothing_is_a_trailing_mean(store: Store, spider: Scenario) -> None:
    rec = store.load_session(_write(store, spider))
    hs = heart_series(rec)  # 10 s
    i = list(hs.t).index(65.0)
    # samples in (55, 65]: 56..59 at baseline, 60..65 at +12
    assert hs.smooth[i] == pytest.approx(BASE + 12 * 6 / 10)


def test_baseline_is_estimated_from_the_baseline_phase_when_not_recorded(
    store: Store, spider: Scenario
) -> None:
    hs = heart_series(store.load_session(_write(store, spider, baseline=False)))
    assert hs.baseline_estimated and hs.baseline_bpm == pytest.approx(BASE)


def test_without_phases_the_whole_session_is_exposure(store: Store, spider: Scenario) -> None:
    rec = store.load_session(_write(store, spider, phases=False))
    assert [iv.label for iv in phase_intervals(rec)] == ["session"]
    st = session_stats(rec, spider, _unsmoothed(rec))
    assert st.exposure_s == 200 and st.observed_exposure_s == 200
