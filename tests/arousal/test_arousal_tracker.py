"""ArousalTracker: features and model fed together; the observation the policies read."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.arousal import (
    FEATURE_NAMES,
    ArousalTracker,
    Feature,
    FeatureState,
    ResponseModel,
)
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample

SPIDER = resolve_scenario("spider")


def test_layout_and_scaling():
    tr = ArousalTracker(SPIDER, n=2)
    names = tr.observation_names
    assert names[: len(FEATURE_NAMES)] == FEATURE_NAMES
    assert len(names) == len(set(names)) == tr.observation_size == len(tr.observation_scales)
    raw = tr.observe(0.0)
    np.testing.assert_allclose(tr.observe(0.0, scaled=True) * tr.observation_scales, raw)
    assert raw.shape == (2, tr.observation_size) and np.isfinite(raw).all()


def test_scaled_tick_divides_the_same_observation():
    trs = [ArousalTracker(SPIDER, n=2, t0=0.0) for _ in range(2)]
    for tr in trs:
        tr.set_baseline(70.0)
        tr.set_scene(0.0, SPIDER.positions(SPIDER.start))
        tr.update_block(np.arange(1.0, 6.0), np.full((5, 2), 85.0))
    raw = trs[0].tick(5.0)
    np.testing.assert_allclose(trs[1].tick(5.0, scaled=True) * trs[0].observation_scales, raw)
    assert trs[0].model.n_hr_updates.tolist() == trs[1].model.n_hr_updates.tolist() == [1, 1]


def test_the_model_learns_only_from_fresh_heart_rate_with_a_baseline():
    tr = ArousalTracker(SPIDER, n=1, t0=0.0)
    tr.set_scene(0.0, SPIDER.positions(SPIDER.start))
    for i in range(1, 11):
        tr.add(HeartSample(float(i), 90.0, contact=True))
    tr.tick(10.0)
    assert tr.model.n_hr_updates[0] == 0  # no baseline yet
    tr.set_baseline(70.0)
    tr.tick(10.5)
    assert tr.model.n_hr_updates[0] == 1
    tr.tick(30.0)  # 20 s without a sample: stale
    assert tr.model.n_hr_updates[0] == 1
    tr.set_suds(31.0, 60)
    assert tr.model.n_suds_updates[0] == 1
    assert tr.observe(31.0)[0, Feature.SUDS] == 60


def test_tracker_equals_its_parts():
    rng = np.random.default_rng(1)
    n = 3
    tr = ArousalTracker(SPIDER, n=n, t0=0.0)
    fs = FeatureState(SPIDER, n=n, t0=0.0)
    model = ResponseModel(SPIDER, n=n)
    pos = np.tile(np.asarray(SPIDER.positions(SPIDER.start)), (n, 1))
    for obj in (tr,):
        obj.set_baseline(np.array([65.0, 70.0, 75.0]))
    fs.set_baseline(np.array([65.0, 70.0, 75.0]))
    tr.set_scene(0.0, pos)
    fs.set_scene(0.0, pos)
    model.set_scene(0.0, pos)
    t = 0.0
    for step in range(30):
        ts = t + np.arange(1, 6, dtype=np.float64)
        t = float(ts[-1])
        bpm = 80 + rng.normal(0, 2, (5, n))
        tr.update_block(ts, bpm)
        fs.update_block(ts, bpm)
        obs = tr.tick(t)
        f = fs.observe(t)
        model.observe_hr(t, f[:, Feature.HR_ABOVE_BPM], f[:, Feature.STALE] == 0)
        np.testing.assert_array_equal(obs[:, : len(FEATURE_NAMES)], f)
        np.testing.assert_allclose(obs[:, len(FEATURE_NAMES) :], model.observation())
    assert tr.model.n_hr_updates.tolist() == [30, 30, 30]


def test_baseline_phase_through_the_tracker():
    tr = ArousalTracker(SPIDER, n=1)
    tr.begin_baseline(0.0)
    rng = np.random.default_rng(0)
    for i in range(1, 181):
        tr.add(HeartSample(float(i), 66 + rng.normal(0, 1), contact=True))
    res = tr.finish_baseline(180.0)
    assert res.verdict() == "good"
    assert tr.features.baseline_bpm[0] == pytest.approx(res.bpm[0])


def test_put_rows_moves_every_patient_state():
    rng = np.random.default_rng(12)

    def run(tr: ArousalTracker, steps: int, t0: float, seed: int) -> float:
        r = np.random.default_rng(seed)
        n = tr.n
        pos = np.tile(np.asarray(SPIDER.positions(SPIDER.start)), (n, 1))
        t = t0
        for _ in range(steps):
            ts = t + np.cumsum(r.uniform(0.8, 1.2, (5, n)), axis=0)
            t = float(ts.max())
            bpm = 75 + r.normal(0, 6, (5, n))
            cnt = r.integers(0, 3, (5, n))
            rr = np.where(np.arange(2) < cnt[..., None], 60000 / bpm[..., None], np.nan)
            tr.update_block(ts, bpm, rr, cnt, None, r.random((5, n)) < 0.9)
            if r.random() < 0.3:
                pos = SPIDER.apply_action(pos, r.integers(0, SPIDER.n_actions, n))
                tr.set_scene(t, pos)
            if r.random() < 0.2:
                tr.set_suds(t, r.uniform(0, 100, n))
            tr.tick(t)
        return t

    a = ArousalTracker(SPIDER, n=4, t0=0.0)
    b = ArousalTracker(SPIDER, n=2, t0=0.0)
    a.set_baseline(np.array([60.0, 65.0, 70.0, 75.0]), rmssd_ms=40.0)
    b.set_baseline(np.array([80.0, 85.0]))
    t = max(run(a, 30, 0.0, 1), run(b, 12, 0.0, 2))
    merged = ArousalTracker(SPIDER, n=4, t0=0.0)
    merged.put_rows(np.arange(4), a)
    merged.put_rows(np.array([3, 1]), b)
    expect_rows = {0: (a, 0), 1: (b, 1), 2: (a, 2), 3: (b, 0)}
    # continue all of them with the same new data per patient
    extra = rng.normal(0, 1, (5, 4))
    for tr, cols in ((merged, [0, 1, 2, 3]), (a, [0, 1, 2, 3]), (b, [3, 1])):
        ts = t + np.arange(1, 6, dtype=np.float64)
        tr.update_block(ts, 90 + extra[:, cols])
        tr.set_suds(t + 5, 50.0)
        tr.set_scene(t + 5, SPIDER.positions(SPIDER.hierarchy[2].state))
    obs = merged.tick(t + 6)
    ticked = {id(a): a.tick(t + 6), id(b): b.tick(t + 6)}
    for row, (src, j) in expect_rows.items():
        np.testing.assert_allclose(obs[row], ticked[id(src)][j], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="patients for"):
        merged.put_rows(np.array([0]), b)
