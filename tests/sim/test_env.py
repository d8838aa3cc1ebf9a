"""The Gymnasium environments (exposure_ctrl/sim/env.py, vector_env.py, batch.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import exposure_ctrl  # noqa: F401  (registers the environment)
from exposure_ctrl.arousal import ArousalTracker
from exposure_ctrl.sim import batch as batch_module
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.safety import Reason
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import ENV_ID, ExposureEnv, ExposureVectorEnv, ListRecorder, Simulator, sample_patients
from exposure_ctrl.sim.records import SessionEnd, SessionStart, StepRecord

GOLDEN = Path(__file__).parent / "golden" / "spider_seed7.json"


def _short(sc_name: str = "spider", exposure_s: float = 120.0):
    sc = resolve_scenario(sc_name)
    return sc.model_copy(update={"timing": sc.timing.model_copy(update={"exposure_max_s": exposure_s})})


def _episode(env, seed, policy_seed, max_steps=None):
    """Whole trajectory with random legal actions: list of (obs, reward, terminated, info)."""
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(policy_seed)
    out = [(obs, 0.0, False, info)]
    done = False
    k = 0
    while not done and (max_steps is None or k < max_steps):
        a = rng.choice(np.flatnonzero(info["action_mask"]))
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, info))
        done = term or trunc
        k += 1
    return out


MINIMAL = str(Path(__file__).parents[1] / "scenario" / "minimal.yaml")


@pytest.mark.parametrize("scenario", ["spider", "public_speaking", "heights", MINIMAL])
def test_gymnasium_check_env_passes_without_warnings(scenario):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, scenario=scenario, render_mode="ansi", truth_in_info=True)
        gym_check_env(env.unwrapped)


def test_sb3_check_env_passes_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(ExposureEnv(), warn=True)


def test_spaces_names_and_masks():
    env = gym.make(ENV_ID, scenario="spider")
    sc = env.unwrapped.scenario
    assert env.action_space == gym.spaces.Discrete(1 + 2 * sc.n_parameters)
    names = env.unwrapped.observation_names
    assert len(names) == len(set(names)) == env.observation_space.shape[0]
    assert names[0] == "hr_above_bpm" and names[-1] == "exposure_time_frac"
    assert np.all(np.isfinite(env.observation_space.low)) and np.all(np.isfinite(env.observation_space.high))
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs in env.observation_space
    np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks())
    np.testing.assert_array_equal(info["action_mask"], sc.action_mask(sc.positions(sc.start)))
    # the scaled observation times its scales gives the features' own units
    hr_above = env.unwrapped.tracker.features.hr_above()[0]
    i = names.index("hr_above_bpm")
    assert obs[i] * env.unwrapped.observation_scales[i] == pytest.approx(hr_above, abs=1e-3)


def test_same_seed_same_trajectory_different_seed_different():
    env = ExposureEnv("spider", sensor="strap-flaky")
    a = _episode(env, seed=3, policy_seed=0, max_steps=120)
    b = _episode(env, seed=3, policy_seed=0, max_steps=120)
    assert len(a) == len(b)
    for (oa, ra, ta, ia), (ob, rb, tb, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb and ta == tb
        assert gym.utils.env_checker.data_equivalence(ia, ib, exact=True)
    c = _episode(env, seed=4, policy_seed=0, max_steps=120)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_vector_env_of_one_equals_the_single_env():
    single = ExposureEnv("spider")
    vec = ExposureVectorEnv(1, "spider")
    o1, i1 = single.reset(seed=11)
    o2, i2 = vec.reset(seed=11)
    np.testing.assert_array_equal(o1, o2[0])
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = int(rng.choice(np.flatnonzero(single.action_masks())))
        s = single.step(a)
        v = vec.step(np.array([a]))
        np.testing.assert_array_equal(s[0], v[0][0])
        assert s[1] == v[1][0] and s[2] == v[2][0]
        assert s[4]["shield_reason"] == v[4]["shield_reason"][0]


def test_merged_tracker_rows_behave_like_fresh_trackers():
    """The vector env restarts some sessions by putting a fresh tracker into the batch's rows
    (the tracker's ``put_rows``): those rows must then behave as the fresh tracker, the others
    as if nothing happened."""
    sc = resolve_scenario("spider")
    n = 4
    params = sample_patients(sc, "spider-moderate", range(n))
    sim = Simulator(sc, params, rng=np.random.default_rng(0))
    safe = np.broadcast_to(np.asarray(sc.positions(sc.safe_state)), (n, sc.n_parameters))
    big = ArousalTracker(sc, n=n, positions=safe, t0=0.0)
    ref = ArousalTracker(sc, n=n, positions=safe, t0=0.0)
    frames = [sim.step(safe).frames for _ in range(30)]
    for f in frames[:20]:
        for tr in (big, ref):
            tr.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
    # a fresh single-patient tracker that has seen only the last 10 periods of patient 2
    small = ArousalTracker(sc, n=1, positions=safe[:1], t0=0.0)
    big.put_rows(np.array([2]), small)
    alone = ArousalTracker(sc, n=1, positions=safe[:1], t0=0.0)
    for f in frames[20:]:
        big.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
        ref.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
        alone.update_block(f.t_s[:, 2:3], f.bpm[:, 2:3], f.rr_ms[:, 2:3], f.n_rr[:, 2:3], f.contact[:, 2:3], f.present[:, 2:3], f.flags[:, 2:3])
    t = float(frames[-1].t_s[-1, 0])
    top = np.broadcast_to(sc.hierarchy_positions[5], (n, sc.n_parameters))
    for tr in (big, ref):
        tr.set_scene(t, top)
    alone.set_scene(t, top[:1])
    ob, orf, oa = big.tick(t), ref.tick(t), alone.tick(t)
    np.testing.assert_allclose(ob[2], oa[0], rtol=1e-9, atol=1e-9)
    for i in (0, 1, 3):
        np.testing.assert_array_equal(ob[i], orf[i])
    assert not np.allclose(ob[2], orf[2])


def test_illegal_and_too_early_moves_are_held_by_the_shield_and_cost():
    env = ExposureEnv("spider", sensor="ideal")
    env.reset(seed=0)
    sc = env.scenario
    up_size = sc.action_of("size", "up")
    illegal = sc.action_of("size", "down")  # already tiny
    _, r, _, _, info = env.step(illegal)
    assert info["shield_reason"] == Reason.ILLEGAL_ACTION and info["executed_action"] == 0
    assert info["reward_terms"]["blocked"] == 1.0
    _, _, _, _, info = env.step(up_size)  # exposure start counts as a change: dwell applies
    assert info["shield_reason"] == Reason.MIN_DWELL and info["positions"][sc.parameter_ids.index("size")] == 0
    for _ in range(6):
        env.step(0)
    _, _, _, _, info = env.step(up_size)
    assert info["shield_reason"] == Reason.NONE and info["positions"][sc.parameter_ids.index("size")] == 1
    assert info["reward_terms"]["changed"] == 1.0 and info["reward_terms"]["blocked"] == 0.0
    assert info["action_mask"][illegal]  # size can go down now


def test_trivial_patient_rewards_time_in_the_window_and_progress():
    """The deterministic 'trivial' patient: holding a step that drives ~13 bpm earns ~1 a step."""
    env = ExposureEnv("spider", "trivial", sensor="ideal", truth_in_info=True)
    obs, info = env.reset(seed=0)
    sc = env.scenario
    target = sc.hierarchy_positions[6]
    total_progress = 0.0
    last = None
    for _ in range(200):
        pos = env._batch.positions[0]
        diff = target - pos
        k = int(np.flatnonzero(diff)[0]) if diff.any() else None
        a = 0 if k is None else (1 + 2 * k if diff[k] > 0 else 2 + 2 * k)
        obs, r, term, trunc, info = env.step(a)
        total_progress += info["reward_terms"]["progress"]
        last = (r, info)
    r, info = last
    assert total_progress == 6  # steps 1..6 reached once each
    assert 8 <= info["truth"]["arousal_bpm"] <= 18
    assert info["reward_terms"]["in_window"] == 1.0 and r == pytest.approx(1.0)


def test_abort_terminates_and_costs():
    sc = resolve_scenario("spider")
    from exposure_ctrl.sim.cohorts import COHORTS, Const

    fragile = COHORTS["spider-severe"].with_("fragile", "aborts early", tolerance=Const(0.05), abort_after_s=Const(20.0))
    env = ExposureEnv(sc, fragile, sensor="ideal")
    env.reset(seed=1)
    ups = [sc.action_of(p, "up") for p in ("jar", "size", "distance_m", "movement", "hairiness")]
    for k in range(300):
        a = ups[(k // 6) % len(ups)] if k % 6 == 0 else 0
        _, r, term, _, info = env.step(a)
        if term:
            break
    assert term and info["aborted"] and not info["completed"]
    assert r <= -40
    with pytest.raises(ResetNeeded):
        env.step(0)


def test_session_ends_after_exposure_with_a_recovery_phase_and_records():
    rec = ListRecorder()
    env = ExposureEnv(_short(exposure_s=60.0), "spider-moderate", recorder=rec)
    env.reset(seed=2)
    steps = 0
    while True:
        _, _, term, trunc, info = env.step(0)
        steps += 1
        if term:
            break
    assert steps == 12 and info["completed"] and not info["aborted"]
    assert info["recovery_s"] is not None and 0 <= info["recovery_s"] <= 300
    starts, recs, ends = rec.of(SessionStart), rec.of(StepRecord), rec.of(SessionEnd)
    assert len(starts) == 1 and len(recs) == 12 and len(ends) == 1
    assert starts[0].scenario_id == "spider" and starts[0].cohort == "spider-moderate"
    assert ends[0].how == "completed" and ends[0].exposure_s == 60.0
    assert [r.t_s for r in recs] == sorted(r.t_s for r in recs)


def test_course_mode_keeps_the_patient_and_part_of_the_habituation():
    env = ExposureEnv(_short(exposure_s=600.0), "spider-moderate", course_sessions=2, truth_in_info=True, recovery=False)
    _, info1 = env.reset(seed=5)
    sc = env.scenario
    target = sc.hierarchy_positions[7]
    for _ in range(200):
        pos = env._batch.positions[0]
        diff = target - pos
        k = int(np.flatnonzero(diff)[0]) if diff.any() else None
        a = 0 if k is None else (1 + 2 * k if diff[k] > 0 else 2 + 2 * k)
        _, _, term, _, info = env.step(a)
        if term:
            break
    assert term and info["completed"]
    end_h = info["truth"]["habituation"]
    assert end_h.max() > 0
    _, info2 = env.reset()
    assert info2["patient"]["index"] == info1["patient"]["index"] and info2["patient"]["session"] == 1
    retention = env._batch.sim.params.retention[0]
    np.testing.assert_allclose(env.truth()["habituation"], retention * end_h)
    _, info3 = env.reset()  # the course of two sessions is over: a new patient
    assert info3["patient"]["session"] == 0 and info3["patient"]["index"] != info1["patient"]["index"]


def test_eval_split_and_patient_choice():
    env = ExposureEnv("spider", split="eval")
    _, info = env.reset(seed=0, options={"patient_index": 17})
    assert info["patient"] == {"cohort": "spider-moderate", "split": "eval", "index": 17, "session": 0}
    with pytest.raises(ConfigError, match="unknown reset option"):
        env.reset(options={"patient": 1})
    with pytest.raises(ConfigError, match="did you mean"):
        ExposureEnv("spider", "spider-moderat")


def test_vector_env_autoresets_on_the_next_step():
    vec = ExposureVectorEnv(3, _short(exposure_s=30.0), "spider-moderate", recovery=False)
    obs, info = vec.reset(seed=0)
    assert obs.shape == (3, vec.single_observation_space.shape[0]) and obs in vec.observation_space
    for _ in range(6):
        obs, r, term, trunc, info = vec.step(np.zeros(3, dtype=np.int64))
    assert term.all() and not info["autoreset"].any()
    obs, r, term, trunc, info = vec.step(np.zeros(3, dtype=np.int64))
    assert info["autoreset"].all() and not term.any() and np.all(r == 0)
    assert vec.action_masks().shape == (3, vec.single_action_space.n)
    assert np.all(obs[:, -1] == 0.0)  # exposure time restarted
    made = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point")
    assert made.reset(seed=1)[0].shape[0] == 2


def test_golden_trace():
    """A short stored trajectory: any change of the model, sensor, features or shield shows."""
    env = ExposureEnv("spider", "spider-moderate", sensor="strap")
    obs, info = env.reset(seed=7)
    actions = [1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 2]
    trace = {"reset_obs": obs.tolist(), "baseline_bpm": info["baseline_bpm"], "steps": []}
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        trace["steps"].append(
            {"obs": obs.tolist(), "reward": r, "reason": info["shield_reason"], "positions": info["positions"].tolist()}
        )
    if os.environ.get("EXPOSURE_CTRL_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(trace, indent=1))
    want = json.loads(GOLDEN.read_text())
    assert want["baseline_bpm"] == trace["baseline_bpm"]
    np.testing.assert_allclose(trace["reset_obs"], want["reset_obs"], rtol=1e-5, atol=1e-5)
    for got, exp in zip(trace["steps"], want["steps"], strict=True):
        np.testing.assert_allclose(got["obs"], exp["obs"], rtol=1e-5, atol=1e-5)
        assert got["reward"] == pytest.approx(exp["reward"], abs=1e-9)
        assert got["reason"] == exp["reason"] and got["positions"] == exp["positions"]


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout


def test_registration_is_lazy_and_works_in_either_import_order():
    out = _python(
        "import sys, exposure_ctrl; print('gymnasium' in sys.modules); "
        "import gymnasium as gym; print('exposure_ctrl/Exposure-v0' in gym.registry)"
    )
    assert out.split() == ["False", "True"]
    out = _python(
        "import gymnasium as gym; import exposure_ctrl; from exposure_ctrl.sim.registration import register_envs; "
        "register_envs(); register_envs(); print('exposure_ctrl/Exposure-v0' in gym.registry)"
    )
    assert out.split() == ["True"]


def test_vector_env_restarts_only_the_masked_sessions():
    vec = ExposureVectorEnv(4, "spider", "spider-moderate", truth_in_info=True)
    vec.reset(seed=3)
    for _ in range(10):
        vec.step(np.zeros(4, dtype=np.int64))
    b = vec._batch
    before_idx = b.patient_index.copy()
    before_fear = vec.truth()["fear"].copy()
    before_t = b.sim.patient.t_s.copy()
    mask = np.array([False, True, False, True])
    obs, info = vec.reset(options={"reset_mask": mask, "patient_index": [0, 7, 0, 9]})
    assert list(b.patient_index) == [before_idx[0], 7, before_idx[2], 9]
    np.testing.assert_array_equal(b.exposure_s, [50.0, 0.0, 50.0, 0.0])
    np.testing.assert_array_equal(b.sim.patient.t_s[~mask], before_t[~mask])
    np.testing.assert_array_equal(vec.truth()["fear"][~mask], before_fear[~mask])
    assert np.all(b.sim.patient.t_s[mask] == b.sc.timing.baseline_s)
    assert obs in vec.observation_space
    # a restarted row is the patient it claims to be
    np.testing.assert_array_equal(b.sim.params.hr_rest_bpm[mask], sample_patients(b.sc, "spider-moderate", [7, 9]).hr_rest_bpm)


def test_executed_action_is_minus_one_exactly_when_the_shield_goes_safe():
    sc = _short("spider", exposure_s=600.0)
    env = ExposureVectorEnv(32, sc, "spider-severe", recovery=False)
    env.reset(seed=2)
    seen_safe = False
    for _ in range(100):
        mask = env.action_masks()
        ups = mask.copy()
        ups[:, 0] = False
        ups[:, 2::2] = False
        act = np.where(ups.any(axis=1), np.argmax(ups, axis=1), 0)
        _, _, _, _, info = env.step(act)
        live = ~info["autoreset"]
        go_safe = info["go_safe"] & live
        seen_safe |= bool(go_safe.any())
        assert np.all(info["executed_action"][go_safe] == -1)
        assert np.all(info["executed_action"][~info["go_safe"] & live] >= 0)
    assert seen_safe


def test_scene_after_the_verdict_matches_the_scenario_for_few_and_many_moving_rows():
    """The batch updates the positions, hierarchy index and action masks of the rows that move
    per row (a few) or vectorised (many): both must equal the scenario's own functions."""
    n = 12
    vec = ExposureVectorEnv(n, "spider", "spider-moderate", recovery=False)
    vec.reset(seed=5)
    b, sc = vec._batch, vec._batch.sc
    rng = np.random.default_rng(5)
    seen = {"few": 0, "many": 0}
    for k in range(90):
        before = b.positions.copy()
        # every 6th step all rows propose the same move (many rows change together)
        acts = np.full(n, 1 + 2 * (k // 6 % 3)) if k % 6 == 5 else rng.integers(0, sc.n_actions, size=n)
        _, _, _, info = b.step(acts)
        ex = info["executed_action"]
        want = sc.apply_action(before, np.where(ex > 0, ex, 0))
        want[info["go_safe"]] = b.safe
        np.testing.assert_array_equal(info["positions"], want)
        np.testing.assert_array_equal(info["action_mask"], sc.action_mask(want))
        index = np.maximum(sc.hierarchy_index_of_intensity(sc.intensity_of_positions(want)), -1)
        np.testing.assert_array_equal(info["hierarchy_index"], index)
        # the batch picks its path by the rows the verdict moves or sends to the safe scene
        moving = np.count_nonzero(ex > 0) + np.count_nonzero(info["go_safe"])
        if moving and np.any(want != before):
            seen["few" if moving <= batch_module._FEW_ROWS else "many"] += 1
    assert seen["few"] > 5 and seen["many"] > 3, seen
