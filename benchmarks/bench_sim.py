"""Speed of the simulated-patient gym, its calibration and the response model's accuracy on it.

Prints figures; not a test. Targets (issue 4), on the 2-core development machine:
>= 20,000 single-environment steps/s including the features, >= 2,000,000 patient-steps/s
batched at N = 1024. One step = one decision period (5 s of simulated time: ~6 beats, 5 strap
notifications, the features, the response model, the shield).

    python benchmarks/bench_sim.py                 # speed
    python benchmarks/bench_sim.py --calibration   # cohort statistics vs. the documented bands
    python benchmarks/bench_sim.py --model         # response model vs. the true sensitivities

Times are CPU seconds of this process (``time.process_time``), best of 3 runs: the machine is
shared with other jobs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def best_cpu(fn, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def bench_single(steps: int) -> None:
    import gymnasium as gym

    import exposure_ctrl  # noqa: F401

    for label, make in (
        ("gym.make (checker + order wrappers)", lambda: gym.make("exposure_ctrl/Exposure-v0", scenario="spider", recovery=False)),
        ("unwrapped ExposureEnv", lambda: gym.make("exposure_ctrl/Exposure-v0", scenario="spider", recovery=False).unwrapped),
    ):
        env = make()
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        actions = rng.integers(0, env.action_space.n, size=steps)
        done = {"n": 0}

        def run() -> None:
            env.reset(seed=1)
            for a in actions:
                _, _, term, trunc, _ = env.step(int(a))
                if term or trunc:
                    env.reset()
            done["n"] = len(actions)

        sec = best_cpu(run)
        reset = best_cpu(lambda: env.reset(seed=2))
        print(f"single env, {label:38s}: {steps / sec:9,.0f} env steps/s  ({sec / steps * 1e6:6.0f} us/step; reset with baseline phase {reset * 1e3:.0f} ms)")


def bench_batched(n: int, steps: int) -> None:
    from exposure_ctrl.scenario import resolve_scenario
    from exposure_ctrl.sim import ExposureVectorEnv, Simulator, sample_patients

    sc = resolve_scenario("spider")
    params = sample_patients(sc, "spider-moderate", np.arange(n))
    sim = Simulator(sc, params, rng=np.random.default_rng(0))
    pos = np.broadcast_to(sc.hierarchy_positions[5], (n, sc.n_parameters))
    for _ in range(5):
        sim.step(pos)
    sec = best_cpu(lambda: [sim.step(pos) for _ in range(steps)])
    print(f"batched simulator only (patients + strap),    N={n}: {n * steps / sec:12,.0f} patient-steps/s  ({sec / steps * 1e3:6.2f} ms/step)")

    env = ExposureVectorEnv(n, sc, "spider-moderate", recovery=False)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [rng.integers(0, sc.n_actions, size=n) for _ in range(steps)]
    sec = best_cpu(lambda: [env.step(a) for a in acts])
    print(f"vector env (simulator + features + model + shield), N={n}: {n * steps / sec:10,.0f} patient-steps/s  ({sec / steps * 1e3:6.2f} ms/step)")

    # where the time goes in one vector step (times keep increasing across the repeated runs)
    b = env._batch
    tr = b.tracker
    f = sim.step(pos).frames
    clock = {"t": 1e4}

    def feed() -> None:
        for _ in range(steps):
            clock["t"] += 5.0
            tr.update_block(f.t_s - f.t_s[0] + clock["t"], f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)

    def tick() -> None:
        for _ in range(steps):
            clock["t"] += 5.0
            tr.tick(clock["t"])

    parts = {
        "simulator (patients + strap)": best_cpu(lambda: [sim.step(pos) for _ in range(steps)]) / steps,
        "features update_block": best_cpu(feed) / steps,
        "tracker tick (features + model)": best_cpu(tick) / steps,
    }
    for k, v in parts.items():
        print(f"    {k:34s} {v * 1e3:7.2f} ms per step of {n}")


def calibration() -> None:
    from exposure_ctrl.scenario import resolve_scenario
    from exposure_ctrl.sim import calibration as cal

    for scn, coh in (("spider", "spider-moderate"), ("spider", "spider-severe"), ("public_speaking", "social-anxiety"), ("heights", "heights"), ("spider", "mixed")):
        print(f"== {scn} / {coh}")
        for st in cal.run_all(resolve_scenario(scn), coh):
            band = cal.BANDS.get(st.name if not (st.name == "top_rise" and coh == "spider-severe") else "top_rise_severe", {})
            flags = " ".join(f"{k} in {lo:g}..{hi:g}: {'ok' if lo <= st.values[k] <= hi else 'OUT'}" for k, (lo, hi) in band.items())
            print(f"   {st}   [{flags}]")


def model_accuracy(n: int) -> None:
    """Error of the response model's whole-range sensitivities vs. the patients' true ones."""
    from exposure_ctrl.arousal import Feature
    from exposure_ctrl.scenario import resolve_scenario
    from exposure_ctrl.sim import ExposureVectorEnv

    for scn, coh in (("spider", "spider-moderate"), ("public_speaking", "social-anxiety"), ("heights", "heights")):
        sc = resolve_scenario(scn)
        env = ExposureVectorEnv(n, sc, coh, recovery=False, split="eval")
        env.reset(seed=0, options={"patient_index": np.arange(n)})
        b = env._batch
        model = b.tracker.model
        prior_mean, _ = model.sensitivity_arrays()
        rng = np.random.default_rng(1)
        lo, hi = sc.targets.arousal_window_bpm.low, sc.targets.arousal_window_bpm.high
        report = {}
        for k in range(1, int(20 * 60 / sc.timing.decision_period_s) + 1):
            # an exploring window-keeping rule: random legal up-moves while below the window,
            # random legal down-moves above it, random moves 20 % of the time otherwise
            above = b._tracker_obs[:, Feature.HR_ABOVE_BPM]
            mask = env.action_masks()
            ups = mask.copy()
            ups[:, 0] = False
            ups[:, 2::2] = False
            downs = mask.copy()
            downs[:, 0] = False
            downs[:, 1::2] = False
            pick = np.where((above < lo)[:, None], ups, np.where((above > hi)[:, None], downs, mask & (rng.random((n, 1)) < 0.2)))
            pick[:, 0] |= ~pick.any(axis=1)
            r = rng.random(pick.shape) * pick
            env.step(np.argmax(r, axis=1))
            if k * sc.timing.decision_period_s in (600, 1200):
                est, sd = model.sensitivity_arrays()
                true = b.truth()["sensitivities_bpm"]
                err = est - true
                prior_err = prior_mean - true
                cover = np.mean(np.abs(err) <= 2 * sd)
                report[int(k * sc.timing.decision_period_s // 60)] = (
                    np.sqrt(np.mean(err**2)),
                    np.median(np.abs(err)),
                    np.sqrt(np.mean(prior_err**2)),
                    np.corrcoef(est.ravel(), true.ravel())[0, 1],
                    cover,
                )
        for minutes, (rmse, mae, prior_rmse, r, cover) in report.items():
            print(
                f"{scn:15s} {coh:16s} after {minutes:2d} min: sensitivity RMSE {rmse:5.2f} bpm "
                f"(median |err| {mae:4.2f}; prior alone {prior_rmse:5.2f}); corr(est, true) {r:4.2f}; "
                f"|err| <= 2 sd for {cover:.0%}  (N={n})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", action="store_true")
    ap.add_argument("--model", action="store_true")
    ap.add_argument("--patients", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    if args.calibration:
        calibration()
        return
    if args.model:
        model_accuracy(min(args.patients, 256))
        return
    bench_single(args.steps or 400)
    bench_batched(args.patients, args.steps or 20)


if __name__ == "__main__":
    main()
