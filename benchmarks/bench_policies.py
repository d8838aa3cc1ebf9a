"""Speed of the policies and of training (prints figures; not a test).

    python benchmarks/bench_policies.py [--scenario spider] [--train-steps 50000]

- decision latency of every policy for one patient (the live controller) and per patient in a
  batch of 64 (evaluation);
- batched training environment: decisions per second (sessions in lockstep, shield inside);
- MaskablePPO training throughput (decisions per second, rollouts and updates included);
- evaluation wall time of one 30-minute session of 40 held-out patients per policy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from exposure_ctrl.policy import load_policy
from exposure_ctrl.policy.registry import rule_names
from exposure_ctrl.scenario import resolve_scenario


def _observations(sc, n: int, steps: int = 60):
    """Realistic observations: ``n`` simulated sessions under band PI for ``steps`` decisions."""
    from exposure_ctrl.sim.batch import SessionBatch, SessionOptions
    from exposure_ctrl.sim.cohorts import cohort_for

    b = SessionBatch(sc, n, SessionOptions(cohort=cohort_for(sc, None), recovery=False, split="eval"), np.random.default_rng(0))
    b.start(np.arange(n), patient_index=np.arange(n))
    pol = load_policy("band-pi", sc).policy
    pol.reset(n)
    obs = b.observation()
    for _ in range(steps):
        a, _ = pol.act(obs, b.action_masks())
        obs, _, _, _ = b.step(a)
    return b, obs, b.action_masks()


def bench_act(sc, names: list[str]) -> None:
    b, obs64, mask64 = _observations(sc, 64)
    for name in names:
        lp = load_policy(name, sc, live=False)
        pol = lp.policy
        if hasattr(pol, "bind"):
            pol.bind(lambda: (b.sim.params, b.sim.patient, b.positions))
        pol.reset(64)
        pol.act(obs64, mask64)  # warm-up
        t0 = time.perf_counter()
        reps = 20
        for _ in range(reps):
            pol.act(obs64, mask64)
        batch_us = (time.perf_counter() - t0) / reps / 64 * 1e6
        if name == "oracle":
            print(f"act {lp.id:16s}  batch of 64: {batch_us:8.0f} us per patient-decision (simulation only)")
            continue
        pol.reset(1)
        one, m1 = obs64[:1], mask64[:1]
        pol.act(one, m1)
        t0 = time.perf_counter()
        reps = 200
        for _ in range(reps):
            pol.act(one, m1)
        single_ms = (time.perf_counter() - t0) / reps * 1e3
        print(f"act {lp.id:16s}  one patient: {single_ms:6.3f} ms per decision   batch of 64: {batch_us:7.1f} us per patient-decision")


def bench_env(sc, n_envs: int = 32, steps: int = 300) -> None:
    from exposure_ctrl.policy.train import TrainConfig, make_vec_env

    env = make_vec_env(TrainConfig(scenario=sc.id, n_envs=n_envs), sc)
    env.reset()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        masks = env.action_masks()
        a = np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)
        env.step(a)
    dt = time.perf_counter() - t0
    print(f"training env ({n_envs} sessions in lockstep, random legal actions): {n_envs * steps / dt:,.0f} decisions/s")


def bench_train(sc, steps: int) -> None:
    import tempfile

    from exposure_ctrl.policy.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = train(TrainConfig(scenario=sc.id, timesteps=steps, checkpoint_every=None, warm_start=None, select_every=None), d, scenario=sc)
        dt = time.perf_counter() - t0
    print(f"MaskablePPO training (PPO alone, no warm start or validation): {res.timesteps:,} decisions in {dt:.1f} s = {res.timesteps / dt:,.0f} decisions/s "
          f"(15 min budget ≈ {res.timesteps / dt * 900 / 1e6:.1f} M decisions)")


def bench_eval(sc, names: list[str], patients: int = 40) -> None:
    from exposure_ctrl.policy.evaluate import evaluate

    ev = evaluate(sc, names, patients=patients, course_sessions=1)
    for r in ev.results:
        print(f"evaluation {r.policy:16s} {patients} patients x 1 session: {r.wall_s:6.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="spider")
    ap.add_argument("--train-steps", type=int, default=50_000)
    args = ap.parse_args()
    sc = resolve_scenario(args.scenario)
    names = rule_names()
    try:
        load_policy("ppo", sc)
        names.append("ppo")
    except Exception:
        pass
    bench_act(sc, names + ["oracle"])
    bench_env(sc)
    bench_train(sc, args.train_steps)
    bench_eval(sc, names + ["oracle"])


if __name__ == "__main__":
    main()
