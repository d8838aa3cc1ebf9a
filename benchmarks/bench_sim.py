"""Speed of the simulated-patient gym, its calibration and the response model's accuracy on it.

Prints figures; not a test. Targets (issue 4), on the 2-core development machine:
>= 20,000 single-environment steps/s including the features, >= 2,000,000 patient-steps/s
batched at N = 1024. One step = one decision period (5 s of simulated time: ~6 beats, 5 strap
notifications, the features, the response model, the shield).

    python benchmarks/bench_sim.py                 # speed
    python benchmarks/bench_sim.py --calibration   # cohort statistics vs. the documented bands
    python benchmarks/bench_sim.py --model         # response model vs. the true sensitivities

Single-environment times are CPU seconds of this process (``time.process_time``), best of 3
runs: the machine is shared with other jobs. Batched times are wall-clock seconds, best of 3, with
the CPU seconds of the same run beside them: from 256 patients on the batched kernels use numba's
threads (``NUMBA_NUM_THREADS``, default: every core), and CPU time would count both cores.
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

        def run() -> None:
            env.reset(seed=1)
            for a in actions:
                _, _, term, trunc, _ = env.step(int(a))
                if term or trunc:
                    env.reset()

        sec = best_cpu(run)
        reset = best_cpu(lambda: env.reset(seed=2))
        print(f"single env, {label:38s}: {steps / sec:9,.0f} env steps/s  ({sec / steps * 1e6:6.0f} us/step; reset with baseline phase {reset * 1e3:.1f} ms)")
    bench_single_parts(max(steps, 2000))


def _tracker_parts(tr, frames: list, t0: float):
    """Two timed parts of a step for the tracker ``tr``: ``feed`` gives it ``frames`` (one per step)
    through ``update_block``, ``tick`` ticks it as often; the clock keeps increasing across the
    repeated runs (5 s per step)."""
    clock = {"t": t0}

    def feed() -> None:
        for f in frames:
            clock["t"] += 5.0
            tr.update_block(f.t_s - f.t_s[0] + clock["t"], f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)

    def tick() -> None:
        for _ in range(len(frames)):
            clock["t"] += 5.0
            tr.tick(clock["t"])

    return feed, tick


def bench_single_parts(steps: int) -> None:
    """Where the time of one single-environment step goes (N = 1), each part timed alone."""
    import gymnasium as gym

    import exposure_ctrl  # noqa: F401

    env = gym.make("exposure_ctrl/Exposure-v0", scenario="spider", recovery=False).unwrapped
    env.reset(seed=0)
    b = env._batch
    hold = np.zeros(1, dtype=np.int64)

    def env_steps() -> None:
        for _ in range(steps):
            if env.step(0)[2]:
                env.reset()

    def batch_steps() -> None:
        for _ in range(steps):
            if b.step(hold)[2][0]:
                env.reset()

    whole = best_cpu(env_steps) / steps
    batch = best_cpu(batch_steps) / steps
    env.reset(seed=0)
    sim, tr, sc = b.sim, b.tracker, b.sc
    pos = b.positions.copy()
    feed, tick = _tracker_parts(tr, [sim.step(pos).frames for _ in range(steps)], 1e6)

    shield = _shield_as_in_the_batch(b, hold)

    parts = {
        "simulator step (patient + strap)": best_cpu(lambda: [sim.step(pos, reuse=True) for _ in range(steps)]) / steps,
        "features update_block (arousal/)": best_cpu(feed) / steps,
        "tracker tick, features + model": best_cpu(tick) / steps,
        "shield (safety_rows + shield_step_into)": best_cpu(lambda: [shield() for _ in range(steps)]) / steps,
    }
    steps_per_session = sc.timing.exposure_max_s / b.period_s
    reset = best_cpu(lambda: env.reset(seed=3))
    print(f"  one single-env step (hold), N=1: {whole * 1e6:6.1f} us, of which SessionBatch.step {batch * 1e6:6.1f} us")
    for k, v in parts.items():
        print(f"    {k:40s} {v * 1e6:6.1f} us")
    rest = batch - sum(parts.values())
    print(f"    {'rest of SessionBatch.step (sim/ shell)':40s} {rest * 1e6:6.1f} us")
    print(f"    {'ExposureEnv.step around it (sim/env.py)':40s} {(whole - batch) * 1e6:6.1f} us  (incl. resets: {reset * 1e3:.2f} ms per {steps_per_session:.0f} steps)")


def _shield_as_in_the_batch(b, proposed):  # noqa: ANN001, ANN202
    """One call of the shield as :meth:`SessionBatch.step` makes it (``SessionBatch._shield``),
    on a copy of the batch's shield state."""
    import dataclasses

    state = dataclasses.replace(b.shield, **{f.name: getattr(b.shield, f.name).copy() for f in dataclasses.fields(b.shield)})
    return lambda: b._shield(proposed, state)


