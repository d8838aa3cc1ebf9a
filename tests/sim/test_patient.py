"""The patient model: pure batch-first dynamics (exposure_ctrl/sim/patient.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import patient as pt
from exposure_ctrl.sim.arrays import take_rows
from exposure_ctrl.sim.cohorts import sample_patients
from exposure_ctrl.sim.noise import NoiseLayout, split_noise


@pytest.fixture(scope="module")
def spider():
    return resolve_scenario("spider")


@pytest.fixture(scope="module")
def params(spider):
    return sample_patients(spider, "spider-moderate", range(12))


def _noise(rng, layout, n):
    return split_noise(layout, rng.random((layout.n_uniform, n)), rng.standard_normal((layout.n_normal, n)))


def _safe(sc, n):
    return np.broadcast_to(np.asarray(sc.positions(sc.safe_state)), (n, sc.n_parameters))


def _run(params, sc, schedule, seed=0, grid=None):
    """Run a schedule of positions (T, N, K); return the list of traces and the final state."""
    grid = grid or pt.make_grid(sc.timing.decision_period_s)
    layout = NoiseLayout(beats=pt.beats_capacity(grid.period_s), sensor_z=0)
    rng = np.random.default_rng(seed)
    n = params.n
    state = pt.initial(params, schedule[0], rng.standard_normal(n), rng.random(n))
    traces = []
    for pos in schedule:
        pn, _ = _noise(rng, layout, n)
        state, tr = pt.transition(params, state, pos, pn, grid)
        traces.append(tr)
    return traces, state


def test_top_of_hierarchy_drives_fear_one_and_safe_state_little(spider, params):
    n, k = params.n, spider.n_parameters
    top = np.broadcast_to(spider.hierarchy_positions[-1], (n, k))
    d_top, _ = pt.scene_drive(params, top, np.zeros((n, k)))
    np.testing.assert_allclose(d_top, 1.0, rtol=1e-12)
    d_safe, _ = pt.scene_drive(params, _safe(spider, n), np.zeros((n, k)))
    assert np.all(d_safe < 0.1)
    # habituation lowers the drive, sensitisation raises it
    d_hab, _ = pt.scene_drive(params, top, np.full((n, k), 0.5))
    d_sens, _ = pt.scene_drive(params, top, np.full((n, k), -0.3))
    assert np.all(d_hab < d_top) and np.all(d_sens > d_top)


def test_batch_equals_single_patients(spider, params):
    """N patients in one batch evolve exactly as N single-patient runs with the same noise."""
    grid = pt.make_grid(spider.timing.decision_period_s)
    layout = NoiseLayout(beats=pt.beats_capacity(grid.period_s), sensor_z=0)
    rng = np.random.default_rng(7)
    n = params.n
    T = 40
    steps = rng.integers(0, len(spider.hierarchy), size=(T, n))
    sched = spider.hierarchy_positions[steps]  # (T, N, K)
    z0, u0 = rng.standard_normal(n), rng.random(n)
    draws = [(rng.random((layout.n_uniform, n)), rng.standard_normal((layout.n_normal, n))) for _ in range(T)]

    def run(rows):
        p = take_rows(params, rows)
        st = pt.initial(p, sched[0][rows], z0[rows], u0[rows])
        out = []
        for t in range(T):
            pn, _ = split_noise(layout, draws[t][0][:, rows], draws[t][1][:, rows])
            st, tr = pt.transition(p, st, sched[t][rows], pn, grid)
            out.append((tr.hr_bpm, tr.fear, tr.suds, st.habituation, st.aborted))
        return out

    batch = run(np.arange(n))
    for i in range(n):
        single = run(np.array([i]))
        for (bh, bf, bs, bhab, bab), (sh, sf, ss, shab, sab) in zip(batch, single):
            np.testing.assert_allclose(bh[:, i], sh[:, 0], rtol=1e-12)
            np.testing.assert_allclose(bf[:, i], sf[:, 0], rtol=1e-12, atol=1e-15)
            assert bs[i] == ss[0] and bab[i] == sab[0]
            np.testing.assert_allclose(bhab[i], shab[0], rtol=1e-12, atol=1e-15)


def test_fear_waits_for_the_onset_delay_then_rises_faster_than_it_decays(spider, params):
    n, k = params.n, spider.n_parameters
    p = dataclasses.replace(params, onset_delay_s=np.full(n, 2.5))
    safe = _safe(spider, n)
    top = np.broadcast_to(spider.hierarchy_positions[-1], (n, k))
    grid = pt.make_grid(5.0)
    sched = np.stack([safe] * 12 + [top] * 24 + [safe] * 24)
    traces, _ = _run(p, spider, sched, grid=grid)
    switch = traces[12].fear  # first period with the top scene; samples at 1..5 s
    before = traces[11].fear[-1]
    assert np.all(np.abs(switch[1] - before) < 0.02)  # 2 s: not yet perceived
    assert np.all(switch[4] > before + 0.05)  # 5 s: rising
    # time to cover half the way up vs. half the way down (rise tau < decay tau)
    fear = np.concatenate([t.fear for t in traces])  # (T*5, N)
    up = fear[60:180]
    down = fear[180:]
    lo, hi = fear[59], fear[179]
    t_up = np.argmax(up >= lo + 0.5 * (hi - lo), axis=0)
    t_down = np.argmax(down <= lo + 0.5 * (hi - lo), axis=0)
    faster = (p.rise_tau_s < p.decay_tau_s)
    assert np.mean(t_up[faster] < t_down[faster]) > 0.9


def test_no_habituation_at_low_fear_habituation_in_the_window_sensitisation_above(spider):
    sc = spider
    base = sample_patients(sc, "spider-moderate", range(6))
    n, k = base.n, sc.n_parameters
    top = np.broadcast_to(sc.hierarchy_positions[-1], (n, k))
    sched = np.stack([top] * 120)  # 10 minutes at the top
    # low tolerance: sensitisation; huge tolerance with low activation: habituation;
    # activation above the reachable fear: nothing happens
    cases = {
        "sensitise": dataclasses.replace(base, tolerance=np.full(n, 0.5), abort_after_s=np.full(n, 1e9)),
        "habituate": dataclasses.replace(base, tolerance=np.full(n, 5.0), activation=np.full(n, 0.1)),
        "inactive": dataclasses.replace(base, tolerance=np.full(n, 5.0), activation=np.full(n, 3.0)),
    }
    h, d = {}, {}
    for name, p in cases.items():
        _, st = _run(p, sc, sched)
        h[name] = st.habituation
        d[name], _ = pt.scene_drive(p, top, st.habituation)
    assert np.all(h["sensitise"].min(axis=1) < 0) and np.all(d["sensitise"] > 1.05)
    assert np.all(h["habituate"].min(axis=1) >= 0) and np.all(d["habituate"] < 0.75)
    np.testing.assert_array_equal(h["inactive"], 0.0)


def test_habituation_is_specific_to_the_level(spider):
    """What is habituated at a low step is a smaller share of a higher step's fear."""
    sc = spider
    p = sample_patients(sc, "spider-moderate", range(6))
    n, k = p.n, sc.n_parameters
    p = dataclasses.replace(p, tolerance=np.full(n, 5.0), activation=np.full(n, 0.01))
    low = np.broadcast_to(sc.hierarchy_positions[4], (n, k))
    top = np.broadcast_to(sc.hierarchy_positions[-1], (n, k))
    _, st = _run(p, sc, np.stack([low] * 240))  # 20 minutes at a low step
    zero = np.zeros((n, k))
    frac_low = 1 - pt.scene_drive(p, low, st.habituation)[0] / pt.scene_drive(p, low, zero)[0]
    frac_top = 1 - pt.scene_drive(p, top, st.habituation)[0] / pt.scene_drive(p, top, zero)[0]
    assert np.all(frac_low > 0.3) and np.all(frac_top < frac_low - 0.1)


