"""Speed of the arousal features and the response model (prints figures; not a test).

Targets (issue 3): <= 50 us per sample for one patient, >= 1 M patient-samples/s for N = 1024.
Times are CPU time, so every batch here runs on one thread (``chunks=1``): from 256 patients on
the features and the tracker would otherwise split the patients over numba's threads
(exposure_ctrl/_threads.py; benchmarks/bench_sim.py reports those in wall time).

    python benchmarks/bench_arousal.py [--quick] [--first-calls]   # --first-calls: compile cost (cold + warm)
    python benchmarks/bench_arousal.py --sim [--patients 256]   # model accuracy on simulated patients

``--sim`` runs simulated patients (``exposure_ctrl.sim``) through a baseline phase and a graded
exposure driven by a simple exploring rule, and prints the error of the response model's
predicted effect of every legal one-step move against the simulator's true effect
(``Simulator.action_effects``) after 10 and 20 minutes, next to the error of the designer's
prior alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from exposure_ctrl.arousal import ArousalTracker, FeatureState, ResponseModel
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample

R = 3  # RR slots per notification (a 1 Hz strap carries 1-2 beats, up to 3 at high rates)


_FIRST_CALLS = """
import time
t = time.perf_counter()
from exposure_ctrl.arousal.tracker import warm_up
from exposure_ctrl.scenario import resolve_scenario
sc = resolve_scenario("spider")
t_import = time.perf_counter() - t
t = time.perf_counter()
warm_up(sc)  # what the first ArousalTracker does: every kernel, every argument type
print(f"{t_import:.2f} {time.perf_counter() - t:.2f}")
"""


def first_call_cost() -> tuple[tuple[float, float], tuple[float, float]]:
    """Seconds to import and to make the first call of every kernel (``warm_up``, as the first
    :class:`ArousalTracker` does), in a fresh process: with an empty numba cache (compiling) and
    then with the cache it wrote (loading)."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            r = subprocess.run(
                [sys.executable, "-c", _FIRST_CALLS], env=env, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            a, b = r.stdout.split()
            out.append((float(a), float(b)))
    return out[0], out[1]


def stream(rng: np.random.Generator, s: int, n: int, t0: float):
    """S notifications for N patients: times, bpm, RR (with 2% ectopic beats), counts."""
    ts = t0 + np.arange(1, s + 1, dtype=np.float64)
    bpm = 75 + rng.normal(0, 3, (s, n))
    cnt = rng.integers(1, R + 1, (s, n))
    rr = 60000.0 / bpm[..., None] * (1 + rng.normal(0, 0.03, (s, n, R)))
    rr[rng.random((s, n, R)) < 0.02] *= 0.6
    rr[np.arange(R) >= cnt[..., None]] = np.nan
    return ts, bpm, rr, cnt


def per_call(fn, reps: int) -> float:
    """Best-of-5 mean CPU seconds per call (CPU time: the machine is shared with other jobs)."""
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - t) / reps)
    return best


