"""A whole simulated session run and reviewed from headless Chromium, through the console alone.

The console serves on 127.0.0.1 (random port) with the session on the same asyncio loop: the
simulated patient behind the simulated strap, the reference headset emulator over loopback
ZeroMQ, an accelerated clock. The browser starts the session from the setup page, sees the heart
rate update, steps the scene up and down (checked on the emulated headset), enters a SUDS value
(checked in the store), writes a note, ends the session and opens the report and the review
pages. Every request the page makes must go to the console (no CDN, no internet). Screenshots go
to ``test-artifacts/console/``.

Skips locally without Chromium or Playwright; fails in CI (``CI`` set).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exposure_ctrl.console import ConsoleServer
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.store import Store

pytestmark = pytest.mark.timeout(240)


async def _until(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def _from_store(path: Path, session_id: int, what: Callable[[Any], Any]) -> Any:
    with Store.open(path, create=False) as store:
        return what(store.load_session(session_id))


async def _shot(page: Any, artifacts: Path, name: str) -> Path:
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def test_a_whole_simulated_session_from_the_browser(tmp_path: Path, spider: Scenario, browser_env: Any) -> None:
    env = browser_env
    from playwright.async_api import async_playwright

    store_path = tmp_path / "sessions.sqlite"

    async def scenario() -> None:
        async with ConsoleServer(store_path=store_path, port=0) as console, async_playwright() as pw:
            base = f"http://127.0.0.1:{console.port}"
            browser = await pw.chromium.launch(executable_path=env.executable, args=env.args)
            outside: list[str] = []
            errors: list[str] = []
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 1000})

                async def route(r: Any) -> None:
                    if r.request.url.startswith(base + "/"):
                        await r.continue_()
                    else:
                        outside.append(r.request.url)
                        await r.abort()

                await context.route("**/*", route)
                page = await context.new_page()
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))

                # --- setup: a name is refused, a code starts the session ---------------------
                await page.goto(console.url)
                assert page.url == base + "/setup"
                await page.wait_for_selector("#scenario option[value=spider]", state="attached")
                await page.fill("#patient", "Jane Doe")
                await page.click("#start")
                await page.wait_for_selector("#setup-error:not(.hidden)")
                assert "name" in await page.inner_text("#setup-error")
                assert console.session is None
                errors.clear()  # the browser logs the refused request (400) as an error: expected

                await page.fill("#patient", "P-0042")
                await page.select_option("#mode", "manual")
                await page.select_option("#sensor", "sim")
                await page.fill("#speed", "30")
                await page.fill("#seed", "7")
                await _shot(page, env.artifacts, "setup")
                await page.click("#start")
                await page.wait_for_url(base + "/live")
                live = console.session
                assert live is not None and live.patient == "P-0042"
                sid = live.runner.writer.session_id

                # --- the heart rate updates ------------------------------------------------------
                await page.wait_for_function("() => /^\\d+$/.test(document.getElementById('hr').textContent)")
                n1 = int(await page.get_attribute("#hr-chart", "data-points") or 0)
                t1 = await page.inner_text("#elapsed")
                await page.wait_for_function(
                    f"() => Number(document.getElementById('hr-chart').dataset.points) > {n1}"
                    f" && document.getElementById('elapsed').textContent !== {t1!r}"
                )
                assert (await page.inner_text("#patient")) == "P-0042"
                assert (await page.inner_text("#strap")) == "streaming"
                assert (await page.inner_text("#headset")).startswith("connected")

                # --- step up, then step down: the emulated headset follows -----------------------
                await page.wait_for_function("() => document.getElementById('phase').textContent === 'exposure'", timeout=60_000)
                emulator, runner = live.emulator, live.runner
                start = dict(spider.start)
                await _until("the start scene on the headset", lambda: emulator.state == start)
                await page.click("#btn-up")
                up = await _until("the headset to show a scene above the start", lambda: emulator.state != start and emulator.state)
                assert up == runner.snapshot.state  # what the controller commanded
                assert spider.intensity(up) > spider.intensity(start)
                changed = [p for p in spider.parameter_ids if up[p] != start[p]]
                assert len(changed) == 1  # one parameter, one step
                await page.click("#btn-down")
                down = await _until("the headset to step down", lambda: emulator.state != up and emulator.state)
                assert down == runner.snapshot.state
                assert spider.intensity(down) < spider.intensity(up)
                assert [a.source for a in emulator.applied].count("scene") >= 3  # start, up, down
                shown = spider.parameter(changed[0])
                await page.wait_for_function(
                    "([pid, text]) => { const td = document.querySelector(`#params tr[data-param='${pid}'] td.shown`);"
                    " return td !== null && td.textContent === text; }",
                    arg=[changed[0], shown.label(shown.index_of(down[changed[0]]))],
                )

                # --- SUDS and a note reach the store ---------------------------------------------
                await page.fill("#suds-input", "55")
                await page.click("#btn-suds")
                suds = await _until(
                    "the SUDS rating in the store",
                    lambda: _from_store(store_path, sid, lambda r: [(s.value, s.source) for s in r.suds]),
                )
                assert suds == [(55, "therapist")]
                await page.wait_for_function("() => document.getElementById('suds-last').textContent.includes('55')")
                await page.fill("#note-input", "patient looks away from the jar")
                await page.click("#btn-note")
                notes = await _until(
                    "the note in the store",
                    lambda: _from_store(store_path, sid, lambda r: [n.text for n in r.notes if "looks away" in n.text]),
                )
                assert notes == ["patient looks away from the jar"]
                commands = _from_store(store_path, sid, lambda r: [(c.who, c.command) for c in r.commands])
                assert ("therapist (console)", "step_up") in commands and ("therapist (console)", "step_down") in commands
                shot = await _shot(page, env.artifacts, "live")
                assert shot.stat().st_size > 30_000

                # --- end (two taps each), then the report ----------------------------------------
                await page.click("#btn-end")
                assert (await page.inner_text("#btn-end")) == "Tap again to end"
                await page.click("#btn-end")
                await page.wait_for_function(
                    "() => ['recovery', 'ended'].includes(document.getElementById('phase').textContent)"
                )
                if await page.inner_text("#phase") == "recovery":
                    await page.click("#btn-end")
                    await page.click("#btn-end")
                await page.wait_for_selector("#report-link:not(.hidden)", timeout=60_000)
                assert "therapist ended" in await page.inner_text("#ended-text")
                await _shot(page, env.artifacts, "ended")
                await page.click("#report-link")
                await page.wait_for_url(re.compile(rf".*/review/session/{sid}$"))
                assert (await page.title()).startswith(f"Session {sid} · patient P-0042")
                assert await page.locator("#fig-heart-rate svg").count() == 1
                await _shot(page, env.artifacts, "report")

                # --- review pages: patient list, the patient's sessions, progress ----------------
                await page.goto(base + "/review")
                await page.click("#patients >> text=P-0042")
                await page.wait_for_url(base + "/review/patient/P-0042")
                assert await page.locator(f'#sessions tr[data-session="{sid}"]').count() == 1
                await page.click("text=Progress across sessions")
                await page.wait_for_url(base + "/review/progress/P-0042")
                assert "P-0042" in await page.title()
                await _shot(page, env.artifacts, "progress")
                await context.close()
            finally:
                await browser.close()
            assert outside == []
            assert errors == []

    asyncio.run(scenario())


def test_advisory_proposals_and_alarms_in_the_browser(tmp_path: Path, spider: Scenario, browser_env: Any, helpers: Any) -> None:
    """A fake session in advisory mode with a pending proposal, then with the strap and headset
    lost: the page shows the proposal with its reason and sends Accept / Reject; the alarms are
    shown in red at the top; Safe scene is one tap."""
    env = browser_env
    from playwright.async_api import async_playwright

    from exposure_ctrl.session.commands import CommandKind

    async def scenario() -> None:
        async with ConsoleServer(store_path=tmp_path / "s.sqlite", port=0, push_interval_s=0.2) as console, async_playwright() as pw:
            live = helpers.FakeLive(spider)
            snap = helpers.in_exposure(live)
            snap.mode = "advisory"
            snap.last_policy_action = "size up (tiny → small)"
            snap.last_policy_reason = "arousal fell by half from its peak: next step"
            snap.pending_proposal = "size up (tiny → small): arousal fell by half from its peak: next step"
            console.attach(live)
            queue = live.runner.commands
            browser = await pw.chromium.launch(executable_path=env.executable, args=env.args)
            errors: list[str] = []
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1000})
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(console.url)
                await page.wait_for_selector("#proposal:not(.hidden)")
                assert "arousal fell by half" in await page.inner_text("#proposal-text")
                assert await page.inner_text("#paused") == "proposing"
                await page.click("#btn-accept")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.ACCEPT
                await page.click("#btn-reject")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.REJECT

                # pause toggles to resume; hold; one parameter one step; a poor baseline to confirm
                await page.click("#btn-pause")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.PAUSE
                snap.paused = True
                await page.wait_for_function("() => document.getElementById('btn-pause').textContent === 'Resume policy'")
                assert await page.inner_text("#paused") == "PAUSED"
                await page.click("#btn-pause")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.RESUME
                await page.click("#btn-hold")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.HOLD
                await page.click("#params tr[data-param='size'] button[data-cmd='step_up']")
                cmd = await asyncio.wait_for(queue.get(), 10)
                assert (cmd.kind, cmd.parameter) == (CommandKind.STEP_UP, "size")
                assert await page.is_hidden("#btn-confirm")
                snap.awaiting_baseline_confirmation = True
                await page.click("#btn-confirm")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.CONFIRM_BASELINE
                await page.fill("#suds-input", "101")
                await page.click("#btn-suds")
                assert await page.eval_on_selector("#suds-input", "e => e.validity.rangeOverflow")
                await asyncio.sleep(0.3)
                assert queue.empty()  # refused in the page, nothing sent

                snap.pending_proposal = ""
                snap.sensor_status, snap.headset_status = "disconnected", "LOST"
                snap.since_clean_s = 12.0
                snap.alarms = ["HEART RATE NOT SEEN for 12 s", "HEADSET LOST for 4 s"]
                await page.wait_for_selector("#proposal.hidden", state="attached")
                await page.wait_for_function("() => document.querySelectorAll('#alarms .alarm').length === 2")
                alarms = await page.locator("#alarms .alarm").all_inner_texts()
                assert alarms == ["⚠ HEART RATE NOT SEEN for 12 s", "⚠ HEADSET LOST for 4 s"]
                color = await page.eval_on_selector("#alarms .alarm", "e => getComputedStyle(e).backgroundColor")
                assert color == "rgb(179, 20, 27)"
                assert "bad" in (await page.get_attribute("#strap", "class") or "")
                assert "bad" in (await page.get_attribute("#headset", "class") or "")
                assert await page.inner_text("#quality") == "strap disconnected"
                await _shot(page, env.artifacts, "alarms")
                await page.click("#btn-safe")
                assert (await asyncio.wait_for(queue.get(), 10)).kind is CommandKind.SAFE
            finally:
                await browser.close()
            assert errors == []

    asyncio.run(scenario())
