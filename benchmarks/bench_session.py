"""Live-session figures: heart-rate sample in → scene command on the wire, long sessions.

    python benchmarks/bench_session.py            # all three parts (about two minutes)
    python benchmarks/bench_session.py --quick    # shorter sessions

1. Latency: a session whose policy changes the scene at every decision (a benchmark-only policy
   alternating one parameter up and down, minimum dwell = decision period), with the store,
   the shield, the features and the real loopback headset in the loop. Figure: real time from
   the arrival of the sample that triggered a decision to the scene command on the wire.
2. A 60-minute session (simulated patient, shipped/default policy) at the highest clock speed
   this machine sustains (``--speed``; beyond it the simulated strap falls behind the clock,
   the session warns and the shield treats the late signal as stale): wall time and peak memory.
3. Memory over a 4-hour simulated session: resident memory every simulated 30 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import peak_rss_mb, pct, rss_mb

from exposure_ctrl.session.live import LiveSession, RunOptions


class Alternate:
    """Benchmark-only policy: move ``size`` up, then down, at every decision."""

    name = "alternate"

    def __init__(self, scenario):
        self.up = scenario.action_of("size", "up")
        self.down = scenario.action_of("size", "down")
        self.i = 0

    def reset(self, n=1):
        self.i = 0

    def act(self, obs, mask):
        self.i += 1
        a = self.up if self.i % 2 else self.down
        if not mask[0, a]:
            a = self.down if a == self.up else self.up
        return np.array([a]), ["benchmark: alternate"]


async def latency(tmp: Path, minutes: float) -> None:
    opts = RunOptions(
        scenario="spider", patient="B-0001", seed=1, speed=20.0, baseline_s=150.0,
        duration_s=minutes * 60, store=tmp / "lat.sqlite", report=False,
    )
    live = LiveSession(opts)
    # A scenario copy whose minimum dwell is one decision period, so every decision can change.
    sc = live.scenario.with_timing(min_dwell_s=live.scenario.timing.decision_period_s)
    live.scenario = sc
    live.loaded_policy = dataclasses.replace(live.loaded_policy, policy=Alternate(sc), id="alternate")
    await live.run()
    lat = [x * 1000 for x in live.runner.sample_to_scene_s]
    print(
        f"sample in → scene on the wire (store + shield + features + policy + loopback headset): "
        f"n={len(lat)}, p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms"
    )


async def long_session(tmp: Path, minutes: float, speed: float, label: str, probe_every_s: float | None = None) -> None:
    opts = RunOptions(
        scenario="spider", patient="B-0002", seed=2, speed=speed, baseline_s=180.0,
        duration_s=minutes * 60, store=tmp / f"{label}.sqlite", report=False,
    )
    # Let exposure run the whole time: the scenario's maximum exposure is raised for the run.
    live = LiveSession(opts)
    live.scenario = live.scenario.with_timing(exposure_max_s=minutes * 60 + 60)
    probes: list[tuple[float, float]] = []

    resumes = 0

    async def probe(session):
        from exposure_ctrl.session.commands import CommandKind, TherapistCommand

        async def loop():
            while True:
                probes.append((session.clock.now(), rss_mb()))
                await session.clock.sleep(probe_every_s or 600.0)

        async def therapist():
            # A therapist who resumes after every safe stop, so the session runs its full length.
            nonlocal resumes
            while True:
                await asyncio.sleep(0.05)
                if session.runner.snapshot.latched or session.runner.paused:
                    resumes += 1
                    await session.runner.commands.put(TherapistCommand(CommandKind.RESUME, who="benchmark"))
                    await asyncio.sleep(0.2)

        loop_ = asyncio.get_running_loop()
        tasks.extend([loop_.create_task(loop()), loop_.create_task(therapist())])

    tasks: list[asyncio.Task] = []

    t0 = time.perf_counter()
    result = await live.run(on_start=probe)
    wall = time.perf_counter() - t0
    for task in tasks:
        task.cancel()
    peak = peak_rss_mb()
    sim_s = result.exposure_s + 180
    print(
        f"{label}: {sim_s / 60:.0f} simulated minutes in {wall:.1f} s wall ({sim_s / wall:.0f}x real time), "
        f"{result.n_samples} samples, {result.n_scene_changes} scene changes, {resumes} safe stops resumed, "
        f"outcome {result.outcome.value}; peak RSS {peak:.0f} MB"
    )
    if probe_every_s:
        t_first = probes[0][0]
        row = ", ".join(f"{(t - t_first) / 60:.0f} min: {m:.1f}" for t, m in probes)
        print(f"{label}: RSS (MB) by simulated time: {row}")
        if len(probes) > 2:
            grow = probes[-1][1] - probes[1][1]
            print(f"{label}: growth after the first probe interval: {grow:+.1f} MB")


async def main(quick: bool, speed: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        await latency(tmp, 5 if quick else 20)
        await long_session(tmp, 20 if quick else 60, speed, "20-minute session" if quick else "60-minute session")
        await long_session(tmp, 60 if quick else 240, speed, "1-hour session" if quick else "4-hour session", probe_every_s=1800.0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--speed", type=float, default=200.0,
        help="clock speed of the long sessions: the highest this machine sustains (the session "
        "warns when samples arrive late); 200 on a shared 2-core machine",
    )
    a = ap.parse_args()
    asyncio.run(main(a.quick, a.speed))
