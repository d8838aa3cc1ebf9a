"""FeatureState: incremental features equal a from-scratch computation; blocks equal single
samples; a batch of N equals N single runs; the observation layout is what the docs say."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from arousal_reference import Reference, Sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exposure_ctrl.arousal import (
    FEATURE_NAMES,
    FEATURE_SCALES,
    FEATURE_UNITS,
    N_FEATURES,
    Feature,
    FeatureConfig,
    FeatureState,
    pack_samples,
)
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample, Quality

SPIDER = resolve_scenario("spider")
R_MAX = 4


def make_events(seed: int, n_events: int, p_gap: float, p_art: float) -> list[tuple]:
    """A random stream for one patient: samples (with artifacts and gaps), scene changes, SUDS
    ratings and baselines, in time order. Values are continuous, so no threshold is hit
    exactly."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 100)
    hr = rng.uniform(55, 110)
    events: list[tuple] = []
    for _ in range(n_events):
        r = rng.random()
        if r < 0.05:
            t += rng.uniform(0, 0.5)
            events.append(("scene", t, float(rng.choice([0.1, 0.35, 0.6]))))
        elif r < 0.08:
            t += rng.uniform(0, 0.5)
            events.append(("suds", t, float(rng.uniform(0, 100))))
        elif r < 0.09:
            t += rng.uniform(0, 0.5)
            events.append(("baseline", t, (float(rng.uniform(55, 90)), float(rng.uniform(10, 80)))))
        else:
            t += rng.uniform(5.5, 40) if rng.random() < p_gap else rng.uniform(0.6, 1.6)
            hr = float(np.clip(hr + rng.normal(0, 2.0), 45, 180))
            bpm = hr + rng.normal(0, 0.5)
            if rng.random() < p_art:
                bpm = float(rng.choice([0.0, 250.0, np.nan, 25.0]))
            k = int(rng.integers(0, R_MAX + 1))
            rr = list(60000.0 / hr * (1 + rng.normal(0, 0.05, k)))
            for j in range(k):
                if rng.random() < p_art:
                    rr[j] = float(
                        rng.choice(
                            [
                                rr[j] * 0.55,
                                rr[j] * 1.9,
                                rr[j] * rng.uniform(0.65, 1.35),
                                150.0,
                                2600.0,
                            ]
                        )
                    )
            contact = int(rng.choice([-1, 1, 1, 1, 0])) if rng.random() < p_art * 2 else 1
            src = int(Quality.DEVICE_ERROR) if rng.random() < p_art / 3 else 0
            events.append(("sample", t, Sample(t, bpm, rr, contact, src)))
    return events


def feed_reference(events: list[tuple]) -> Reference:
    ref = Reference(FeatureConfig.from_scenario(SPIDER))
    tg = SPIDER.targets
    ref.low, ref.high = tg.arousal_window_bpm.low, tg.arousal_window_bpm.high
    ref.ceiling, ref.hard_max = tg.ceiling_bpm, tg.hard_max_bpm
    for kind, t, v in events:
        if kind == "sample":
            ref.sample(v)
        elif kind == "scene":
            ref.scene(t, v)
        elif kind == "suds":
            ref.suds(t, v)
        else:
            ref.baseline(t, *v)
    return ref


def feed_state(
    events: list[tuple], rng: np.random.Generator | None = None, t0: float | None = None
) -> FeatureState:
    """Feed a FeatureState; runs of samples go in blocks of random size (1 when rng is None)."""
    fs = FeatureState(SPIDER, n=1, t0=t0)
    run: list[Sample] = []

    def flush() -> None:
        i = 0
        while i < len(run):
            size = 1 if rng is None else int(rng.integers(1, 7))
            chunk: list[Sample | None] = list(run[i : i + size])
            if rng is not None:  # slots without a sample, with no time, anywhere in the block
                for _ in range(int(rng.integers(0, 3))):
                    chunk.insert(int(rng.integers(0, len(chunk) + 1)), None)
            s_ = len(chunk)
            rr = np.full((s_, 1, R_MAX), np.nan)
            for j, smp in enumerate(chunk):
                if smp is not None:
                    rr[j, 0, : len(smp.rr)] = smp.rr
            fs.update_block(
                np.array([np.nan if c is None else c.t for c in chunk]),
                np.array([[77.0 if c is None else c.bpm] for c in chunk]),
                rr,
                np.array([[0 if c is None else len(c.rr)] for c in chunk]),
                np.array([[1 if c is None else c.contact] for c in chunk]),
                np.array([[c is not None] for c in chunk]),
                np.array([[0 if c is None else c.src] for c in chunk]),
            )
            i += size
        run.clear()

    for kind, t, v in events:
        if kind == "sample":
            run.append(v)
            continue
        flush()
        if kind == "scene":
            fs.set_scene(t, intensity=v)
        elif kind == "suds":
            fs.set_suds(t, v)
        else:
            fs.set_baseline(v[0], rmssd_ms=v[1])
    flush()
    return fs


