"""The batched simulator (exposure_ctrl/sim/simulator.py): its fused, in-place kernel call gives
what the pure functions give."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import Simulator, sample_patients
from exposure_ctrl.sim import patient as pt
from exposure_ctrl.sim import sensors as sn
from exposure_ctrl.sim.arrays import copy_rows
from exposure_ctrl.sim.noise import split_noise


@pytest.mark.parametrize("sensor", ["strap-flaky", "wrist"])
def test_step_equals_transition_then_sensor_step(sensor):
    """Simulator.step runs the patient and sensor kernels in place in one call; the pure
    ``transition`` and ``sensor_step`` run them on copies. Same draws, same numbers."""
    sc = resolve_scenario("spider")
    n = 7
    sim = Simulator(sc, sample_patients(sc, "spider-severe", range(n)), rng=np.random.default_rng(3), sensor=sensor)
    rng = np.random.default_rng(4)
    state, sstate = copy_rows(sim.patient), copy_rows(sim.sensor_state)
    draws = []
    real_next = sim.noise.next

    def recording_next():
        u, z = real_next()
        draws.append((u.copy(), z.copy()))
        return u, z

    sim.noise.next = recording_next
    for t in range(80):
        pos = sc.hierarchy_positions[rng.integers(0, len(sc.hierarchy), size=n)]
        got = sim.step(pos)
        pnoise, snoise = split_noise(sim.layout, *draws[-1])
        before = state
        kept = copy_rows(before)
        state, trace = pt.transition(sim.params, before, pos, pnoise, sim.grid)
        sstate, frames = sn.sensor_step(sim.sensor, sstate, trace, before.t_s, before.last_beat_s, snoise, sim.grid, sim.m)
        # the pure function leaves its input alone
        for name in ("t_s", "habituation", "fear_fast", "last_beat_s", "shown", "pending"):
            np.testing.assert_array_equal(getattr(before, name), getattr(kept, name))
        for name in ("fear", "hr_bpm", "arousal_bpm", "beat_t_s", "beat_rr_ms", "beat_valid", "aborted_now", "suds"):
            np.testing.assert_array_equal(getattr(got.trace, name), getattr(trace, name), err_msg=name)
        for name in ("t_s", "bpm", "rr_ms", "n_rr", "contact", "flags", "present", "disconnected"):
            np.testing.assert_array_equal(getattr(got.frames, name), getattr(frames, name), err_msg=name)
        for name in ("t_s", "habituation", "fear_fast", "fear_slow", "hr_bpm", "aborted", "pending_in_s"):
            np.testing.assert_array_equal(getattr(sim.patient, name), getattr(state, name), err_msg=name)
        np.testing.assert_array_equal(sim.sensor_state.outage_left_s, sstate.outage_left_s)
        np.testing.assert_array_equal(sim.sensor_state.last_bpm, sstate.last_bpm)
    assert np.any(trace.beat_valid) and np.any(~frames.present)


def test_the_simulator_owns_its_state():
    """A state handed to the simulator is copied: stepping never writes into the caller's arrays."""
    sc = resolve_scenario("spider")
    sim = Simulator(sc, sample_patients(sc, "spider-moderate", range(3)), rng=np.random.default_rng(0))
    mine = copy_rows(sim.patient)
    sim.patient = mine
    t = mine.t_s.copy()
    sim.step(np.broadcast_to(sc.hierarchy_positions[4], (3, sc.n_parameters)))
    np.testing.assert_array_equal(mine.t_s, t)
    assert np.all(sim.patient.t_s == t + sc.timing.decision_period_s)


def test_beat_slots_past_the_period_are_marked_unused():
    sc = resolve_scenario("spider")
    n = 4
    sim = Simulator(sc, sample_patients(sc, "spider-moderate", range(n)), rng=np.random.default_rng(0))
    top = np.broadcast_to(sc.hierarchy_positions[-1], (n, sc.n_parameters))
    for _ in range(30):
        tr = sim.step(top).trace
        v = tr.beat_valid
        # valid beats are a prefix of each column, in time order, within the period
        assert np.all(v[:-1] | ~v[1:])
        t_end = sim.patient.t_s
        for i in range(n):
            bt = tr.beat_t_s[v[:, i], i]
            assert np.all(np.diff(bt) > 0) and np.all(bt <= t_end[i]) and np.all(bt > t_end[i] - 5.0 - 2.0)
            assert bt[-1] == sim.patient.last_beat_s[i]