def bench_features(sc, n: int, s: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    fs = FeatureState(sc, n=n, chunks=1)
    fs.set_baseline(70.0)
    data = [stream(rng, s, n, 1000.0 * i) for i in range(8)]
    state = {"i": 0}

    def call():
        i = state["i"]
        state["i"] += 1
        ts, bpm, rr, cnt = data[i % 8]
        fs.update_block(ts + 8000.0 * (i // 8), bpm, rr, cnt)

    return per_call(call, reps)


def measure_on_simulator(n: int, cohort: str, seed: int) -> None:
    from exposure_ctrl.sim import Simulator, sample_patients
    from exposure_ctrl.sim import patient as pt

    sc = resolve_scenario("spider")
    params = sample_patients(sc, cohort, range(n), split="eval")
    sim = Simulator(sc, params, rng=np.random.default_rng(seed), sensor="strap")
    rng = np.random.default_rng(seed + 1)
    tr = ArousalTracker(sc, n=n)
    tg = sc.targets.arousal_window_bpm
    pos = np.tile(np.asarray(sc.positions(sc.safe_state)), (n, 1))

    def feed(positions: np.ndarray) -> np.ndarray:
        f = sim.step(positions).frames
        tr.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
        return sim.patient.t_s.copy()

    t = sim.patient.t_s.copy()
    tr.begin_baseline(float(t.max()))
    for _ in range(int(sc.timing.baseline_s / sc.timing.decision_period_s)):
        t = feed(pos)
    base = tr.finish_baseline(float(t.max()))
    print(f"simulated patients: {n} from {cohort!r}; baseline good for {base.good.mean():.0%}")
    pos = np.tile(np.asarray(sc.positions(sc.start)), (n, 1))
    tr.set_scene(t, pos)
    start = t.copy()
    next_change = t + sc.timing.min_dwell_s
    checkpoints = [10, 20]
    while checkpoints:
        t = feed(pos)
        obs = tr.tick(t)
        minutes = float(np.min(t - start)) / 60.0
        if minutes >= checkpoints[0]:
            true = sim.action_effects(pos)
            est, sd = tr.model.action_effects()
            prior = ResponseModel(sc, n=n, positions=pos).action_effects()[0]
            legal = np.isfinite(true)
            legal[:, 0] = False
            err = np.abs(est - true)[legal]
            perr = np.abs(prior - true)[legal]
            cover = np.mean(np.abs(est - true)[legal] < 2 * sd[legal])
            # whole range of each parameter, the others as now (the "sensitivity")
            sens, sens_sd = tr.model.sensitivity_arrays()
            psens = ResponseModel(sc, n=n, positions=pos).sensitivity_arrays()[0]
            true_sens = np.empty_like(sens)
            for k in range(sc.n_parameters):
                lo, hi = pos.copy(), pos.copy()
                lo[:, k] = 0
                hi[:, k] = sc.n_levels[k] - 1
                d_hi = pt.scene_drive(sim.params, hi, sim.patient.habituation)[0]
                d_lo = pt.scene_drive(sim.params, lo, sim.patient.habituation)[0]
                true_sens[:, k] = sim.params.hr_gain_bpm * (d_hi - d_lo)
            se = np.abs(sens - true_sens)
            print(
                f"after {checkpoints[0]:2d} min: |estimated - true| whole-range sensitivity per "
                f"parameter: median {np.median(se):.2f} bpm, mean {se.mean():.2f} bpm (prior alone: "
                f"median {np.median(np.abs(psens - true_sens)):.2f}, mean "
                f"{np.abs(psens - true_sens).mean():.2f}); within 2 sd: {np.mean(se < 2 * sens_sd):.0%}; "
                f"true |sensitivity| median {np.median(np.abs(true_sens)):.2f} bpm"
            )
            print(
                f"after {checkpoints[0]:2d} min: |predicted - true| effect of a one-step move: "
                f"median {np.median(err):.2f} bpm, mean {err.mean():.2f} bpm, 90th pct "
                f"{np.percentile(err, 90):.2f} bpm (designer's prior alone: median "
                f"{np.median(perr):.2f}, mean {perr.mean():.2f}); within 2 sd: {cover:.0%}; "
                f"true |effect| median {np.median(np.abs(true[legal])):.2f} bpm"
            )
            checkpoints.pop(0)
        # an exploring rule: step up below the window, down above it, anywhere inside it
        change = t >= next_change
        if change.any():
            above = obs[:, 0]
            mask = sc.action_mask(pos)
            mask[:, 0] = False
            up = np.zeros_like(mask)
            up[:, 1::2] = True
            want = np.where(
                (above < tg.low)[:, None], up, np.where((above > tg.high)[:, None], ~up, True)
            )
            choice = mask & want
            choice = np.where(choice.any(axis=1, keepdims=True), choice, mask)
            p = choice / choice.sum(axis=1, keepdims=True)
            actions = np.array([rng.choice(len(row), p=row) for row in p])
            new = sc.apply_action(pos, actions)
            pos = np.where(change[:, None], new, pos)
            tr.set_scene(t, pos, change)
            next_change = np.where(change, t + sc.timing.min_dwell_s, next_change)


def bench_model_and_tracker(sc, n: int, q: float) -> None:
    model = ResponseModel(sc, n=n)
    pos = np.tile(np.asarray(sc.positions(sc.start)), (n, 1))
    model.set_scene(0.0, pos)
    clock = {"t": 0.0}

    def learn():
        clock["t"] += 5.0
        model.observe_hr(clock["t"], np.full(n, 10.0))

    reps = int((2000 if n == 1 else 100) * q) + 5
    a = per_call(learn, reps)
    b = per_call(model.observation, reps)
    c = per_call(model.sensitivity_arrays, reps)
    unit, f = ("us", 1e6) if n == 1 else ("ms", 1e3)
    print(
        f"N={n:<5d} model: observe_hr {a * f:7.2f} {unit}, observation {b * f:7.2f} {unit}, "
        f"sensitivities only {c * f:7.2f} {unit}"
    )
    tr = ArousalTracker(sc, n=n, chunks=1)
    tr.set_baseline(70.0)
    tr.set_scene(0.0, pos)
    rngt = np.random.default_rng(3)
    blocks = [stream(rngt, 5, n, 0.0) for _ in range(4)]
    step = {"k": 0}

    def env_step():
        k = step["k"]
        step["k"] += 1
        ts, bpm, rr, cnt = blocks[k % 4]
        t_off = 5.0 * k
        tr.update_block(ts + t_off, bpm, rr, cnt)
        tr.tick(ts[-1] + t_off)

    d = per_call(env_step, int((1000 if n == 1 else 50) * q) + 5)
    tt = {"t": 5.0 * step["k"]}

    def tick_only():
        tt["t"] += 0.001
        tr.tick(tt["t"])

    e = per_call(tick_only, int((1000 if n == 1 else 50) * q) + 5)
    print(
        f"N={n:<5d} tracker step (5 samples + tick): {d * f:8.2f} {unit} "
        f"= {n / d:,.0f} patient-steps/s (tick alone {e * f:.2f} {unit})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--first-calls", action="store_true", help="also time compiling every kernel in a fresh process")
    ap.add_argument("--sim", action="store_true", help="measure the model on simulated patients")
    ap.add_argument("--patients", type=int, default=256)
    ap.add_argument("--cohort", default="spider-moderate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.sim:
        measure_on_simulator(args.patients, args.cohort, args.seed)
        return
    q = 0.2 if args.quick else 1.0
    sc = resolve_scenario("spider")
    if args.first_calls:
        (imp0, cold), (imp1, warm) = first_call_cost()
        print(
            f"first calls (every kernel, fresh process): {cold:.1f} s compiling (cold numba cache), "
            f"{warm:.2f} s from the cache (import {imp0:.1f} s / {imp1:.1f} s)"
        )

    # --- one patient, HeartSample by HeartSample (the live controller)
    rng = np.random.default_rng(1)
    fs = FeatureState(sc, n=1)
    fs.set_baseline(70.0)
    samples = [
        HeartSample(
            float(i),
            75.0 + rng.normal(0, 2),
            tuple(800 + rng.normal(0, 20, 1 + i % 2)),
            contact=True,
        )
        for i in range(1, 30001)
    ]
    it = iter(samples)
    dt = per_call(lambda: fs.add(next(it)), int(5000 * q))
    print(f"N=1     add(HeartSample)           : {dt * 1e6:8.1f} us per sample")
    dt1 = bench_features(sc, 1, 1, int(4000 * q))
    print(f"N=1     update_block, S=1          : {dt1 * 1e6:8.1f} us per sample")
    dt5 = bench_features(sc, 1, 5, int(2000 * q))
    print(
        f"N=1     update_block, S=5 (5 s)    : {dt5 * 1e6 / 5:8.1f} us per sample ({dt5 * 1e6:.0f} us per call)"
    )
    dto = per_call(lambda: fs.observe(20000.0), int(3000 * q))
    print(f"N=1     observe                    : {dto * 1e6:8.1f} us per call")

    # --- N = 1024 in lockstep (the vectorised simulator)
    for s in (1, 5):
        dtn = bench_features(sc, 1024, s, int(200 * q / s) + 5)
        print(
            f"N=1024  update_block, S={s}          : {1024 * s / dtn / 1e6:8.2f} M patient-samples/s "
            f"({dtn * 1e3:.2f} ms per call)"
        )
    fsn = FeatureState(sc, n=1024, chunks=1)
    rngn = np.random.default_rng(2)
    ts, bpm, rr, cnt = stream(rngn, 5, 1024, 0.0)
    fsn.update_block(ts, bpm, rr, cnt)
    dto = per_call(lambda: fsn.observe(6.0), int(200 * q) + 5)
    print(f"N=1024  observe                    : {dto * 1e3:8.3f} ms per call")

    # --- response model and tracker, per decision tick
    for n in (1, 1024):
        bench_model_and_tracker(sc, n, q)


if __name__ == "__main__":
    main()
