"""The console server over real loopback HTTP (aiohttp client), with a fake session or none.

A fake session is a real runner :class:`Snapshot` and command queue without sockets; the whole
simulated session through a browser is in test_console_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exposure_ctrl.console.server import STATIC_FILES, ConsoleServer, session_options
from exposure_ctrl.errors import ConfigError, SensorUnavailable, SensorUnavailableReason
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.sensors.ble import FoundStrap
from exposure_ctrl.session.commands import CommandKind
from exposure_ctrl.store import Store
from exposure_ctrl.store.synthetic import write_synthetic_session

PAGES = ["/live", "/setup", "/review"]


@pytest.fixture(scope="module")
def review_store(tmp_path_factory: pytest.TempPathFactory, spider: Scenario) -> Path:
    path = tmp_path_factory.mktemp("review") / "sessions.sqlite"
    with Store.open(path) as s:
        write_synthetic_session(s, spider, patient="P-0001", seed=1)
        write_synthetic_session(s, spider, patient="P-0001", seed=2)
        write_synthetic_session(s, spider, patient="P-0002", seed=3)
    return path


async def _events(client: aiohttp.ClientSession, url: str) -> AsyncIterator[dict[str, Any]]:
    async with client.get(url) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        event = None
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                assert event == "state"
                yield json.loads(line[5:])


# --- access -------------------------------------------------------------------------------------


def test_every_path_needs_the_token_and_the_first_visit_sets_a_cookie(tmp_path: Path) -> None:
    async def body() -> None:
        async with ConsoleServer(store_path=tmp_path / "s.sqlite", port=0) as console:
            base = f"http://127.0.0.1:{console.port}"
            assert console.url == f"{base}/?token={console.access.token}"
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as c:
                for path in ["/", *PAGES, "/api/state", "/api/events", "/api/options", "/static/live.js",
                             "/review/session/1", "/nowhere"]:
                    async with c.get(base + path, allow_redirects=False) as r:
                        assert r.status == 403, path
                        assert "token" in await r.text()
                async with c.get(base + "/live?token=wrong-wrong-wrong-wrong", allow_redirects=False) as r:
                    assert r.status == 403
                async with c.post(base + "/api/command", json={"command": "safe"}, headers={"Origin": base}) as r:
                    assert r.status == 403
                async with c.get(f"{base}/live?token={console.access.token}&x=1", allow_redirects=False) as r:
                    assert r.status == 303 and r.headers["Location"] == "/live?x=1"  # token out of the address bar
                    cookie = r.headers["Set-Cookie"]
                    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and console.access.token in cookie
                async with c.get(base + "/live") as r:
                    assert r.status == 200
        # another console's token is not this one's
        async with ConsoleServer(store_path=tmp_path / "s.sqlite", port=0) as other:
            async with aiohttp.ClientSession() as c:
                async with c.get(f"http://127.0.0.1:{other.port}/live?token={console.access.token}") as r:
                    assert r.status == 403

    asyncio.run(body())


def test_a_foreign_host_name_is_refused(tmp_path: Path, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            base = f"http://127.0.0.1:{console.port}"
            async with c.get(base + "/live", headers={"Host": f"rebound.example:{console.port}"}) as r:
                assert r.status == 421
            async with c.get(base + "/live", headers={"Host": f"localhost:{console.port}"}) as r:
                assert r.status == 200

    asyncio.run(body())


def test_commands_from_another_site_are_refused(tmp_path: Path, spider: Scenario, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            live = helpers.FakeLive(spider)
            helpers.in_exposure(live)
            console.attach(live)
            url = f"http://127.0.0.1:{console.port}/api/command"
            cases = [
                ({}, "safe", 403),  # no Origin
                ({"Origin": "http://evil.example"}, "safe", 403),
                ({**helpers.origin(console), "Sec-Fetch-Site": "cross-site"}, "safe", 403),
            ]
            for headers, command, status in cases:
                async with c.post(url, json={"command": command}, headers=headers) as r:
                    assert r.status == status
            async with c.post(url, data="command=safe", headers={**helpers.origin(console),
                              "Content-Type": "application/x-www-form-urlencoded"}) as r:
                assert r.status == 415
            assert live.runner.commands.empty()

    asyncio.run(body())


# --- pages and static files ---------------------------------------------------------------------


def test_pages_and_scripts_are_served_by_the_console_alone(tmp_path: Path, review_store: Path, helpers: Any) -> None:
    """No CDN: every script, style and image a page names is under /static/ and served."""

    async def body() -> None:
        async with helpers.serving(review_store) as (console, c):
            base = f"http://127.0.0.1:{console.port}"
            named: set[str] = set()
            for path in PAGES:
                async with c.get(base + path) as r:
                    assert r.status == 200 and r.content_type == "text/html"
                    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
                    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"
                    html = await r.text()
                assert not re.search(r"(src|href)=\"(https?:)?//", html), path
                named |= set(re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html))
            assert named >= {"/static/console.css", "/static/live.js", "/static/chart.js", "/static/setup.js"}
            for name, ctype in STATIC_FILES.items():
                async with c.get(f"{base}/static/{name}") as r:
                    assert r.status == 200 and r.content_type == ctype
                    text = await r.text()
                assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name
                assert "innerHTML" not in text and "eval(" not in text, name
            for bad in ("../server.py", "nope.js", "%2e%2e%2fserver.py"):
                async with c.get(f"{base}/static/{bad}") as r:
                    assert r.status == 404, bad

    asyncio.run(body())


def test_the_root_leads_to_setup_or_to_the_running_session(tmp_path: Path, spider: Scenario, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            base = f"http://127.0.0.1:{console.port}"
            async with c.get(base + "/", allow_redirects=False) as r:
                assert r.headers["Location"] == "/setup"
            console.attach(helpers.FakeLive(spider))
            async with c.get(base + "/", allow_redirects=False) as r:
                assert r.headers["Location"] == "/live"

    asyncio.run(body())


# --- live state and commands --------------------------------------------------------------------


def test_state_without_a_session(tmp_path: Path, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            async with c.get(f"http://127.0.0.1:{console.port}/api/state") as r:
                assert await r.json() == {"running": False, "starting": False, "error": ""}

    asyncio.run(body())


def test_the_event_stream_pushes_state_and_only_new_heart_rate(tmp_path: Path, spider: Scenario, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite", push_interval_s=0.05) as (console, c):
            live = helpers.FakeLive(spider)
            snap = helpers.in_exposure(live)
            console.attach(live)
            stream = _events(c, f"http://127.0.0.1:{console.port}/api/events")
            first = await anext(stream)
            assert first["hr_reset"] and len(first["hr"]) == 200
            assert first["hr"][0] == [0.0, 70.0]  # session seconds: t - t_origin (100)
            assert first["session"]["patient"] == "P-0001" and first["session"]["phase"] == "exposure"
            snap.hr_history.append((300.5, 99.0))
            snap.phase = "recovery"
            seen = await anext(stream)
            while seen["session"]["phase"] != "recovery":
                assert seen["hr"] == [] and not seen["hr_reset"]
                seen = await anext(stream)
            assert seen["hr"] == [[200.5, 99.0]] and not seen["hr_reset"]
            nxt = await anext(stream)
            assert nxt["hr"] == []
            await stream.aclose()

    asyncio.run(body())


def test_commands_reach_the_runner_queue(tmp_path: Path, spider: Scenario, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            url = f"http://127.0.0.1:{console.port}/api/command"
            hdr = helpers.origin(console)
            async with c.post(url, json={"command": "pause"}, headers=hdr) as r:
                assert r.status == 409 and "no session" in (await r.json())["error"]
            live = helpers.FakeLive(spider)
            helpers.in_exposure(live)
            console.attach(live)
            sent = [
                {"command": "step_down"},
                {"command": "step_up", "parameter": "size"},
                {"command": "suds", "value": 55},
                {"command": "suds", "value": "40"},
                {"command": "note", "text": "looks away"},
                {"command": "safe"},
                {"command": "accept"},
                {"command": "resume"},
            ]
            for cmd in sent:
                async with c.post(url, json=cmd, headers=hdr) as r:
                    assert r.status == 202, await r.text()
            q = live.runner.commands
            got = [q.get_nowait() for _ in range(q.qsize())]
            assert [g.kind for g in got] == [CommandKind.STEP_DOWN, CommandKind.STEP_UP, CommandKind.SUDS,
                                              CommandKind.SUDS, CommandKind.NOTE, CommandKind.SAFE,
                                              CommandKind.ACCEPT, CommandKind.RESUME]
            assert {g.who for g in got} == {"therapist (console)"}
            assert got[1].parameter == "size" and got[2].value == 55 and got[3].value == 40
            assert got[4].text == "looks away"
            refused = [
                ({"command": "suds", "value": 101}, "0 to 100"),
                ({"command": "suds", "value": 50.5}, "0 to 100"),
                ({"command": "suds"}, "0 to 100"),
                ({"command": "note", "text": "  "}, "some text"),
                ({"command": "launch"}, "unknown command"),
                ({"command": "step_up", "parameter": "tarantula"}, "no parameter"),
            ]
            for cmd, why in refused:
                async with c.post(url, json=cmd, headers=hdr) as r:
                    assert r.status == 400 and why in (await r.json())["error"], cmd
            async with c.post(url, data=b"[1, 2", headers={**hdr, "Content-Type": "application/json"}) as r:
                assert r.status == 400
            assert q.empty()
            live.runner.snapshot.phase = "ended"
            async with c.post(url, json={"command": "safe"}, headers=hdr) as r:
                assert r.status == 409

    asyncio.run(body())


# --- setup --------------------------------------------------------------------------------------


def test_options_list_scenarios_modes_sensors_policies(tmp_path: Path, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            async with c.get(f"http://127.0.0.1:{console.port}/api/options") as r:
                o = await r.json()
        assert {"spider", "heights", "public_speaking"} <= {s["id"] for s in o["scenarios"]}
        assert [m["id"] for m in o["modes"]] == ["autonomous", "advisory", "manual"]
        assert {"sim", "ble", "replay"} <= {s["id"] for s in o["sensors"]}
        assert {"habituation", "band-pi"} <= {p["id"] for p in o["policies"]}
        assert [h["id"] for h in o["headsets"]] == ["emulator", "listen"]

    asyncio.run(body())


def test_setup_form_to_run_options(tmp_path: Path) -> None:
    o = session_options({"patient": "P-0042", "scenario": "heights", "mode": "advisory", "sensor": "sim",
                         "speed": "30", "seed": "7", "duration_min": "2", "baseline_s": "120", "policy": ""},
                        tmp_path / "s.sqlite")
    assert (o.patient, o.scenario, o.mode, o.sensor, o.speed, o.seed) == ("P-0042", "heights", "advisory", "sim", 30.0, 7)
    assert (o.duration_s, o.baseline_s, o.policy, o.store, o.interactive) == (120.0, 120.0, None, tmp_path / "s.sqlite", True)
    ble = session_options({"patient": "P-1", "sensor": "ble", "device": "AA:BB:CC:DD:EE:FF", "speed": "9"}, tmp_path)
    assert ble.sensor == "ble:AA:BB:CC:DD:EE:FF" and ble.speed is None  # a real strap runs in real time
    assert session_options({"patient": "P-1", "sensor": "replay", "replay": "/r/x.jsonl"}, tmp_path).sensor == "replay:/r/x.jsonl"
    listen = session_options({"patient": "P-1", "headset": "listen"}, tmp_path)
    assert listen.bind == "tcp://127.0.0.1:5556"
    for form, why in [
        ({}, "patient code"),
        ({"patient": "P-1", "mode": "chaos"}, "mode is one of"),
        ({"patient": "P-1", "headset": "hologram"}, "headset is one of"),
        ({"patient": "P-1", "speed": "fast"}, "must be a number"),
        ({"patient": "P-1", "speed": "-2"}, "positive"),
        ({"patient": "P-1", "seed": "1.5"}, "whole number"),
        ({"patient": "P-1", "sensor": "replay"}, "recording"),
        ({"patient": 42}, "must be text"),
    ]:
        with pytest.raises(ConfigError, match=why):
            session_options(form, tmp_path)


def test_start_refuses_names_and_a_second_session(tmp_path: Path, spider: Scenario, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite") as (console, c):
            url = f"http://127.0.0.1:{console.port}/api/start"
            hdr = helpers.origin(console)
            for name in ("Jane Doe", "JaneDoe", "Jane_Doe"):
                async with c.post(url, json={"patient": name}, headers=hdr) as r:
                    assert r.status == 400 and "name" in (await r.json())["error"]
            async with c.post(url, json={"patient": "P-1", "scenario": "spidr"}, headers=hdr) as r:
                assert r.status == 400 and "did you mean 'spider'" in (await r.json())["error"]
            assert console.session is None and not (tmp_path / "s.sqlite").exists()
            console.attach(helpers.FakeLive(spider))
            async with c.post(url, json={"patient": "P-1"}, headers=hdr) as r:
                assert r.status == 409 and "already running" in (await r.json())["error"]

    asyncio.run(body())


def test_strap_scan_reports_straps_or_why_not(tmp_path: Path, helpers: Any) -> None:
    found = [FoundStrap("Polar H10 1234", "AA:BB:CC:DD:EE:01", -60, True), FoundStrap(None, "AA:BB:CC:DD:EE:02", -80, False)]
    answers: list[Any] = [found, SensorUnavailable("Bluetooth is not available on this machine", SensorUnavailableReason.NO_BLUETOOTH)]

    async def scan() -> list[Any]:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    async def body() -> None:
        async with helpers.serving(tmp_path / "s.sqlite", scan=scan) as (console, c):
            url = f"http://127.0.0.1:{console.port}/api/scan"
            async with c.post(url, json={}, headers=helpers.origin(console)) as r:
                assert r.status == 200
                assert (await r.json())["straps"] == [
                    {"name": "Polar H10 1234", "address": "AA:BB:CC:DD:EE:01", "rssi": -60, "heart_rate": True},
                    {"name": None, "address": "AA:BB:CC:DD:EE:02", "rssi": -80, "heart_rate": False},
                ]
            async with c.post(url, json={}, headers=helpers.origin(console)) as r:
                j = await r.json()
                assert r.status == 503 and "Bluetooth is not available" in j["error"] and j["straps"] == []

    asyncio.run(body())


# --- review -------------------------------------------------------------------------------------


def test_review_pages(review_store: Path, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(review_store) as (console, c):
            base = f"http://127.0.0.1:{console.port}"

            async def get(path: str, status: int = 200) -> str:
                async with c.get(base + path) as r:
                    assert r.status == status, path
                    return await r.text()

            index = await get("/review")
            assert re.findall(r'href="/review/patient/([^"]+)"', index) == ["P-0001", "P-0002"]
            patient = await get("/review/patient/P-0001")
            assert re.findall(r'data-session="(\d+)"', patient) == ["1", "2"]
            assert 'href="/review/session/1"' in patient and 'href="/review/progress/P-0001"' in patient
            report = await get("/review/session/2")
            assert "<title>Session 2 · patient P-0001" in report and 'id="fig-heart-rate"' in report
            assert 'class="console-nav"' in report and 'href="/review/patient/P-0001"' in report
            progress = await get("/review/progress/P-0001")
            assert "P-0001" in progress and "console-nav" in progress
            assert "No such session" in await get("/review/session/99", 404)
            assert "Not a patient code" in await get("/review/patient/Jane%20Doe", 404)
            assert "Unknown patient" in await get("/review/patient/P-0099", 404)
            assert "Unknown patient" in await get("/review/progress/P-0099", 404)
            await get("/review/session/..%2Fetc", 404)

    asyncio.run(body())


def test_review_without_a_store_says_so(tmp_path: Path, helpers: Any) -> None:
    async def body() -> None:
        async with helpers.serving(tmp_path / "none.sqlite") as (console, c):
            async with c.get(f"http://127.0.0.1:{console.port}/review/session/1") as r:
                assert "No sessions yet" in await r.text()
        assert not (tmp_path / "none.sqlite").exists()  # reviewing never creates a store

    asyncio.run(body())


# --- lifecycle ----------------------------------------------------------------------------------


def test_a_taken_port_is_a_clear_error_or_falls_back(tmp_path: Path) -> None:
    async def body() -> None:
        async with ConsoleServer(store_path=tmp_path / "s.sqlite", port=0) as first:
            with pytest.raises(ConfigError, match=f"port {first.port} on 127.0.0.1 is taken"):
                async with ConsoleServer(store_path=tmp_path / "s.sqlite", port=first.port):
                    pass
            async with ConsoleServer(store_path=tmp_path / "s.sqlite", port=first.port, any_free_port=True) as second:
                assert second.port not in (0, first.port)
        with pytest.raises(ConfigError, match="at least once a second"):
            ConsoleServer(push_interval_s=2.0)

    asyncio.run(body())


def test_stopping_the_console_ends_and_records_the_session_it_started(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"

    async def body() -> int:
        console = ConsoleServer(store_path=store, port=0)
        await console.start()
        try:
            opts = session_options({"patient": "P-0007", "sensor": "sim", "speed": "60", "seed": "3"}, store)
            live = await console.start_session(opts)
            assert console.running and live.runner is not None
            with pytest.raises(ConfigError, match="already running"):
                await console.start_session(opts)
            await asyncio.sleep(0.5)
        finally:
            await console.close()
            await console.close()  # twice is fine
        assert not console.running
        return live.runner.writer.session_id

    sid = asyncio.run(body())
    with Store.open(store, create=False) as s:
        info = s.session_info(sid)
    assert info.patient == "P-0007" and info.outcome == "therapist_ended"
    assert info.end_reason == "ended by the console (stopped)"
