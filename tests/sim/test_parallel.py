"""The batched simulator on several threads (``period_rows_parallel``): the same numbers, bit
for bit, as on one thread, whatever the number of ranges the patients are split into."""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import pytest

from exposure_ctrl._threads import PARALLEL_MIN_ROWS, chunks_for
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import Simulator, sample_patients


def _fields(obj) -> dict[str, np.ndarray]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@pytest.mark.parametrize("sensor", ["strap-flaky", "wrist"])
def test_threads_give_the_same_periods_as_one_thread(sensor):
    sc = resolve_scenario("spider")
    n = 301  # not a multiple of the ranges: the last range is shorter
    params = sample_patients(sc, "spider-severe", np.arange(n))
    sims = {t: Simulator(sc, params, rng=np.random.default_rng(5), sensor=sensor, threads=t) for t in (1, 2, 3, 8)}
    assert [s.chunks for s in sims.values()] == [1, 2, 3, 8]
    rng = np.random.default_rng(6)
    top = len(sc.hierarchy)
    for k in range(90):
        # high steps for many rows, so that some patients abort and sensors lose contact
        pos = sc.hierarchy_positions[rng.integers(top // 2, top, size=n)]
        one = sims[1].step(pos)
        for t in (2, 3, 8):
            got = sims[t].step(pos, reuse=(t == 2))
            for part in ("trace", "frames"):
                want = _fields(getattr(one, part))
                for name, arr in _fields(getattr(got, part)).items():
                    np.testing.assert_array_equal(arr, want[name], err_msg=f"{t} threads, step {k}, {part}.{name}")
    for t in (2, 3, 8):
        for name, arr in _fields(sims[t].patient).items():
            np.testing.assert_array_equal(arr, getattr(sims[1].patient, name), err_msg=name)
        for name, arr in _fields(sims[t].sensor_state).items():
            np.testing.assert_array_equal(arr, getattr(sims[1].sensor_state, name), err_msg=name)
    # the comparison covered the eventful parts of the model
    assert sims[1].patient.aborted.any() and not sims[1].patient.aborted.all()
    assert (~one.frames.present).any() or (one.frames.contact == 0).any()


def test_how_many_ranges_by_default():
    assert chunks_for(1) == 1
    assert chunks_for(PARALLEL_MIN_ROWS - 1) == 1
    assert chunks_for(PARALLEL_MIN_ROWS) == max(1, numba.get_num_threads())
    sc = resolve_scenario("spider")
    one = Simulator(sc, sample_patients(sc, "spider-moderate", range(3)), rng=np.random.default_rng(0))
    assert one.chunks == 1  # a single environment never starts threads
    with pytest.raises(ValueError, match="threads"):
        Simulator(sc, sample_patients(sc, "spider-moderate", range(3)), rng=np.random.default_rng(0), threads=0)


def test_a_vector_env_on_threads_equals_one_on_one_thread(monkeypatch):
    """End to end: every batched kernel of a vector environment split into 3 ranges (simulator,
    features, tracker; the threshold lowered so that a small batch uses them) gives the same
    observations, rewards and infos as the same environment on one thread, through a partial
    restart and Gymnasium's autoresets."""
    from exposure_ctrl import _threads
    from exposure_ctrl.sim import ExposureVectorEnv

    n = 24
    sc = resolve_scenario("spider")  # sessions of 2 min of exposure: some end and restart
    sc = sc.model_copy(update={"timing": sc.timing.model_copy(update={"exposure_max_s": 120.0})})
    rng = np.random.default_rng(0)
    acts = [rng.integers(0, sc.n_actions, size=n) for _ in range(70)]
    keys = ("obs", "reward", "terminated", "positions", "shield_reason", "suds", "autoreset")

    def run() -> tuple[dict[str, list[np.ndarray]], ExposureVectorEnv]:
        env = ExposureVectorEnv(n, sc, "spider-severe", suds_every_s=20.0)
        got: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        got["obs"].append(env.reset(seed=3)[0])
        for k, a in enumerate(acts):
            if k == 30:
                got["obs"].append(env.reset(options={"reset_mask": np.arange(n) % 5 == 0})[0])
            obs, r, term, _, info = env.step(a)
            for key, value in zip(keys, (obs, r, term, info["positions"], info["shield_reason"], info["suds"], info["autoreset"])):
                got[key].append(value)
        return got, env

    one, env1 = run()
    assert env1._batch.sim.chunks == 1 and env1._batch.tracker.chunks == 1
    monkeypatch.setattr(_threads, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(_threads.numba, "get_num_threads", lambda: 3)
    three, env3 = run()
    b = env3._batch
    assert (b.sim.chunks, b.tracker.chunks, b.tracker.features.chunks) == (3, 3, 3)
    for key in keys:
        for j, (x, y) in enumerate(zip(three[key], one[key], strict=True)):
            np.testing.assert_array_equal(x, y, err_msg=f"{key} {j}")
    # a real run: the rewards vary, sessions ended and restarted, SUDS were rated
    assert np.std(one["reward"]) > 0 and np.any(one["autoreset"]) and np.isfinite(one["suds"]).any()