def assert_features_close(got: np.ndarray, want: dict[str, float]) -> None:
    for i, name in enumerate(FEATURE_NAMES):
        tol = 1e-6 if name == "hr_slope_bpm_per_min" else 1e-8
        assert got[i] == pytest.approx(want[name], rel=tol, abs=tol), name


stream_args = {
    "seed": st.integers(0, 2**32 - 1),
    "n_events": st.integers(1, 90),
    "p_gap": st.sampled_from([0.0, 0.05, 0.2]),
    "p_art": st.sampled_from([0.0, 0.05, 0.25]),
    "extra": st.floats(0, 30),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**stream_args)
def test_incremental_features_equal_from_scratch(seed, n_events, p_gap, p_art, extra):
    events = make_events(seed, n_events, p_gap, p_art)
    t_now = events[-1][1] + extra
    t0 = events[0][1]
    fs = feed_state(events, t0=t0)
    ref = feed_reference(events)
    assert_features_close(fs.observe(t_now)[0], ref.features(t_now))
    counts = fs.counts()
    for key, value in ref.counts().items():
        assert counts[key] == value, key


@settings(max_examples=40, deadline=None)
@given(**stream_args, block_seed=st.integers(0, 2**32 - 1))
def test_blocks_equal_single_samples(seed, n_events, p_gap, p_art, extra, block_seed):
    events = make_events(seed, n_events, p_gap, p_art)
    t_now = events[-1][1] + extra
    single = feed_state(events, t0=0.0)
    blocks = feed_state(events, np.random.default_rng(block_seed), t0=0.0)
    np.testing.assert_allclose(blocks.observe(t_now), single.observe(t_now), rtol=1e-10, atol=1e-9)
    assert blocks.counts() == single.counts()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 6), steps=st.integers(1, 60))
def test_batch_of_n_equals_n_single_runs(seed, n, steps):
    rng = np.random.default_rng(seed)
    batch = FeatureState(SPIDER, n=n, t0=0.0)
    singles = [FeatureState(SPIDER, n=1, t0=0.0) for _ in range(n)]
    t = 0.0
    hr = rng.uniform(60, 100, n)
    for _ in range(steps):
        r = rng.random()
        if r < 0.1:
            pos = np.stack([rng.integers(0, SPIDER.n_levels) for _ in range(n)])
            mask = rng.random(n) < 0.5
            batch.set_scene(t, pos, mask=mask)
            for i in np.flatnonzero(mask):
                singles[i].set_scene(t, pos[i])
            continue
        if r < 0.15:
            v = rng.uniform(0, 100, n)
            mask = rng.random(n) < 0.5
            batch.set_suds(t, v, mask)
            for i in np.flatnonzero(mask):
                singles[i].set_suds(t, v[i])
            continue
        s_ = int(rng.integers(1, 6))
        ts = t + np.cumsum(rng.uniform(0.5, 3.0, s_))
        t = float(ts[-1])
        hr = np.clip(hr + rng.normal(0, 2, n), 45, 170)
        bpm = hr + rng.normal(0, 1, (s_, n))
        bpm[rng.random((s_, n)) < 0.05] = np.nan
        cnt = rng.integers(0, R_MAX + 1, (s_, n))
        rr = 60000.0 / bpm[..., None] * (1 + rng.normal(0, 0.05, (s_, n, R_MAX)))
        rr[rng.random((s_, n, R_MAX)) < 0.05] *= 1.8
        rr[np.arange(R_MAX) >= cnt[..., None]] = np.nan
        contact = rng.choice([-1, 0, 1], (s_, n), p=[0.1, 0.05, 0.85])
        present = rng.random((s_, n)) < 0.85
        flags = batch.update_block(ts, bpm, rr, cnt, contact, present)
        for i in range(n):
            fl = singles[i].update_block(
                ts,
                bpm[:, i : i + 1],
                rr[:, i : i + 1],
                cnt[:, i : i + 1],
                contact[:, i : i + 1],
                present[:, i : i + 1],
            )
            np.testing.assert_array_equal(fl[:, 0], flags[:, i])
    t_now = t + rng.uniform(0, 10)
    got = batch.observe(t_now)
    for i in range(n):
        np.testing.assert_allclose(got[i], singles[i].observe(t_now)[0], rtol=1e-12, atol=1e-12)
        assert batch.counts(i) == singles[i].counts()


