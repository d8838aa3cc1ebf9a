"""Benchmark of the session store: what the writer sustains, what a commit costs, how big a
session gets, whether memory stays flat, and how long review takes.

    python benchmarks/bench_store.py            # about a minute
    python benchmarks/bench_store.py --quick    # a few seconds

Prints figures; asserts nothing. Synthetic data only (exposure_ctrl.store.synthetic).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

from _common import pct as _pct
from _common import peak_rss_mb, rss_mb

from exposure_ctrl.report.html import render_review
from exposure_ctrl.report.review import build_review
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.store import Store
from exposure_ctrl.store.synthetic import SyntheticPlan, write_synthetic_session


def bench_throughput(tmp: Path, n: int, synchronous: str) -> None:
    sc = resolve_scenario("spider")
    with Store.open(tmp / f"tp-{synchronous}.sqlite") as store:
        w = store.begin_session(patient="B-0001", scenario=sc, mode="autonomous",
                                synchronous=synchronous)
        samples = [HeartSample(t=i * 0.001, bpm=70.0 + i % 30, rr_ms=(850.0, 846.0),
                               contact=True, source="bench") for i in range(n)]
        t0 = time.perf_counter()
        for s in samples:
            w.sample(s)
        t_append = time.perf_counter() - t0
        w.flush(timeout=600)
        t_all = time.perf_counter() - t0
        w.close()
    print(f"writer [{synchronous}]: {n} samples appended in {t_append:.3f} s "
          f"({n / t_append:,.0f} appends/s, {1e6 * t_append / n:.2f} µs per append); "
          f"all committed after {t_all:.3f} s: sustained {n / t_all:,.0f} samples/s "
          f"in {w.n_commits} commits")


def bench_live_commits(tmp: Path, seconds: float, synchronous: str) -> None:
    """A live-like load in real time: 20 samples/s, a decision every 0.2 s, the default commit
    interval; commit latency as measured by the writer thread, and what an append costs the
    session loop meanwhile."""
    sc = resolve_scenario("spider")
    with Store.open(tmp / f"live-{synchronous}.sqlite") as store:
        w = store.begin_session(patient="B-0001", scenario=sc, mode="autonomous",
                                synchronous=synchronous)
        t0 = time.monotonic()
        i = 0
        appends: list[float] = []
        while time.monotonic() - t0 < seconds:
            t = time.monotonic() - t0
            sample = HeartSample(t=t, bpm=72.0, rr_ms=(830.0,), contact=True, source="bench")
            a0 = time.perf_counter()
            w.sample(sample)
            appends.append((time.perf_counter() - a0) * 1e6)
            if i % 4 == 0:
                w.decision(t, mode="autonomous", verdict="allow", phase="exposure",
                           observation={"rise": 10.0, "slope": 0.1}, proposed_action=0,
                           proposed_label="hold", proposal_reason="in the window",
                           executed_action=0, executed_label="hold")
            i += 1
            time.sleep(0.05)
        w.close()
    d = [x * 1000 for x in w.commit_durations_s]
    print(f"commit latency [{synchronous}] (live load, {len(d)} commits every "
          f"{w.commit_interval_s:g} s): p50 {statistics.median(d):.2f} ms, "
          f"p99 {_pct(d, 0.99):.2f} ms, max {max(d):.2f} ms; append on the loop: "
          f"p50 {statistics.median(appends):.1f} µs, p99 {_pct(appends, 0.99):.1f} µs, "
          f"max {max(appends):.0f} µs")


def bench_session_size(tmp: Path, hours: float) -> Path:
    sc = resolve_scenario("spider")
    path = tmp / "size.sqlite"
    plan = SyntheticPlan(baseline_s=180, exposure_s=hours * 3600 - 300, recovery_s=120,
                         sample_period_s=1.0, sensor_gap=(900, 930), headset_gap=(1200, 1205))
    with Store.open(path) as store:
        t0 = time.perf_counter()
        sid = write_synthetic_session(store, sc, plan=plan, commit_interval_s=0.25)
        t_write = time.perf_counter() - t0
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rec = store.load_session(sid)
    size = path.stat().st_size
    print(f"file size: {size / 1e6:.2f} MB for a {hours:g} h session at 1 sample/s with RR "
          f"({len(rec.samples)} samples, {len(rec.decisions)} decisions, "
          f"{len(rec.scene_changes)} scene changes) = {size / 1e6 / hours:.2f} MB per hour; "
          f"written at full speed in {t_write:.2f} s")
    return path


def bench_review(path: Path) -> None:
    with Store.open(path) as store:
        t0 = time.perf_counter()
        rec = store.load_session(1)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        inp = build_review(store, 1)
        html = render_review(inp)
        t_render = time.perf_counter() - t0
    print(f"review: load_session {t_load * 1000:.0f} ms ({len(rec.samples)} samples), "
          f"render {t_render:.2f} s, report {len(html) / 1e6:.2f} MB")


def bench_memory(tmp: Path, hours: float, rate_hz: float) -> None:
    """Write `hours` of samples at `rate_hz` through one writer as fast as it commits, and print
    the process RSS after each simulated hour: flat means the writer keeps nothing."""
    sc = resolve_scenario("spider")
    with Store.open(tmp / "mem.sqlite") as store:
        w = store.begin_session(patient="B-0001", scenario=sc, mode="autonomous")
        per_hour = int(3600 * rate_hz)
        rss = [rss_mb()]
        t0 = time.perf_counter()
        for h in range(int(hours)):
            for i in range(per_hour):
                t = h * 3600 + i / rate_hz
                w.sample(HeartSample(t=t, bpm=72.0, rr_ms=(830.0,), contact=True, source="b"))
                if i % int(5 * rate_hz) == 0:
                    w.decision(t, mode="autonomous", verdict="allow", observation={"r": 1.0},
                               proposed_action=0, executed_action=0)
                if i % 1000 == 0:
                    w.flush()  # paced like a live session: the buffer never grows
            w.flush()
            gc.collect()
            rss.append(rss_mb())
        w.close()
        elapsed = time.perf_counter() - t0
    steps = ", ".join(f"{x:.1f}" for x in rss)
    print(f"memory: RSS (MB) at start and after each of {int(hours)} simulated hours at "
          f"{rate_hz:g} samples/s: {steps} (growth after hour 1: {rss[-1] - rss[1]:+.1f} MB; "
          f"{elapsed:.1f} s wall); peak RSS {peak_rss_mb():.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, a few seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as d:
        tmp = Path(d)
        n = 50_000 if args.quick else 200_000
        for sync in ("FULL", "NORMAL"):
            bench_throughput(tmp, n, sync)
        for sync in ("FULL", "NORMAL"):
            bench_live_commits(tmp, 3.0 if args.quick else 15.0, sync)
        path = bench_session_size(tmp, 0.5 if args.quick else 1.0)
        bench_review(path)
        bench_memory(tmp, 2 if args.quick else 4, 1.0 if args.quick else 4.0)


if __name__ == "__main__":
    main()
