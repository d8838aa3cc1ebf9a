"""Bridge figures on loopback: scene → ack round trip, and a long headset event stream.

    python benchmarks/bench_bridge.py                 # both, about 20 s
    python benchmarks/bench_bridge.py --scenes 5000   # more round trips
    python benchmarks/bench_bridge.py --realtime      # pace the event stream at 120 Hz (10 min)

1. **Round trip.** A :class:`ControllerEndpoint` in this process, the reference headset
   (:func:`run_emulator`) in a child process, as a real headset would be. Scenes with
   ``transition_s = 0`` are sent one after the other; each waits for its ``SceneAcked``. The
   figure is the endpoint's own ``rtt_s`` (send → ack received, same clock). Target: p99 ≤ 2 ms.
   For comparison the same is measured with the emulator on the endpoint's own event loop, and
   a bare pyzmq ROUTER/DEALER echo shows what the machine allows at that moment (on a shared,
   loaded machine the tail is the scheduler's, not the protocol's).
2. **Event stream.** The child sends 72,000 headset events (120 Hz × 600 s, a simulated
   10-minute session) as fast as the link takes them (``--realtime``: at 120 Hz). They are
   ``suds`` events whose values run 0, 1, …, 100, 0, … so that the receiver can tell a lost,
   duplicated or reordered event from the pattern. Target: zero loss.

Prints figures; exits 1 if a target is missed. Not a test: timing belongs here.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time

PARAMS = ("jar", "distance_m", "size")
A = {"jar": "closed", "distance_m": 2.4, "size": "small"}
B = {"jar": "open", "distance_m": 1.2, "size": "medium"}
SAFE = {"jar": "covered", "distance_m": 3.0, "size": "tiny"}


def _child(address: str, n_events: int, rate_hz: float, go: mp.Event, done: mp.Event) -> None:
    """The headset process: answer scenes; on ``go`` stream the events; run until ``done``."""
    from unity_bridge import HeadsetEmulator

    async def main() -> None:
        async with HeadsetEmulator(address, parameters=PARAMS, client="bench") as emu:
            await emu.wait_welcomed(30)
            while not go.is_set():
                await asyncio.sleep(0.01)
            start = time.monotonic()
            for i in range(n_events):
                if rate_hz > 0:
                    delay = start + i / rate_hz - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif i % 200 == 0:
                    await asyncio.sleep(0)  # let heartbeats and acks through
                await emu.send_event("suds", i % 101)
            while not done.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


async def _round_trips(ep: object, n: int) -> list[float]:
    """``n`` scene -> ack round trips (after a short warm-up), as the endpoint measured them."""
    from unity_bridge import SceneAcked

    rtts: list[float] = []
    warmup = min(200, max(10, n // 10))
    for i in range(warmup + n):
        seq = await ep.send_scene(B if i % 2 == 0 else A, 0.0)  # type: ignore[attr-defined]
        while True:
            ev = await ep.next_event(10)  # type: ignore[attr-defined]
            if isinstance(ev, SceneAcked) and ev.scene_seq == seq:
                break
        if i >= warmup:
            rtts.append(ev.rtt_s)
    return rtts


def _figures(rtts: list[float]) -> str:
    return (
        f"p50 {_q(rtts, 0.50) * 1e3:.2f} ms  p99 {_q(rtts, 0.99) * 1e3:.2f} ms  "
        f"max {max(rtts) * 1e3:.2f} ms  mean {statistics.fmean(rtts) * 1e3:.2f} ms"
    )


async def in_process(n_scenes: int) -> None:
    """The same round trip with the emulator on the endpoint's own event loop (for comparison)."""
    from unity_bridge import ControllerEndpoint, HeadsetEmulator

    async with ControllerEndpoint(
        "tcp://127.0.0.1:*", session_id="BENCH", scenario_id="bench", parameters=PARAMS,
        initial_state=A, safe_state=SAFE, heartbeat_s=1.0, timeout_s=10.0,
    ) as ep:
        async with HeadsetEmulator(ep.address, parameters=PARAMS, client="bench") as emu:
            await emu.wait_welcomed(30)
            await ep.next_event(5)
            rtts = await _round_trips(ep, n_scenes)
    print(f"bridge scene->ack round trip (loopback, headset on the same event loop, {len(rtts)} scenes): {_figures(rtts)}")