def test_abort_after_sustained_fear_above_tolerance(spider):
    p = sample_patients(spider, "spider-severe", range(8))
    n, k = p.n, spider.n_parameters
    p = dataclasses.replace(p, tolerance=np.full(n, 0.5), abort_after_s=np.full(n, 40.0))
    top = np.broadcast_to(spider.hierarchy_positions[-1], (n, k))
    traces, st = _run(p, spider, np.stack([top] * 30))
    assert st.aborted.all()
    first = np.array([next(i for i, t in enumerate(traces) if t.aborted_now[j]) for j in range(n)])
    assert np.all(first * 5.0 >= 40.0 - 5.0)  # not before 40 s above tolerance
    assert sum(t.aborted_now.sum() for t in traces) == n  # reported once


def test_beats_are_consistent_and_rmssd_falls_with_arousal(spider, params):
    n, k = params.n, spider.n_parameters
    # strong responders so that the fall of RMSSD is visible for everyone
    p = dataclasses.replace(params, hr_gain_bpm=np.full(n, 30.0), tolerance=np.full(n, 5.0), ectopic_per_beat=np.zeros(n))
    safe, top = _safe(spider, n), np.broadcast_to(spider.hierarchy_positions[-1], (n, k))
    traces, _ = _run(p, spider, np.stack([safe] * 48 + [top] * 48))

    def rr_of(tr_list, i):
        return np.concatenate([t.beat_rr_ms[t.beat_valid[:, i], i] for t in tr_list])

    for i in range(n):
        bt = np.concatenate([t.beat_t_s[t.beat_valid[:, i], i] for t in traces])
        rr = rr_of(traces, i)
        # beat times increase and RR intervals are their differences
        assert np.all(np.diff(bt) > 0)
        np.testing.assert_allclose(np.diff(bt) * 1000.0, rr[1:], rtol=1e-9, atol=1e-6)
    rest = np.array([np.sqrt(np.mean(np.diff(rr_of(traces[24:48], i)) ** 2)) for i in range(n)])
    high = np.array([np.sqrt(np.mean(np.diff(rr_of(traces[72:], i)) ** 2)) for i in range(n)])
    assert np.median(1 - high / rest) > 0.15
    # heart rate follows the fear
    hr_rest = np.mean([t.hr_bpm.mean(axis=0) for t in traces[24:48]], axis=0)
    hr_top = np.mean([t.hr_bpm.mean(axis=0) for t in traces[72:]], axis=0)
    assert np.all(hr_top - hr_rest > 10)


