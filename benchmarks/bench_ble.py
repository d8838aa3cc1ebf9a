"""Heart-rate path through the real bleak API and the virtual strap (bumble): figures, not tests.

Prints:
  1. notifications per second, strap -> bumble link -> bleak backend -> BLE source -> HeartSample
     (the strap sends as fast as it can; the source's consumer keeps up);
  2. the real time one reconnection takes (scan + connect + GATT discovery + subscribe);
  3. a simulated hour with forced drop-outs every 10-150 s: wall time, drop-outs, beats sent
     while connected, beats received, lost/duplicated (must be 0).

Run: python benchmarks/bench_ble.py [--speed 300] [--hours 1] [--notifications 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from exposure_ctrl.clock import MonotonicClock, ScaledClock
from exposure_ctrl.sensors.ble import BleHeartRateSource
from exposure_ctrl.sensors.bleak_bumble import VirtualAir, bleak_kwargs
from exposure_ctrl.sensors.hrm import parse_heart_rate_measurement
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.sensors.source import Gap, open_source
from exposure_ctrl.sensors.virtual_strap import VirtualStrap, synthetic_heart_stream


async def throughput(n: int) -> float:
    air = VirtualAir("bench-throughput")
    kw = bleak_kwargs(air)
    async with VirtualStrap(air=air) as strap, BleHeartRateSource(
        clock=MonotonicClock(), scanner_kwargs=kw["scanner"], client_kwargs=kw["client"], stale_after_s=None
    ) as source:
        await strap.wait_subscribed()
        it = source.__aiter__()
        received = 0

        async def produce() -> None:
            for i in range(n):
                await strap.send(60 + i % 60, [1000.0], True)
                if i % 64 == 0:
                    await asyncio.sleep(0)  # let the link and the consumer run

        t0 = time.perf_counter()
        producer = asyncio.create_task(produce())
        while received < n:
            ev = await asyncio.wait_for(it.__anext__(), 10.0)
            received += isinstance(ev, HeartSample)
        dt = time.perf_counter() - t0
        await producer
    return n / dt


async def reconnect_times(rounds: int) -> list[float]:
    air = VirtualAir("bench-reconnect")
    kw = bleak_kwargs(air)
    clock = ScaledClock(1000.0)  # back-off (0.5 s of clock time) becomes 0.5 ms
    out = []
    async with VirtualStrap(air=air, clock=clock) as strap, BleHeartRateSource(
        clock=clock, scanner_kwargs=kw["scanner"], client_kwargs=kw["client"], stale_after_s=None,
        backoff_initial_s=0.5,
    ) as source:
        it = source.__aiter__()
        for _ in range(rounds):
            await strap.wait_subscribed()
            t0 = time.perf_counter()
            await strap.disconnect()
            await strap.wait_subscribed()
            out.append(time.perf_counter() - t0)
        del it
    return out


async def soak(hours: float, speed: float, seed: int) -> dict[str, float]:
    duration = hours * 3600.0
    beats, total = [], 0.0
    for item in synthetic_heart_stream(seed=seed):
        beats.append(item)
        total += sum(item[1]) / 1000.0
        if total >= duration:
            break
    clock = ScaledClock(speed)
    source = open_source(
        "virtual-ble", clock=clock, stream=beats, dropouts=(10.0, 150.0), seed=seed,
        air=VirtualAir("bench-soak"), stale_after_s=60.0,
    )
    samples, gaps = [], 0
    t0 = time.perf_counter()
    async with source:
        strap = source.strap
        it = source.__aiter__()
        while not (strap.stream_done.is_set() and len(samples) >= len(strap.delivered)):
            ev = await asyncio.wait_for(it.__anext__(), 10.0)
            if isinstance(ev, HeartSample):
                samples.append((ev.bpm, ev.rr_ms))
            gaps += isinstance(ev, Gap)
    wall = time.perf_counter() - t0
    sent = [parse_heart_rate_measurement(n.payload) for n in strap.delivered]
    sent_keys = [(m.bpm, m.rr_ms) for m in sent]
    return {
        "simulated_s": clock.now(),
        "wall_s": wall,
        "dropouts": sum(e.kind == "forced-disconnect" for e in strap.link_log),
        "gaps": gaps,
        "sent_connected": len(sent_keys),
        "sent_total": len(strap.sent),
        "received": len(samples),
        "mismatch": int(samples != sent_keys),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notifications", type=int, default=5000)
    ap.add_argument("--reconnects", type=int, default=20)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--speed", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    logging.getLogger("bumble").setLevel(logging.ERROR)  # link-layer chatter during forced drop-outs

    rate = asyncio.run(throughput(a.notifications))
    print(f"throughput: {rate:,.0f} notifications/s through bumble + bleak + BLE source ({a.notifications} sent)")
    rt = asyncio.run(reconnect_times(a.reconnects))
    print(
        f"reconnect: median {statistics.median(rt) * 1000:.1f} ms, max {max(rt) * 1000:.1f} ms real "
        f"(drop -> scan -> connect -> discover -> subscribe, {len(rt)} rounds)"
    )
    r = asyncio.run(soak(a.hours, a.speed, a.seed))
    print(
        f"soak: {r['simulated_s'] / 3600:.2f} simulated h in {r['wall_s']:.1f} s wall (speed {a.speed:g}), "
        f"{r['dropouts']} forced drop-outs, {r['gaps']} gaps reported, "
        f"{r['received']}/{r['sent_connected']} beats sent while connected received "
        f"({r['sent_total'] - r['sent_connected']} sent while disconnected), "
        f"order/duplicates/losses: {'OK' if not r['mismatch'] else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