async def baseline(n: int) -> None:
    """Bare pyzmq ROUTER/DEALER echo on one event loop: what the machine allows right now."""
    import zmq
    import zmq.asyncio

    ctx = zmq.asyncio.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    router.linger = dealer.linger = 0
    router.bind("tcp://127.0.0.1:*")
    dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))

    async def echo() -> None:
        while True:
            await dealer.send(await dealer.recv())

    task = asyncio.create_task(echo())
    try:
        await dealer.send(b"hi")
        ident, _ = await router.recv_multipart()
        rtts = []
        for i in range(n + 200):
            t0 = time.monotonic()
            await router.send_multipart([ident, b"ping"])
            await router.recv_multipart()
            if i >= 200:
                rtts.append(time.monotonic() - t0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        router.close()
        dealer.close()
        ctx.term()
    print(f"baseline: bare pyzmq ROUTER/DEALER echo on one event loop, {n} round trips: {_figures(rtts)}")


def _q(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


async def run(n_scenes: int, n_events: int, rate_hz: float) -> bool:
    from unity_bridge import ControllerEndpoint, Suds

    ctx = mp.get_context("spawn")
    go, done = ctx.Event(), ctx.Event()
    ok = True
    async with ControllerEndpoint(
        "tcp://127.0.0.1:*", session_id="BENCH", scenario_id="bench", parameters=PARAMS,
        initial_state=A, safe_state=SAFE, heartbeat_s=1.0, timeout_s=10.0,
    ) as ep:
        child = ctx.Process(target=_child, args=(ep.address, n_events, rate_hz, go, done), daemon=True)
        child.start()
        try:
            await ep.wait_connected(60)
            await ep.next_event(5)  # HeadsetConnected

            # 1. scene -> ack round trip
            rtts = await _round_trips(ep, n_scenes)
            target = _q(rtts, 0.99) <= 0.002
            ok &= target
            print(
                f"bridge scene->ack round trip (loopback, headset in a separate process, {len(rtts)} scenes): "
                f"{_figures(rtts)}  [target p99 <= 2 ms: {'OK' if target else 'MISSED'}]"
            )

            # 2. headset event stream
            received = out_of_pattern = 0
            t0 = time.monotonic()
            go.set()
            limit = (n_events / rate_hz if rate_hz > 0 else 0) + 120
            while received < n_events:
                try:
                    ev = await ep.next_event(max(0.1, t0 + limit - time.monotonic()))
                except (TimeoutError, asyncio.TimeoutError):
                    break
                if isinstance(ev, Suds):
                    if ev.value != received % 101:
                        out_of_pattern += 1
                    received += 1
            wall = time.monotonic() - t0
            lost = n_events - received
            target = lost == 0 and out_of_pattern == 0 and ep.counters.malformed == 0
            ok &= target
            pace = f"{rate_hz:g} Hz real time" if rate_hz > 0 else "as fast as the link takes them"
            print(
                f"bridge headset event stream: {n_events} events (120 Hz x {n_events / 120:.0f} s simulated, sent {pace}): "
                f"{received} received, {lost} lost, {out_of_pattern} out of order/duplicated, "
                f"{wall:.1f} s wall ({received / wall:,.0f} events/s); endpoint malformed {ep.counters.malformed}, "
                f"losses {ep.counters.losses}  [target zero loss: {'OK' if target else 'MISSED'}]"
            )
        finally:
            done.set()
            child.join(10)
            if child.is_alive():
                child.terminate()
                child.join(5)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=2000, help="round trips to measure (default 2000)")
    ap.add_argument("--events", type=int, default=72_000, help="events in the stream (default 72000 = 120 Hz x 10 min)")
    ap.add_argument("--realtime", action="store_true", help="pace the events at 120 Hz (takes events/120 seconds)")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    ok = asyncio.run(run(args.scenes, args.events, 120.0 if args.realtime else 0.0))
    asyncio.run(in_process(args.scenes))
    asyncio.run(baseline(args.scenes))
    load = os.getloadavg()
    print(f"machine: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