# --- RMSSD against a direct computation --------------------------------------------------------


def test_rmssd_equals_direct_computation_on_clean_rr():
    rng = np.random.default_rng(7)
    fs = FeatureState(SPIDER, n=1)
    beats: list[tuple[float, float]] = []  # (sample time, rr)
    t = 0.0
    for _ in range(120):
        t += 1.0
        rr = list(800 + rng.normal(0, 25, 1 + int(rng.integers(0, 2))))
        fs.add(HeartSample(t, 75.0, tuple(rr), contact=True))
        beats += [(t, x) for x in rr]
    cfg = fs.config
    now_bin = math.floor(t / cfg.bin_s)
    diffs = [
        b1[1] - b0[1]
        for b0, b1 in itertools.pairwise(beats)
        if math.floor(b1[0] / cfg.bin_s) > now_bin - cfg.rmssd_bins
    ]
    direct = math.sqrt(sum(d * d for d in diffs) / len(diffs))
    obs = fs.observe(t)[0]
    assert obs[Feature.RMSSD_VALID] == 1
    assert obs[Feature.RMSSD_MS] == pytest.approx(direct, rel=1e-12)
    # and numpy's own formula over the same successive differences
    assert obs[Feature.RMSSD_MS] == pytest.approx(
        float(np.sqrt(np.mean(np.square(diffs)))), rel=1e-12
    )


def test_rmssd_needs_enough_clean_rr():
    fs = FeatureState(SPIDER, n=1)
    for i in range(20):  # 20 s of beats: less than rmssd_min_s = 30 s
        fs.add(HeartSample(float(i), 60.0, (1000.0 + (i % 2) * 20,), contact=True))
    obs = fs.observe(20.0)[0]
    assert obs[Feature.RMSSD_VALID] == 0
    assert obs[Feature.RMSSD_MS] == 0


def test_rmssd_window_forgets_old_beats():
    fs = FeatureState(SPIDER, n=1)
    t = 0.0
    for i in range(60):  # a minute of large differences
        t += 1.0
        fs.add(HeartSample(t, 60.0, (1000.0 + (i % 2) * 200,), contact=True))
    noisy = fs.observe(t)[0][Feature.RMSSD_MS]
    for i in range(70):  # then more than a window of small ones
        t += 1.0
        fs.add(HeartSample(t, 60.0, (1000.0 + (i % 2) * 10,), contact=True))
    calm = fs.observe(t)[0][Feature.RMSSD_MS]
    assert noisy == pytest.approx(200.0)
    assert calm == pytest.approx(10.0)


# --- individual features ----------------------------------------------------------------------


def test_slope_of_a_linear_ramp():
    fs = FeatureState(SPIDER, n=1)
    fs.set_baseline(70.0)
    for i in range(200):
        fs.add(HeartSample(float(i), 70.0 + 0.1 * i, (), contact=True))  # +6 bpm/min
    obs = fs.observe(199.0)[0]
    assert obs[Feature.HR_SLOPE_BPM_PER_MIN] == pytest.approx(6.0, rel=1e-6)
    # the smoothed rate lags the ramp by slope * tau
    assert obs[Feature.HR_ABOVE_BPM] == pytest.approx(19.9 - 0.1 * fs.config.hr_tau_s, abs=0.05)


def test_habituation_peak_and_fall():
    fs = FeatureState(SPIDER, n=1)
    fs.set_baseline(70.0)
    fs.set_scene(0.0, intensity=0.4)
    t = 0.0
    for i in range(120):
        t += 1.0
        above = (
            20.0 * math.exp(-((t - 30) ** 2) / 200) if t < 30 else 20.0 * math.exp(-(t - 30) / 60)
        )
        fs.add(HeartSample(t, 70.0 + above, (), contact=True))
    obs = fs.observe(t)[0]
    assert (
        17.0 < obs[Feature.PEAK_ABOVE_BPM] < 20.0
    )  # the smoothed peak: a little below the raw one
    assert obs[Feature.FALL_FROM_PEAK_FRAC] > 0.5  # the classic criterion is met
    assert obs[Feature.AT_INTENSITY_S] == pytest.approx(t)
    # same intensity again: the level continues; a new intensity restarts peak and timer
    fs.set_scene(t, intensity=0.4)
    assert fs.observe(t)[0][Feature.PEAK_ABOVE_BPM] == pytest.approx(obs[Feature.PEAK_ABOVE_BPM])
    assert fs.observe(t)[0][Feature.SINCE_SCENE_CHANGE_S] == 0
    fs.set_scene(t, intensity=0.5)
    again = fs.observe(t + 3)[0]
    assert again[Feature.AT_INTENSITY_S] == pytest.approx(3.0)
    assert again[Feature.PEAK_ABOVE_BPM] == pytest.approx(again[Feature.HR_ABOVE_BPM])
    assert again[Feature.FALL_FROM_PEAK_BPM] == 0


