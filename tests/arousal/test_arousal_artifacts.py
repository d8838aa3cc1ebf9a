"""Artifact rules on hand-made RR sequences: flagged, excluded, counted."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from exposure_ctrl.arousal import Feature, FeatureState
from exposure_ctrl.arousal.artifacts import ring_median, ring_push
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample, Quality

SPIDER = resolve_scenario("spider")


def steady(fs: FeatureState, t0: float, n: int, rr: float = 800.0) -> float:
    """n samples, one a second, each with one RR interval; returns the last time."""
    t = t0
    for _ in range(n):
        t += 1.0
        assert fs.add(HeartSample(t, 60000.0 / rr, (rr,), contact=True)) == Quality(0)
    return t


def rr_diffs_in_window(fs: FeatureState, t: float) -> tuple[float, float]:
    """(sum of squared differences, count) in the RMSSD window, from the state's bins."""
    tot = fs.bins.total(t, fs.config.rmssd_bins)
    return float(tot[5, 0]), float(tot[6, 0])


def test_impossible_bpm_is_flagged_and_not_used():
    fs = FeatureState(SPIDER, n=1)
    fs.set_baseline(70.0)
    for t, bpm in [(1.0, 80.0), (2.0, 250.0), (3.0, 20.0), (4.0, math.nan)]:
        q = fs.add(HeartSample(t, bpm, contact=True))
        assert bool(q & Quality.BPM_IMPOSSIBLE) == (t > 1)
    assert fs.observe(4.0)[0][Feature.HR_ABOVE_BPM] == pytest.approx(10.0)
    assert fs.observe(4.0)[0][Feature.SINCE_CLEAN_S] == 3.0
    assert fs.counts()["flag_bpm_impossible"] == 3


def test_impossible_rr_dropped_with_its_differences():
    fs = FeatureState(SPIDER, n=1)
    t = steady(fs, 0.0, 10)
    before = rr_diffs_in_window(fs, t)
    q = fs.add(HeartSample(t + 1, 75.0, (800.0, 150.0, 810.0, 2500.0, 805.0), contact=True))
    assert q == Quality.RR_IMPOSSIBLE
    after = rr_diffs_in_window(fs, t + 1)
    # kept pairs: previous beat→800 only (150 and 2500 break the chain on both sides)
    assert after[1] - before[1] == 1
    assert fs.counts()["rr_impossible"] == 2


@pytest.mark.parametrize(
    "beats, bad",
    [
        ((560.0, 1040.0), 2),  # premature beat and its compensatory pause
        ((1600.0,), 1),  # a missed beat: twice the interval
        ((400.0, 400.0), 2),  # a spurious beat splits one interval in two
        ((790.0, 830.0), 0),  # normal variability
    ],
)
def test_ectopic_and_missed_beats_against_the_local_median(beats, bad):
    fs = FeatureState(SPIDER, n=1)
    t = steady(fs, 0.0, 20)
    q = fs.add(HeartSample(t + 1, 75.0, beats, contact=True))
    assert bool(q & Quality.RR_ECTOPIC) == (bad > 0)
    assert fs.counts()["rr_ectopic"] == bad


def test_gradual_change_is_not_ectopic():
    fs = FeatureState(SPIDER, n=1)
    t = 0.0
    for i in range(120):  # 800 ms → 560 ms (75 → 107 bpm) in two minutes
        rr = 800.0 - 2.0 * i
        t += rr / 1000.0
        assert fs.add(HeartSample(t, 60000.0 / rr, (rr,), contact=True)) == Quality(0)
    assert fs.counts()["rr_ectopic"] == 0


def test_reference_falls_back_to_the_reported_rate():
    fs = FeatureState(SPIDER, n=1)
    q = fs.add(HeartSample(1.0, 75.0, (800.0, 1300.0), contact=True))  # 60000 / 75 = 800
    assert q == Quality.RR_ECTOPIC
    fs2 = FeatureState(SPIDER, n=1)  # no usable bpm and no history: nothing can be judged
    assert fs2.add(HeartSample(1.0, 0.0, (800.0, 1300.0), contact=True)) == Quality.BPM_IMPOSSIBLE


def test_contact_loss_excludes_bpm_and_rr_and_breaks_the_chain():
    fs = FeatureState(SPIDER, n=1)
    fs.set_baseline(70.0)
    t = steady(fs, 0.0, 10)
    hr_before = fs.observe(t)[0][Feature.HR_ABOVE_BPM]
    n_before = rr_diffs_in_window(fs, t)[1]
    q = fs.add(HeartSample(t + 1, 140.0, (430.0, 420.0), contact=False))
    assert q == Quality.NO_CONTACT
    assert fs.observe(t + 1)[0][Feature.HR_ABOVE_BPM] == hr_before
    fs.add(HeartSample(t + 2, 75.0, (800.0,), contact=True))
    # no difference across the lost stretch
    assert rr_diffs_in_window(fs, t + 2)[1] == n_before
    c = fs.counts()
    assert (c["flag_no_contact"], c["rr_untrusted"]) == (1, 2)