def test_run_equals_repeated_steps():
    """Simulator.run (the baseline phase in one kernel call) gives the frames of as many steps,
    one after the other, and leaves the simulator where the steps would."""
    sc = resolve_scenario("spider")
    n = 3
    params = sample_patients(sc, "spider-moderate", range(n))
    flaky = "strap-flaky"
    a = Simulator(sc, params, rng=np.random.default_rng(5), sensor=flaky)
    b = Simulator(sc, params, rng=np.random.default_rng(5), sensor=flaky)
    pos = np.broadcast_to(sc.hierarchy_positions[3], (n, sc.n_parameters))
    got = a.run(pos, 13)
    steps = [b.step(pos).frames for _ in range(13)]
    for name in ("t_s", "bpm", "rr_ms", "n_rr", "contact", "flags", "present", "disconnected"):
        np.testing.assert_array_equal(getattr(got, name), np.concatenate([getattr(f, name) for f in steps]), err_msg=name)
    np.testing.assert_array_equal(a.patient.habituation, b.patient.habituation)
    np.testing.assert_array_equal(a.patient.last_beat_s, b.patient.last_beat_s)
    np.testing.assert_array_equal(a.sensor_state.outage_left_s, b.sensor_state.outage_left_s)
    np.testing.assert_array_equal(a.step(pos).frames.bpm, b.step(pos).frames.bpm)


def test_step_into_the_simulators_own_arrays_gives_the_same_numbers():
    """``step(reuse=True)`` writes every period into the same output arrays (the same SimStep);
    the numbers equal those of fresh arrays, also after some rows were replaced."""
    import dataclasses

    sc = resolve_scenario("spider")
    n = 5
    params = sample_patients(sc, "spider-moderate", range(n))
    fresh = Simulator(sc, params, rng=np.random.default_rng(8), sensor="strap-flaky")
    reused = Simulator(sc, params, rng=np.random.default_rng(8), sensor="strap-flaky")
    rng = np.random.default_rng(9)
    first = None
    for t in range(40):
        if t == 20:  # a vector environment's autoreset of two rows
            for sim in (fresh, reused):
                sub = Simulator(sc, sample_patients(sc, "spider-severe", [11, 12]), rng=np.random.default_rng(1))
                sim.put_rows(np.array([1, 3]), sub)
        pos = sc.hierarchy_positions[rng.integers(0, len(sc.hierarchy), size=n)]
        a = fresh.step(pos)
        b = reused.step(pos, reuse=True)
        first = b if first is None else first
        assert b is first
        for part in ("trace", "frames"):
            for f in dataclasses.fields(getattr(a, part)):
                np.testing.assert_array_equal(getattr(getattr(b, part), f.name), getattr(getattr(a, part), f.name))
        for f in dataclasses.fields(fresh.patient):
            np.testing.assert_array_equal(getattr(reused.patient, f.name), getattr(fresh.patient, f.name))
    assert not np.shares_memory(fresh.step(pos).frames.bpm, fresh.step(pos).frames.bpm)


def test_the_number_of_patients_is_fixed_at_construction():
    """The noise source, the reused outputs and the cached kernel arguments are sized for the
    patients given to ``__init__``; parameters for another number of patients are refused (the
    compiled kernel does not check bounds), the same number (``put_rows``' case) is taken."""
    sc = resolve_scenario("spider")
    sim = Simulator(sc, sample_patients(sc, "spider-severe", range(3)), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="3 patients"):
        sim.params = sample_patients(sc, "spider-severe", range(4))
    other = sample_patients(sc, "spider-severe", range(3, 6))
    sim.params = other
    assert sim.params is other
    assert sim.step(sim.scenario.positions(sc.safe_state), reuse=True).frames.bpm.shape[1] == 3
