"""The batched simulator on several threads (``period_rows_parallel``): the same numbers, bit
for bit, as on one thread, whatever the number of ranges the patients are split into."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import Simulator, sample_patients


def _fields(obj) -> dict[str, np.ndarray]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@pytest.mark.parametrize("sensor", ["strap-flaky", "wrist"])
def test_threads_give_the_same_periods_as_one_thread(sensor):
    sc = resolve_scenario("spider")
    n = 301  # not a multiple of the ranges: the last range is shorter
    params = sample_patients(sc, "spider-severe", np.arange(n))
    sims = {t: Simulator(sc, params, rng=np.random.default_rng(5), sensor=sensor, chunks=t) for t in (1, 2, 3, 8)}
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


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240, check=False)


def test_a_single_environment_never_starts_a_threading_layer():
    """N = 1 (a single environment, the live session) and small vector environments stay on the
    calling thread: numba's threading layer is never started (it is in a 256-session one)."""
    done = _python("""
        import gymnasium as gym, numba, numpy as np
        import exposure_ctrl
        from exposure_ctrl.sim import ExposureVectorEnv
        env = gym.make("exposure_ctrl/Exposure-v0", scenario="spider")
        env.reset(seed=0)
        for _ in range(5):
            env.step(1)
        vec = ExposureVectorEnv(8, "spider")
        vec.reset(seed=0)
        vec.step(np.zeros(8, dtype=np.int64))
        try:
            print("started", numba.threading_layer())
        except ValueError:
            print("not started")
        big = ExposureVectorEnv(256, "spider")
        big.reset(seed=0)
        big.step(np.zeros(256, dtype=np.int64))
        print("big", big._batch.sim.chunks == numba.get_num_threads(), numba.threading_layer())
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "not started"
    assert lines[1].startswith("big True")


def test_a_forked_child_computes_on_its_own_thread():
    """GNU OpenMP kills a fork()ed child that enters a parallel region of its parent's threading
    layer; the child of a process that ran the parallel kernels computes the same numbers on one
    thread instead."""
    done = _python("""
        import os, numpy as np
        import exposure_ctrl
        from exposure_ctrl.scenario import resolve_scenario
        from exposure_ctrl.sim import Simulator, sample_patients
        sc = resolve_scenario("spider")
        params = sample_patients(sc, "spider-moderate", np.arange(300))
        pos = np.broadcast_to(sc.hierarchy_positions[4], (300, sc.n_parameters))
        def run(sim):
            return np.concatenate([sim.step(pos).frames.bpm.ravel() for _ in range(5)])
        parent = Simulator(sc, params, rng=np.random.default_rng(1))
        assert parent.chunks > 1, parent.chunks
        want = run(parent)  # the parent's threading layer is running now
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            fresh = Simulator(sc, params, rng=np.random.default_rng(1))
            again = run(fresh)
            more = run(parent)  # made (with its ranges) before the fork
            os.write(write, bytes([fresh.chunks, int(np.array_equal(again, want)), int(np.isfinite(more).all())]))
            os._exit(0)
        os.close(write)  # a child that dies leaves the pipe empty instead of blocking the read
        _, status = os.waitpid(pid, 0)
        got = os.read(read, 3)
        print(os.waitstatus_to_exitcode(status), list(got))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "[1,", "1,", "1]"], done.stdout + done.stderr


def test_chunks_must_be_positive():
    sc = resolve_scenario("spider")
    with pytest.raises(ValueError, match="chunks"):
        Simulator(sc, sample_patients(sc, "spider-moderate", range(3)), rng=np.random.default_rng(0), chunks=0)


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