def test_device_error_from_the_source():
    fs = FeatureState(SPIDER, n=1)
    q = fs.add(HeartSample(1.0, 75.0, (800.0,), flags=Quality.DEVICE_ERROR))
    assert q == Quality.DEVICE_ERROR
    assert fs.observe(1.0)[0][Feature.STALE] == 1


def test_stale_stream_gap_is_flagged_and_breaks_the_chain():
    fs = FeatureState(SPIDER, n=1)
    t = steady(fs, 0.0, 10)
    n_before = rr_diffs_in_window(fs, t)[1]
    assert fs.observe(t + 6)[0][Feature.STALE] == 1  # stale while waiting
    q = fs.add(HeartSample(t + 7, 75.0, (800.0, 805.0), contact=True))
    assert q == Quality.AFTER_GAP
    assert rr_diffs_in_window(fs, t + 7)[1] == n_before + 1  # only the pair inside the sample
    assert fs.counts()["flag_after_gap"] == 1
    assert fs.observe(t + 7)[0][Feature.STALE] == 0


def test_a_lost_notification_breaks_the_chain_but_is_no_gap():
    fs = FeatureState(SPIDER, n=1)
    t = steady(fs, 0.0, 10)
    n_before = rr_diffs_in_window(fs, t)[1]
    q = fs.add(HeartSample(t + 2.8, 75.0, (800.0,), contact=True))  # > chain_gap_s, < stale
    assert q == Quality(0)
    assert rr_diffs_in_window(fs, t + 2.8)[1] == n_before


def test_rmssd_skips_pairs_with_artifacts():
    rng = np.random.default_rng(3)
    fs = FeatureState(SPIDER, n=1)
    beats: list[float | None] = []
    t = 4.0  # samples at 5..64 s: all inside the RMSSD window at 64 s (bins 1..12)
    for i in range(60):
        t += 1.0
        rr = 800.0 + rng.normal(0, 20)
        if i in (20, 40):
            fs.add(HeartSample(t, 75.0, (rr, 520.0), contact=True))
            beats += [rr, None]
        else:
            fs.add(HeartSample(t, 75.0, (rr,), contact=True))
            beats.append(rr)
    diffs = [b - a for a, b in itertools.pairwise(beats) if a is not None and b is not None]
    direct = math.sqrt(sum(d * d for d in diffs) / len(diffs))
    assert fs.observe(t)[0][Feature.RMSSD_MS] == pytest.approx(direct, rel=1e-12)
    assert fs.counts()["rr_ectopic"] == 2


@pytest.mark.parametrize("m", [1, 4, 7])
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_ring_median_matches_numpy(m, missing):
    rng = np.random.default_rng(m)
    for _ in range(300):
        ring = rng.normal(800, 50, m)
        ring[rng.random(m) < missing] = np.nan
        vals = ring[~np.isnan(ring)]
        want = np.median(vals) if len(vals) >= min(3, m) else np.nan
        np.testing.assert_equal(ring_median(ring, min(3, m)), want)


def test_ring_keeps_the_last_plausible_beats():
    ring = np.array([np.nan, 800.0, 810.0])
    assert ring_median(ring, 2) == 805.0
    assert math.isnan(ring_median(ring, 3))
    pos = 0  # the oldest slot
    for x in (820.0, 830.0, 790.0):
        pos = ring_push(ring, pos, x)
    assert pos == 0 and sorted(ring) == [790.0, 820.0, 830.0]
    assert ring_median(ring, 3) == 820.0


def test_absent_slots_may_carry_any_time():
    rng = np.random.default_rng(3)
    n, s_ = 4, 5
    a = FeatureState(SPIDER, n=n, t0=0.0)
    b = FeatureState(SPIDER, n=n, t0=0.0)
    t = 0.0
    for blk in range(40):
        ts = t + np.cumsum(rng.uniform(0.5, 1.5, (s_, n)), axis=0)
        t = float(ts.max())
        bpm = rng.normal(80, 5, (s_, n))
        cnt = rng.integers(0, 3, (s_, n))
        rr = np.where(np.arange(3) < cnt[..., None], 60000 / bpm[..., None], np.nan)
        present = rng.random((s_, n)) < 0.7
        if blk < 3:
            present[:, 0] = False
        a.update_block(ts, bpm, rr, cnt, None, present)
        b.update_block(np.where(present, ts, np.nan), bpm, rr, cnt, None, present)
    np.testing.assert_array_equal(a.observe(t + 1), b.observe(t + 1))
    assert np.isfinite(b.observe(t + 1)).all()
