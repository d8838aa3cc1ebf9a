"""Benchmark of the therapist console: button press → scene on the emulated headset, and how
often the live view is updated.

    python benchmarks/bench_console.py            # 100 presses, about a minute
    python benchmarks/bench_console.py --quick    # 20 presses

A simulated session (manual mode, so only the therapist changes the scene) runs on the console's
asyncio loop with the reference headset emulator over loopback ZeroMQ, exactly as
``exposure-ctrl console`` runs one. Headless Chromium (``/usr/bin/chromium`` driven by
Playwright) presses Step up / Step down in turn; each press is timed until the emulator has
received the scene message. Three figures:

- from Playwright's ``click()`` call: includes Playwright's own round trip to the browser (an
  upper bound);
- from the click event in the page (``performance.timeOrigin + performance.now()`` against the
  same wall clock): what a therapist's tap costs;
- from an HTTP POST to ``/api/command`` without a browser.

The requirement (issue 9) is ≤ 200 ms from a button press to the headset. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _common import pct as _pct

from exposure_ctrl.console.server import ConsoleServer, session_options
from unity_bridge.messages import Scene

CHROMIUM = os.environ.get("EXPOSURE_CTRL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _line(label: str, ms: list[float], failed: int) -> str:
    if not ms:
        return f"{label}: no successful press ({failed} failed)"
    return (f"{label} (n={len(ms)}): p50 {_pct(ms, 0.5):.1f} ms, p99 {_pct(ms, 0.99):.1f} ms, "
            f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms" + (f"; {failed} press(es) without a scene" if failed else ""))


async def _wait_scene(emulator: Any, before: int, timeout: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scenes = emulator.received_of(Scene)
        if len(scenes) > before:
            return scenes[before]
        await asyncio.sleep(0.001)
    return None


async def main(presses: int, speed: float) -> int:
    from playwright.async_api import async_playwright

    wall_minus_mono = time.time() - time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.sqlite"
        async with ConsoleServer(store_path=store, port=0) as console, async_playwright() as pw:
            base = f"http://127.0.0.1:{console.port}"
            opts = session_options(
                {"patient": "BENCH-001", "mode": "manual", "sensor": "sim", "speed": str(speed), "seed": "1",
                 "baseline_s": "120"}, store)
            live = await console.start_session(opts)
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1000})
                await page.goto(console.url.replace("/?", "/live?"))
                await page.wait_for_function("() => document.getElementById('phase').textContent === 'exposure'",
                                             timeout=120_000)
                await page.evaluate("() => { window.__clicks = []; document.addEventListener('click',"
                                    " () => window.__clicks.push(performance.timeOrigin + performance.now()), true); }")
                emulator = live.emulator
                from_call: list[float] = []
                from_event: list[float] = []
                failed = 0
                await asyncio.sleep(0.5)
                for i in range(presses):
                    if not console.running:
                        break
                    button = "#btn-up" if i % 2 == 0 else "#btn-down"
                    await page.wait_for_selector(f"{button}:not([disabled])")
                    before = len(emulator.received_of(Scene))
                    t_call = time.monotonic()
                    await page.click(button)
                    got = await _wait_scene(emulator, before)
                    if got is None:
                        failed += 1
                        continue
                    from_call.append((got.at - t_call) * 1000)
                    clicked_ms = (await page.evaluate("() => window.__clicks[window.__clicks.length - 1]"))
                    from_event.append((got.at + wall_minus_mono) * 1000 - clicked_ms)
                    await asyncio.sleep(0.05)

                # the same without a browser
                http_ms: list[float] = []
                http_failed = 0
                jar = aiohttp.CookieJar(unsafe=True)
                async with aiohttp.ClientSession(cookie_jar=jar) as c:
                    await (await c.get(console.url)).release()
                    for i in range(presses):
                        if not console.running:
                            break
                        before = len(emulator.received_of(Scene))
                        t0 = time.monotonic()
                        async with c.post(base + "/api/command", headers={"Origin": base},
                                          json={"command": "step_up" if i % 2 == 0 else "step_down"}) as r:
                            assert r.status == 202
                        got = await _wait_scene(emulator, before)
                        if got is None:
                            http_failed += 1
                            continue
                        http_ms.append((got.at - t0) * 1000)
                        await asyncio.sleep(0.05)

                    # live view: how often the stream pushes, and how big a push is
                    n, size = 0, 0
                    t_end = time.monotonic() + 5.0
                    async with c.get(base + "/api/events") as r:
                        async for raw in r.content:
                            if raw.startswith(b"data:"):
                                n += 1
                                size += len(raw)
                                json.loads(raw[5:])
                            if time.monotonic() >= t_end:
                                break
            finally:
                await browser.close()
            phase = live.runner.snapshot.phase
            stopped = console._hosted.error if console._hosted is not None else ""

    print(f"console benchmark: simulated session (manual mode, clock x{speed:g}, phase {phase} at the end), "
          "reference headset emulator over loopback ZeroMQ, headless Chromium")
    print(_line("button → headset scene, from the click event in the page", from_event, failed))
    print(_line("button → headset scene, from Playwright's click() call", from_call, failed))
    print(_line("POST /api/command → headset scene, no browser", http_ms, http_failed))
    print(f"live view: {n / 5.0:.1f} pushes per second over server-sent events, {size / max(n, 1) / 1024:.1f} KiB per push")
    print("requirement: button → headset ≤ 200 ms; live view ≥ 1 update per second")
    if stopped:
        print(f"THE SESSION STOPPED during the benchmark: {stopped}")
        return 1
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 presses instead of 100")
    ap.add_argument("--presses", type=int, default=None)
    ap.add_argument("--speed", type=float, default=20.0, help="session clock speed (default 20)")
    a = ap.parse_args()
    if not Path(CHROMIUM).is_file():
        print(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set EXPOSURE_CTRL_CHROMIUM)", file=sys.stderr)
        raise SystemExit(1)
    raise SystemExit(asyncio.run(main(a.presses or (20 if a.quick else 100), a.speed)))