def test_in_window_fraction_and_normalised_arousal():
    fs = FeatureState(SPIDER, n=1)
    fs.set_baseline(70.0)
    low, high = SPIDER.targets.arousal_window_bpm.low, SPIDER.targets.arousal_window_bpm.high
    t = 0.0
    for _ in range(200):  # settle inside the window, at its middle
        t += 1.0
        fs.add(HeartSample(t, 70.0 + 0.5 * (low + high), (), contact=True))
    obs = fs.observe(t)[0]
    assert obs[Feature.IN_WINDOW_FRAC] == pytest.approx(1.0)
    assert obs[Feature.AROUSAL_NORM] == pytest.approx(0.5, abs=1e-6)
    for _ in range(100):  # far above the window
        t += 1.0
        fs.add(HeartSample(t, 70.0 + high + 10, (), contact=True))
    obs = fs.observe(t)[0]
    assert 0.3 < obs[Feature.IN_WINDOW_FRAC] < 0.5
    assert obs[Feature.ABOVE_WINDOW_FRAC] == pytest.approx(1 - obs[Feature.IN_WINDOW_FRAC])
    assert obs[Feature.CEILING_MARGIN_BPM] == pytest.approx(
        SPIDER.targets.ceiling_bpm - high - 10, abs=1e-3
    )


def test_staleness_and_suds():
    fs = FeatureState(SPIDER, n=1, t0=0.0)
    obs = fs.observe(3.0)[0]
    assert obs[Feature.STALE] == 1 and obs[Feature.SINCE_CLEAN_S] == 3.0
    fs.add(HeartSample(4.0, 80.0, contact=True))
    assert fs.observe(6.0)[0][Feature.STALE] == 0
    fs.add(HeartSample(7.0, 80.0, contact=False))  # contact lost: not clean
    obs = fs.observe(10.5)[0]
    assert obs[Feature.SINCE_CLEAN_S] == pytest.approx(6.5)
    assert obs[Feature.STALE] == 1
    assert obs[Feature.CLEAN_FRAC] == pytest.approx(0.5)
    fs.set_suds(11.0, 55)
    obs = fs.observe(20.0)[0]
    assert (obs[Feature.SUDS], obs[Feature.SUDS_AGE_S], obs[Feature.SUDS_KNOWN]) == (55, 9.0, 1)
    with pytest.raises(ValueError, match="0 to 100"):
        fs.set_suds(21.0, 120)


def test_observation_layout_is_documented_and_finite():
    assert N_FEATURES == len(FEATURE_NAMES) == len(FEATURE_SCALES) == len(Feature)
    assert set(FEATURE_UNITS) == set(FEATURE_NAMES)
    assert [f.value for f in Feature] == list(range(N_FEATURES))
    doc = (Path(__file__).parents[2] / "docs" / "arousal.md").read_text(encoding="utf-8")
    for name in FEATURE_NAMES:
        assert f"`{name}`" in doc, f"{name} is not documented in docs/arousal.md"
    fs = FeatureState(SPIDER, n=3)
    assert np.isfinite(fs.observe(0.0)).all()  # nothing seen yet: still finite
    scaled = fs.observe(0.0, scaled=True)
    np.testing.assert_allclose(scaled * FEATURE_SCALES, fs.observe(0.0))


def test_pack_samples_matches_add():
    samples = [
        HeartSample(1.0, 70.0, (850.0, 860.0), contact=True),
        HeartSample(2.0, 71.0, (), contact=None),
        HeartSample(3.0, 300.0, (845.0,), contact=True),
        HeartSample(4.0, 72.0, (840.0, 830.0, 835.0), contact=False),
    ]
    a = FeatureState(SPIDER, n=1)
    b = FeatureState(SPIDER, n=1)
    flags_a = a.add_many(samples)
    flags_b = pack_samples(samples).feed(b)
    assert [int(f) for f in flags_a] == list(flags_b[:, 0])
    np.testing.assert_allclose(a.observe(5.0), b.observe(5.0))
    assert flags_a[2] & Quality.BPM_IMPOSSIBLE and flags_a[3] & Quality.NO_CONTACT


def test_add_refuses_a_batch():
    with pytest.raises(ValueError, match="one patient"):
        FeatureState(SPIDER, n=2).add(HeartSample(0.0, 70.0))
