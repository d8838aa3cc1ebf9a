"""Speed of the arousal features and the response model (prints figures; not a test).

Targets (issue 3): <= 50 us per sample for one patient, >= 1 M patient-samples/s for N = 1024.

    python benchmarks/bench_arousal.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from exposure_ctrl.arousal import ArousalTracker, FeatureState, ResponseModel
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample

R = 3  # RR slots per notification (a 1 Hz strap carries 1-2 beats, up to 3 at high rates)


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
    """Best-of-3 mean seconds per call."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def bench_features(sc, n: int, s: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    fs = FeatureState(sc, n=n)
    fs.set_baseline(70.0)
    data = [stream(rng, s, n, 1000.0 * i) for i in range(8)]
    state = {"i": 0}

    def call():
        i = state["i"]
        state["i"] += 1
        ts, bpm, rr, cnt = data[i % 8]
        fs.update_block(ts + 8000.0 * (i // 8), bpm, rr, cnt)

    return per_call(call, reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    q = 0.2 if args.quick else 1.0
    sc = resolve_scenario("spider")

    # --- one patient, HeartSample by HeartSample (the live controller)
    rng = np.random.default_rng(1)
    fs = FeatureState(sc, n=1)
    fs.set_baseline(70.0)
    samples = [
        HeartSample(float(i), 75.0 + rng.normal(0, 2), tuple(800 + rng.normal(0, 20, 1 + i % 2)), contact=True)
        for i in range(1, 20001)
    ]
    it = iter(samples)
    dt = per_call(lambda: fs.add(next(it)), int(5000 * q))
    print(f"N=1     add(HeartSample)           : {dt * 1e6:8.1f} us per sample")
    dt1 = bench_features(sc, 1, 1, int(4000 * q))
    print(f"N=1     update_block, S=1          : {dt1 * 1e6:8.1f} us per sample")
    dt5 = bench_features(sc, 1, 5, int(2000 * q))
    print(f"N=1     update_block, S=5 (5 s)    : {dt5 * 1e6 / 5:8.1f} us per sample ({dt5 * 1e6:.0f} us per call)")
    dto = per_call(lambda: fs.observe(20000.0), int(3000 * q))
    print(f"N=1     observe                    : {dto * 1e6:8.1f} us per call")

    # --- N = 1024 in lockstep (the vectorised simulator)
    for s in (1, 5):
        dtn = bench_features(sc, 1024, s, int(200 * q / s) + 5)
        print(
            f"N=1024  update_block, S={s}          : {1024 * s / dtn / 1e6:8.2f} M patient-samples/s "
            f"({dtn * 1e3:.2f} ms per call)"
        )
    fsn = FeatureState(sc, n=1024)
    rngn = np.random.default_rng(2)
    ts, bpm, rr, cnt = stream(rngn, 5, 1024, 0.0)
    fsn.update_block(ts, bpm, rr, cnt)
    dto = per_call(lambda: fsn.observe(6.0), int(200 * q) + 5)
    print(f"N=1024  observe                    : {dto * 1e3:8.3f} ms per call")

    # --- response model and tracker, per decision tick
    for n in (1, 1024):
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
        tr = ArousalTracker(sc, n=n)
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
        print(
            f"N={n:<5d} tracker step (5 samples + tick): {d * 1e6 if n == 1 else d * 1e3:8.2f} {unit} "
            f"= {n / d:,.0f} patient-steps/s"
        )


if __name__ == "__main__":
    main()
