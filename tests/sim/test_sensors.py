"""Simulated sensors (exposure_ctrl/sim/sensors.py): notifications like a real strap's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from exposure_ctrl.arousal import FeatureState
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample, Quality
from exposure_ctrl.sim import Simulator, frames_to_samples, sample_patients
from exposure_ctrl.sim.sensors import RR_TICK_MS, Outage, StrapConfig, get_sensor


@pytest.fixture(scope="module")
def spider():
    return resolve_scenario("spider")


def _run(sc, sensor, n=6, steps=60, seed=0, cohort="spider-moderate"):
    sim = Simulator(sc, sample_patients(sc, cohort, range(n)), rng=np.random.default_rng(seed), sensor=sensor)
    pos = np.broadcast_to(sc.hierarchy_positions[4], (n, sc.n_parameters))
    before = [sim.patient.last_beat_s.copy()]
    out = []
    for _ in range(steps):
        out.append(sim.step(pos))
        before.append(sim.patient.last_beat_s.copy())
    return sim, out


def test_ideal_strap_delivers_every_beat_once_in_time_order(spider):
    sim, steps = _run(spider, "ideal")
    for i in range(sim.n):
        beats = np.concatenate([s.trace.beat_rr_ms[s.trace.beat_valid[:, i], i] for s in steps])
        sent = np.concatenate(
            [s.frames.rr_ms[slot, i, : s.frames.n_rr[slot, i]] for s in steps for slot in range(s.frames.n_slots)]
        )
        assert len(sent) == len(beats)
        np.testing.assert_allclose(sent, beats, atol=RR_TICK_MS / 2 + 1e-9)  # 1/1024 s resolution
        assert np.all(np.isnan(np.concatenate([s.frames.rr_ms[:, i][~np.isfinite(s.frames.rr_ms[:, i])] for s in steps])))
    f = steps[-1].frames
    assert f.present.all() and (f.contact == 1).all() and (f.flags == 0).all()
    # one notification per second, times increasing
    t = np.concatenate([s.frames.t_s[:, 0] for s in steps])
    np.testing.assert_allclose(np.diff(t), 1.0)
    # the reported bpm is the mean rate of the slot's beats
    s = steps[10].frames
    k = s.n_rr[2, 0]
    if k:
        assert s.bpm[2, 0] == np.round(60000.0 * k / np.nansum(s.rr_ms[2, 0]))


def test_contact_loss_dropouts_and_disconnects(spider):
    cfg = StrapConfig(
        name="test",
        contact_loss=Outage(6.0, (3.0, 6.0)),
        dropout=Outage(6.0, (2.0, 3.0)),
        disconnect=Outage(1.0, (10.0, 20.0)),
    )
    sim, steps = _run(spider, cfg, n=8, steps=240)
    present = np.concatenate([s.frames.present for s in steps])
    contact = np.concatenate([s.frames.contact for s in steps])
    flags = np.concatenate([s.frames.flags for s in steps])
    bpm = np.concatenate([s.frames.bpm for s in steps])
    n_rr = np.concatenate([s.frames.n_rr for s in steps])
    disc = np.concatenate([s.frames.disconnected for s in steps])
    no_contact = contact == 0
    assert no_contact.mean() > 0.05 and (~present).mean() > 0.05
    assert np.all(bpm[no_contact] == 0) and np.all(n_rr[no_contact] == 0)
    assert np.all(flags[no_contact] == int(Quality.NO_CONTACT)) and np.all(flags[~no_contact] == 0)
    assert np.all(~present[disc])
    # disconnects last at least their minimum duration
    runs = []
    for i in range(sim.n):
        d = disc[:, i].astype(int)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], d, [0]])))
        starts, ends = edges[::2], edges[1::2]
        runs += [e - b for b, e in zip(starts, ends) if b > 0 and e < len(d)]  # not cut by either end
    assert runs and min(runs) >= 9


def test_wrist_sensor_lags_and_sends_no_rr(spider):
    sim, steps = _run(spider, "wrist", n=4, steps=40)
    f = steps[-1].frames
    assert np.all(f.n_rr == 0) and np.all(np.isnan(f.rr_ms)) and np.all(f.contact == -1)
    # after a step up the wrist reading trails the true heart rate
    sc = spider
    n = 4
    sim2 = Simulator(sc, dataclasses.replace(sim.params), rng=np.random.default_rng(1), sensor=get_sensor("wrist"))
    safe = np.broadcast_to(np.asarray(sc.positions(sc.safe_state)), (n, sc.n_parameters))
    top = np.broadcast_to(sc.hierarchy_positions[-1], (n, sc.n_parameters))
    for _ in range(24):
        sim2.step(safe)
    s = [sim2.step(top) for _ in range(3)]
    true = np.concatenate([x.trace.hr_bpm for x in s])
    read = np.concatenate([x.frames.bpm for x in s])
    assert np.mean(read[5:12] < true[5:12]) > 0.7


def test_samples_are_real_heart_samples_the_features_accept(spider):
    sim, steps = _run(spider, "strap", n=1, steps=48)
    samples = [x for s in steps for x in frames_to_samples(s.frames, 0)]
    assert all(isinstance(x, HeartSample) and x.source == "sim" for x in samples)
    assert all(a.t < b.t for a, b in zip(samples, samples[1:]))
    fs = FeatureState(spider, n=1)
    fs.begin_baseline(0.0)
    fs.add_many(samples)
    base = fs.finish_baseline(samples[-1].t)
    assert abs(base.bpm[0] - sim.params.hr_rest_bpm[0]) < 25
    # the array form gives the same features as the HeartSample form
    fs2 = FeatureState(spider, n=1)
    fs2.begin_baseline(0.0)
    for s in steps:
        f = s.frames
        fs2.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
    base2 = fs2.finish_baseline(samples[-1].t)
    np.testing.assert_allclose(base2.bpm, base.bpm)
    np.testing.assert_allclose(fs2.observe(samples[-1].t), fs.observe(samples[-1].t), rtol=1e-9, atol=1e-9)


def test_unknown_sensor_names_suggest_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'strap'"):
        get_sensor("strapp")


def test_batched_simulator_equals_single_simulators_given_the_same_noise(spider):
    """Patients and straps: N in one batch give what N single simulators give with the same
    random numbers (the noise is sliced per patient)."""
    from exposure_ctrl.sim.arrays import take_rows

    n = 5
    params = sample_patients(spider, "spider-moderate", range(n))
    flaky = StrapConfig(name="t", contact_loss=Outage(3.0, (2.0, 4.0)), dropout=Outage(3.0, (1.0, 3.0)), disconnect=Outage(1.0, (5.0, 9.0)))
    big = Simulator(spider, params, rng=np.random.default_rng(0), sensor=flaky)
    lay = big.layout
    rng = np.random.default_rng(1)
    draws = [(rng.random((lay.n_uniform, n)), rng.standard_normal((lay.n_normal, n))) for _ in range(60)]
    sched = spider.hierarchy_positions[rng.integers(0, len(spider.hierarchy), size=(60, n))]

    def run(sim, rows):
        it = iter(draws)
        sim.noise.next = lambda: (lambda u, z: (u[:, rows], z[:, rows]))(*next(it))
        return [sim.step(sched[t][rows]) for t in range(60)]

    singles = []
    for i in range(n):
        s = Simulator(spider, take_rows(params, [i]), rng=np.random.default_rng(0), sensor=flaky)
        s.patient = take_rows(big.patient, [i])
        s.sensor_state = take_rows(big.sensor_state, [i])
        singles.append(run(s, np.array([i])))
    batch = run(big, np.arange(n))
    for i in range(n):
        for b, s in zip(batch, singles[i]):
            fb, fs = b.frames, s.frames
            np.testing.assert_array_equal(fb.present[:, i], fs.present[:, 0])
            np.testing.assert_array_equal(fb.contact[:, i], fs.contact[:, 0])
            np.testing.assert_allclose(fb.bpm[:, i], fs.bpm[:, 0])
            np.testing.assert_allclose(fb.rr_ms[:, i], fs.rr_ms[:, 0], equal_nan=True)
            np.testing.assert_allclose(b.trace.fear[:, i], s.trace.fear[:, 0], rtol=1e-12, atol=1e-15)
