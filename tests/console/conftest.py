"""Fixtures of the console tests: a fake session (a real runner snapshot and command queue, no
sockets), a server on a random loopback port, a client that keeps the console's cookie, and the
headless-Chromium rule (skip locally without a browser, fail in CI).

pytest runs with ``--import-mode=importlib``, so test modules cannot import a helper module: the
helpers are handed out by fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exposure_ctrl.console import ConsoleServer
from exposure_ctrl.scenario import Scenario, resolve_scenario
from exposure_ctrl.session.runner import Snapshot

CHROMIUM = os.environ.get("EXPOSURE_CTRL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def need_browser() -> None:
    """Skip (locally) or fail (in CI) when headless Chromium or Playwright is missing."""
    problems = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)


class FakeWriter:
    def __init__(self, session_id: int, t_origin: float) -> None:
        self.session_id = session_id
        self.t_origin = t_origin


class FakeRunner:
    """What the console reads of a :class:`SessionRunner`: a real :class:`Snapshot`, the command
    queue, the writer's session id and time origin."""

    def __init__(self, session_id: int = 7, t_origin: float = 100.0) -> None:
        self.snapshot = Snapshot()
        self.commands: asyncio.Queue[Any] = asyncio.Queue()
        self.writer = FakeWriter(session_id, t_origin)
        self.end_requests: list[tuple[Any, str]] = []

    def request_end(self, outcome: Any, reason: str) -> None:
        self.end_requests.append((outcome, reason))


class FakeLive:
    """What the console reads of a :class:`LiveSession`."""

    def __init__(self, scenario: Scenario, store_path: Path | None = None, patient: str = "P-0001") -> None:
        self.runner: FakeRunner | None = FakeRunner()
        self.scenario = scenario
        self.patient = patient
        self.result: Any = None
        self.store_path = store_path
        self.report_path: Path | None = None


def in_exposure(live: FakeLive) -> Snapshot:
    """Put the fake session in its exposure phase with some heart rate."""
    assert live.runner is not None
    snap = live.runner.snapshot
    sc = live.scenario
    snap.phase = "exposure"
    snap.phase_started_t = 280.0
    snap.t = 300.0
    snap.baseline_bpm = 70.0
    snap.hr_bpm, snap.hr_above_bpm, snap.rmssd_ms, snap.since_clean_s = 90.0, 20.0, 31.5, 0.4
    snap.sensor_status, snap.headset_status = "streaming", "connected (reference-emulator)"
    snap.state = dict(sc.start)
    snap.shown_state = dict(sc.start)
    for i in range(200):
        snap.hr_history.append((100.0 + i, 70.0 + (i % 20)))
    return snap


@contextlib.asynccontextmanager
async def serving(store_path: Path, **kw: Any) -> AsyncIterator[tuple[ConsoleServer, aiohttp.ClientSession]]:
    """A console on 127.0.0.1 (random port) and a client holding its cookie."""
    kw.setdefault("port", 0)
    async with ConsoleServer(store_path=store_path, **kw) as console:
        jar = aiohttp.CookieJar(unsafe=True)  # browsers keep cookies of IP hosts; aiohttp needs asking
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            async with client.get(console.url, allow_redirects=False) as r:
                assert r.status == 303
            yield console, client


def origin(console: ConsoleServer) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{console.port}"}


class BrowserEnv:
    """Where Chromium is, how to launch it, where screenshots go."""

    executable = CHROMIUM
    args = CHROMIUM_ARGS
    artifacts = ARTIFACTS


class Helpers:
    """The helpers above, for test modules (see the module docstring)."""

    FakeLive = FakeLive
    in_exposure = staticmethod(in_exposure)
    serving = staticmethod(serving)
    origin = staticmethod(origin)


@pytest.fixture(scope="session")
def spider() -> Scenario:
    return resolve_scenario("spider")


@pytest.fixture
def browser_env() -> type[BrowserEnv]:
    need_browser()
    return BrowserEnv


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