def best_wall(fn, runs: int = 3) -> tuple[float, float]:
    """Wall-clock seconds of the fastest of ``runs`` calls, and the CPU seconds of that call
    (all threads of the process: more than the wall time when both cores work)."""
    best = (float("inf"), float("inf"))
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - w, time.process_time() - c))
    return best


def bench_batched(n: int, steps: int) -> None:
    """Batched figures at N = ``n``. The batched kernels split the patients over numba's
    threads (exposure_ctrl/_threads.py), so these are wall-clock times (best of 3), each with
    the CPU time of the same run; first on one thread, then on all of numba's."""
    import numba

    from exposure_ctrl.scenario import resolve_scenario
    from exposure_ctrl.sim import ExposureVectorEnv, Simulator, sample_patients

    sc = resolve_scenario("spider")
    params = sample_patients(sc, "spider-moderate", np.arange(n))
    pos = np.broadcast_to(sc.hierarchy_positions[5], (n, sc.n_parameters))
    rng = np.random.default_rng(0)
    acts = [rng.integers(0, sc.n_actions, size=n) for _ in range(steps)]
    all_threads = numba.get_num_threads()
    for threads in sorted({1, all_threads}):
        numba.set_num_threads(threads)  # read when the simulator and the trackers are made
        sim = Simulator(sc, params, rng=np.random.default_rng(0))
        for _ in range(3 * steps):  # warm up (first-touch of fresh memory, caches)
            sim.step(pos, reuse=True)
        wall, cpu = best_wall(lambda: [sim.step(pos, reuse=True) for _ in range(steps)])  # noqa: B023
        print(
            f"batched simulator only (patients + strap), N={n}, {threads} thread(s): {n * steps / wall:12,.0f} "
            f"patient-steps/s  ({wall / steps * 1e3:5.2f} ms/step wall, {cpu / steps * 1e3:5.2f} ms CPU)"
        )
        env = ExposureVectorEnv(n, sc, "spider-moderate", recovery=False)
        env.reset(seed=0)
        for a in acts[:5]:
            env.step(a)
        wall, cpu = best_wall(lambda: [env.step(a) for a in acts])  # noqa: B023
        print(
            f"vector env (simulator + features + model + shield), N={n}, {threads} thread(s): {n * steps / wall:10,.0f} "
            f"patient-steps/s  ({wall / steps * 1e3:5.2f} ms/step wall, {cpu / steps * 1e3:5.2f} ms CPU)"
        )
    numba.set_num_threads(all_threads)

    # where threads start to pay (exposure_ctrl/_threads.py: PARALLEL_MIN_ROWS)
    if all_threads > 1:
        cells = []
        for m in (32, 64, 128, 256, 512):
            sub = sample_patients(sc, "spider-moderate", np.arange(m))
            pm = np.broadcast_to(sc.hierarchy_positions[5], (m, sc.n_parameters))
            per = []
            for chunks in (1, all_threads):
                sm = Simulator(sc, sub, rng=np.random.default_rng(0), chunks=chunks)
                for _ in range(3 * steps):
                    sm.step(pm, reuse=True)
                per.append(best_wall(lambda: [sm.step(pm, reuse=True) for _ in range(4 * steps)])[0] / (4 * steps))  # noqa: B023
            cells.append(f"N={m}: {per[0] * 1e6:.0f} / {per[1] * 1e6:.0f} us")
        print(f"simulator step on 1 / {all_threads} threads (wall): " + ", ".join(cells))

    # where the time goes in one vector step, all threads (times keep increasing across the
    # repeated runs)
    b = env._batch
    tr = b.tracker
    feed, tick = _tracker_parts(tr, [sim.step(pos).frames] * steps, 1e4)

    shield = _shield_as_in_the_batch(b, np.zeros(n, dtype=np.int64))
    parts = {
        "simulator (patients + strap)": best_wall(lambda: [sim.step(pos, reuse=True) for _ in range(steps)])[0] / steps,
        "... of which the noise draws": best_wall(lambda: [sim.noise.next() for _ in range(steps)])[0] / steps,
        "features update_block": best_wall(feed)[0] / steps,
        "tracker tick (features + model)": best_wall(tick)[0] / steps,
        "shield (safety_rows + in place)": best_wall(lambda: [shield() for _ in range(steps)])[0] / steps,
    }
    for k, v in parts.items():
        print(f"    {k:34s} {v * 1e3:7.2f} ms per step of {n} (wall)")
    parts.pop("... of which the noise draws")
    print(f"    {'rest (sim/ shell)':34s} {wall / steps * 1e3 - sum(parts.values()) * 1e3:7.2f} ms per step of {n} (wall)")
    # The steps above start in lockstep, so no session ends in them. In steady-state training
    # sessions end at different times and about n / steps-per-session restart every step:
    # stagger the sessions' starts over one session's length, then time a whole session's
    # worth of steps with Gymnasium's autoresets.
    per_session = round(sc.timing.exposure_max_s / b.period_s)
    r = max(1, round(n / per_session))
    rows = np.arange(r) * max(1, n // r)
    restart, _ = best_wall(lambda: b.start(rows))
    env = ExposureVectorEnv(n, sc, "spider-moderate", recovery=False)
    env.reset(seed=0)
    hold = np.zeros(n, dtype=np.int64)
    for j in range(per_session):
        env.step(hold)
        env.reset(options={"reset_mask": np.arange(n) % per_session == j})
    acts = [rng.integers(0, sc.n_actions, size=n) for _ in range(per_session)]
    restarted = [0]

    def cycle() -> None:
        for a in acts:
            restarted[0] += int(np.count_nonzero(env.step(a)[4]["autoreset"]))

    wall, cpu = best_wall(cycle)
    print(
        f"vector env at steady state (staggered sessions, autoresets included), N={n}: {n * per_session / wall:10,.0f} "
        f"patient-steps/s  ({wall / per_session * 1e3:5.2f} ms/step wall, {cpu / per_session * 1e3:5.2f} ms CPU; "
        f"{restarted[0] / (3 * per_session):.1f} sessions restart per step; start() of {r} rows alone {restart * 1e3:.2f} ms wall)"
    )


def bench_compile() -> None:
    """Cost of the compiled kernels in a fresh process: cold (empty numba cache: compiles) and
    warm (loads the cache that the cold run wrote). A private cache directory is used, so the
    project's own caches are left alone."""
    import os
    import subprocess
    import sys
    import tempfile

    code = (
        "import time; t0 = time.process_time()\n"
        "import numpy as np, gymnasium as gym, exposure_ctrl\n"
        "from exposure_ctrl.scenario import resolve_scenario\n"
        "from exposure_ctrl.sim import Simulator, sample_patients\n"
        "sc = resolve_scenario('spider'); t1 = time.process_time()\n"
        "sim = Simulator(sc, sample_patients(sc, 'spider-moderate', range(2)), rng=np.random.default_rng(0))\n"
        "sim.step(sim.patient.shown); t2 = time.process_time()\n"
        "env = gym.make('exposure_ctrl/Exposure-v0', scenario='spider'); env.reset(seed=0); env.step(1)\n"
        "t3 = time.process_time()\n"
        "print(f'{t1 - t0:.2f} {t2 - t1:.2f} {t3 - t2:.2f}')\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        envvars = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (empty numba cache)", "warm (cache loaded)"):
            out = subprocess.run([sys.executable, "-c", code], env=envvars, capture_output=True, text=True, check=True).stdout.split()
            imp, simc, envc = (float(x) for x in out)
            print(
                f"compile, {label:25s}: imports {imp:5.2f} s; first Simulator.step {simc:5.2f} s; "
                f"then first env reset + step (features, model, shield, env kernels) {envc:5.2f} s"
            )


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
    bench_compile()
    bench_single(args.steps or 400)
    bench_batched(args.patients, args.steps or 20)


if __name__ == "__main__":
    main()