def test_suds_is_monotone_in_fear_without_noise(params):
    n = params.n
    z = np.zeros(n)
    s = [pt.observe_suds(params, np.full(n, f), z) for f in (0.0, 0.3, 0.7, 1.2)]
    assert np.all(np.diff(np.stack(s), axis=0) >= 0)
    assert np.all((s[-1] >= 0) & (s[-1] <= 100))


def test_true_action_effects_match_the_drive_difference(spider, params):
    n, k = params.n, spider.n_parameters
    pos = np.broadcast_to(spider.hierarchy_positions[5], (n, k)).copy()
    state = pt.initial(params, pos, np.zeros(n), np.zeros(n))
    eff = pt.true_action_effects(params, state, pos, spider.n_levels)
    assert eff.shape == (n, spider.n_actions)
    assert np.all(eff[:, 0] == 0)
    mask = spider.action_mask(pos)
    assert np.array_equal(np.isfinite(eff), mask)
    a = spider.action_of("jar", "up")
    nxt = spider.apply_action(pos, np.full(n, a))
    d0, _ = pt.scene_drive(params, pos, state.habituation)
    d1, _ = pt.scene_drive(params, nxt, state.habituation)
    np.testing.assert_allclose(eff[:, a], params.hr_gain_bpm * (d1 - d0))


def test_next_session_keeps_a_fraction_of_habituation(params):
    n, k = params.n, params.n_parameters
    st = pt.initial(params, np.zeros((n, k), dtype=np.int64), np.zeros(n), np.zeros(n), np.full((n, k), 0.5))
    kept = pt.next_session(params, st.habituation)
    np.testing.assert_allclose(kept, 0.5 * params.retention[:, None] * np.ones((1, k)))
