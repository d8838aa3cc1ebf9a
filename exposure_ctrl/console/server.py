"""The console's web server (aiohttp), running inside the session's asyncio loop.

:class:`ConsoleServer` serves

- ``/live``: the live view, fed by server-sent events from ``/api/events`` (a push every
  ``push_interval_s``, 0.5 s by default, and right after each command);
- ``/setup``: choose patient code, scenario, mode, policy, heart-rate sensor (with a strap scan)
  and headset, then start a session (``POST /api/start``), which then runs on this loop;
- ``/review``: patients, their sessions, each session's report and progress across sessions
  (:mod:`exposure_ctrl.report`, rendered in a worker thread so a running session never waits);
- ``POST /api/command``: a therapist command, put on the runner's command queue at once;
- ``/static/…``: the page's own script, style and icon. Nothing is fetched from elsewhere.

Every request passes :class:`~exposure_ctrl.console.access.AccessPolicy` (token, Host,
same-origin for commands). The server holds at most one session: either one it was given by
``exposure-ctrl run`` (:meth:`ConsoleServer.attach`) or one started from the setup page.

Views never block the loop: a push reads the runner's snapshot and serialises a few kilobytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import math
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from exposure_ctrl.console.access import TOKEN_COOKIE, TOKEN_PARAM, AccessPolicy
from exposure_ctrl.console.pages import (
    PatientRow,
    render_live,
    render_message,
    render_patient,
    render_review_index,
    render_setup,
    with_console_nav,
)
from exposure_ctrl.clock import utc_now
from exposure_ctrl.console.state import hr_points, live_state
from exposure_ctrl.errors import ConfigError, ExposureCtrlError, SensorUnavailable, StoreError

__all__ = ["ConsoleServer", "DEFAULT_PORT", "STATIC_FILES", "session_options"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765

STATIC_FILES = {
    "console.css": "text/css",
    "live.js": "text/javascript",
    "setup.js": "text/javascript",
    "chart.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}
"""Everything under ``/static/``: served from the package, never from the network."""

_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

MODES = {
    "autonomous": "the policy adjusts the scene; you may override at any time",
    "advisory": "the policy proposes each change; you accept or reject it",
    "manual": "you drive the scene; the policy only suggests",
}
HEADSETS = {
    "emulator": "the built-in reference headset (no VR hardware; for demonstrations and tests)",
    "listen": "wait for the Unity headset (or any PROTOCOL.md client) on an address",
}
SENSOR_LABELS = {
    "sim": "simulated patient (demonstration; no hardware)",
    "ble": "Bluetooth chest strap",
    "virtual-ble": "virtual strap over simulated Bluetooth (testing)",
    "replay": "replay a recording",
}
SCAN_S = 4.0
STOPPED_BY = "the console (stopped)"


ScanFn = Callable[[], Awaitable[list[Any]]]


async def _scan_bluetooth() -> list[Any]:
    from exposure_ctrl.sensors.ble import scan_heart_rate_straps

    return await scan_heart_rate_straps(SCAN_S)


def _float(body: dict[str, Any], key: str, what: str, *, positive: bool = True) -> float | None:
    v = body.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, found {v!r}") from None
    if not math.isfinite(f) or (positive and f <= 0):
        raise ConfigError(f"{what} must be a positive number, found {v!r}")
    return f


def _text(body: dict[str, Any], key: str) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ConfigError(f"{key} must be text, found {v!r}")
    v = v.strip()
    return v or None


def session_options(body: dict[str, Any], store: Path) -> Any:
    """The :class:`~exposure_ctrl.session.live.RunOptions` of a setup form (``ConfigError`` on
    a wrong field; the patient code and the rest are checked again by ``LiveSession``)."""
    from exposure_ctrl.session.live import RunOptions

    if not isinstance(body, dict):
        raise ConfigError("the setup form must be a JSON object")
    patient = _text(body, "patient")
    if patient is None:
        raise ConfigError("enter a patient code (a pseudonym such as P-0042, never a name)")
    scenario = _text(body, "scenario") or "spider"
    mode = _text(body, "mode") or "autonomous"
    if mode not in MODES:
        raise ConfigError(f"mode is one of {', '.join(MODES)}, found {mode!r}")
    sensor = _text(body, "sensor") or "sim"
    if sensor == "ble":
        device = _text(body, "device")
        sensor = f"ble:{device}" if device else "ble"
    elif sensor == "replay":
        path = _text(body, "replay")
        if path is None:
            raise ConfigError("a replayed heart rate needs the recording's file")
        sensor = f"replay:{Path(path).expanduser()}"
    headset = _text(body, "headset") or "emulator"
    if headset not in HEADSETS:
        raise ConfigError(f"headset is one of {', '.join(HEADSETS)}, found {headset!r}")
    bind = _text(body, "bind")
    if headset == "listen" and bind is None:
        bind = "tcp://127.0.0.1:5556"
    keys = _text(body, "keys")
    seed_f = _float(body, "seed", "the seed", positive=False)
    if seed_f is not None and (seed_f != int(seed_f) or seed_f < 0):
        raise ConfigError(f"the seed is a whole number ≥ 0, found {body.get('seed')!r}")
    duration_min = _float(body, "duration_min", "the exposure duration")
    simulated = sensor.split(":", 1)[0] in ("sim", "replay")
    speed = _float(body, "speed", "the clock speed") if simulated else None
    return RunOptions(
        scenario=scenario,
        patient=patient,
        policy=_text(body, "policy"),
        mode=mode,
        sensor=sensor,
        headset=headset,
        bind=bind if headset == "listen" else None,
        curve_dir=Path(keys).expanduser() if keys else None,
        speed=speed,
        seed=None if seed_f is None else int(seed_f),
        duration_s=None if duration_min is None else duration_min * 60.0,
        baseline_s=_float(body, "baseline_s", "the baseline duration"),
        store=store,
        report=True,
        interactive=True,  # the therapist is at the console: a poor baseline waits for them
    )


@dataclasses.dataclass
class _Hosted:
    """The session the console shows, and what the console knows about it."""

    live: Any  # LiveSession (or anything with .runner, .scenario, .patient, .result)
    task: asyncio.Task[Any] | None = None  # set when the console started it
    error: str = ""

    @property
    def runner(self) -> Any:
        return getattr(self.live, "runner", None)

    @property
    def finished(self) -> bool:
        if self.task is not None:
            return self.task.done()
        return getattr(self.live, "result", None) is not None


class ConsoleServer:
    """The therapist console; ``async with ConsoleServer(...) as console: print(console.url)``.

    ``bind``/``port``: where to listen (``port=0``: any free port; ``any_free_port``: fall
    back to one when ``port`` is taken). ``store_path``: the session store reviewed, and the one
    sessions started from the setup page write to. ``scan``: the strap scan (default: Bluetooth
    through bleak; tests pass a fake). ``push_interval_s``: how often the live view is updated.
    """

    def __init__(
        self,
        *,
        store_path: Path | str | None = None,
        bind: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        any_free_port: bool = False,
        token: str | None = None,
        scan: ScanFn | None = None,
        push_interval_s: float = 0.5,
        allow_start: bool = True,
    ) -> None:
        from exposure_ctrl.store import default_store_path

        if not 0 <= int(port) < 65536:
            raise ConfigError(f"the console port is 0..65535 (0: any free port), found {port}")
        if not 0 < push_interval_s <= 1.0:
            raise ConfigError(f"the live view must update at least once a second, found {push_interval_s} s")
        self.store_path = Path(store_path).expanduser() if store_path else default_store_path()
        self.bind = bind
        self._port = int(port)
        self._any_free_port = any_free_port
        self._token = token
        self._scan = scan or _scan_bluetooth
        self.push_interval_s = float(push_interval_s)
        self.allow_start = allow_start
        self.access: AccessPolicy | None = None
        self._runner: web.AppRunner | None = None
        self._hosted: _Hosted | None = None
        self._streams: set[asyncio.Event] = set()
        self._closing = asyncio.Event()
        self._starting = False
        self._scenario_cache: list[dict[str, Any]] | None = None
        self._static = {name: self._load_static(name) for name in STATIC_FILES}

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> "ConsoleServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the console is already started")
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.add_routes(
            [
                web.get("/", self._index),
                web.get("/live", self._live_page),
                web.get("/setup", self._setup_page),
                web.get("/review", self._review_index),
                web.get("/review/patient/{code}", self._review_patient),
                web.get("/review/session/{sid}", self._review_session),
                web.get("/review/progress/{code}", self._review_progress),
                web.get("/static/{name}", self._static_file),
                web.get("/api/state", self._api_state),
                web.get("/api/events", self._api_events),
                web.get("/api/options", self._api_options),
                web.post("/api/command", self._api_command),
                web.post("/api/start", self._api_start),
                web.post("/api/scan", self._api_scan),
            ]
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, handle_signals=False)
        await runner.setup()
        try:
            port = await self._listen(runner, self._port)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.access = AccessPolicy(self.bind, port, **({"token": self._token} if self._token else {}))
        log.info("console listening on %s:%d", self.bind, port)

    async def _listen(self, runner: web.AppRunner, port: int) -> int:
        try:
            site = web.TCPSite(runner, self.bind, port, reuse_address=True)
            await site.start()
        except OSError as e:
            if e.errno == errno.EADDRINUSE and self._any_free_port and port != 0:
                log.info("console port %d is taken; using a free one", port)
                return await self._listen(runner, 0)
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"the console port {port} on {self.bind} is taken; choose another with "
                    "--console-port/--port (0: any free port)"
                ) from None
            raise ConfigError(f"the console cannot listen on {self.bind}:{port}: {e.strerror or e}") from None
        return int(runner.addresses[-1][1])

    async def close(self) -> None:
        """Stop a session the console started (recording its end), then stop serving. Safe to
        call twice."""
        self._closing.set()
        for ev in list(self._streams):
            ev.set()
        hosted = self._hosted
        if hosted is not None and hosted.task is not None and not hosted.task.done():
            from exposure_ctrl.session.commands import CommandKind, TherapistCommand

            runner = hosted.runner
            if runner is not None:
                # As if the therapist pressed End twice: exposure → recovery → ended, recorded
                # with who asked (the second End is ignored if the first one already ended it).
                for _ in range(2):
                    runner.commands.put_nowait(TherapistCommand(CommandKind.END, who=STOPPED_BY))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(hosted.task), 10.0)
            if not hosted.task.done():
                hosted.task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await hosted.task
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def port(self) -> int:
        if self.access is None:
            raise RuntimeError("the console is not started")
        return self.access.port

    @property
    def url(self) -> str:
        """The URL to open, with the access token."""
        if self.access is None:
            raise RuntimeError("the console is not started")
        return self.access.url("/")

    # --- sessions ------------------------------------------------------------------------------

    def attach(self, live: Any) -> None:
        """Show ``live`` (a :class:`~exposure_ctrl.session.live.LiveSession` run by someone
        else, e.g. ``exposure-ctrl run``); its runner is picked up as soon as it exists."""
        self._hosted = _Hosted(live)
        self.kick()

    @property
    def session(self) -> Any:
        """The live session shown (running or finished), or None."""
        return None if self._hosted is None else self._hosted.live

    @property
    def running(self) -> bool:
        return self._starting or (self._hosted is not None and not self._hosted.finished)

    async def start_session(self, opts: Any) -> Any:
        """Start a session from :class:`~exposure_ctrl.session.live.RunOptions` on this loop;
        returns the :class:`~exposure_ctrl.session.live.LiveSession` once its runner exists."""
        from exposure_ctrl.session.live import LiveSession

        if not self.allow_start:
            raise ConfigError("this console only shows the session it was started with")
        if self.running:
            raise ConfigError("a session is already running: end it before starting another")
        self._starting = True
        try:
            # Loading a learned policy can take a moment: not on the loop.
            live = await asyncio.to_thread(LiveSession, opts)
            ready = asyncio.Event()

            def on_start(_: Any) -> None:
                ready.set()

            hosted = _Hosted(live)
            hosted.task = asyncio.create_task(self._run_hosted(hosted, on_start), name="console-session")
            self._hosted = hosted
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait([waiter, hosted.task], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if hosted.task.done() and not ready.is_set():
                exc = hosted.task.exception()
                if exc is not None:
                    raise exc
            self.kick()
            return live
        finally:
            self._starting = False

    async def _run_hosted(self, hosted: _Hosted, on_start: Callable[[Any], None]) -> Any:
        try:
            return await hosted.live.run(on_start=on_start)
        except ExposureCtrlError as e:
            hosted.error = str(e)
            raise
        except Exception as e:
            hosted.error = f"the session stopped on an error: {e}"
            log.exception("session started from the console failed")
            raise
        finally:
            self.kick()

    def kick(self) -> None:
        """Push the live view now (after a command or a change of session)."""
        for ev in list(self._streams):
            ev.set()

    # --- middleware ----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        access = self.access
        if access is None:  # pragma: no cover - requests arrive only after start()
            raise web.HTTPServiceUnavailable()
        query_token = request.query.get(TOKEN_PARAM)
        denied = access.check(
            method=request.method,
            headers=request.headers,
            query_token=query_token,
            cookie_token=request.cookies.get(self._cookie_name),
        )
        if denied is not None:
            log.info("console refused %s %s: %s", request.method, request.path, denied.reason)
            resp: web.StreamResponse = web.Response(status=denied.status, text=denied.reason + "\n")
            resp.headers.update(_COMMON_HEADERS)
            return resp
        if query_token is not None and request.method == "GET":
            # First visit: keep the token in a cookie and drop it from the address bar.
            query = {k: v for k, v in request.query.items() if k != TOKEN_PARAM}
            location = "/" + request.rel_url.with_query(query or None).path_qs.lstrip("/")
            resp = web.Response(status=303, headers={"Location": location})
            resp.set_cookie(self._cookie_name, access.token, httponly=True, samesite="Strict", path="/")
            resp.headers.update(_COMMON_HEADERS)
            return resp
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            e.headers.update(_COMMON_HEADERS)
            raise
        if not resp.prepared:
            resp.headers.update(_COMMON_HEADERS)
        return resp

    @property
    def _cookie_name(self) -> str:
        return f"{TOKEN_COOKIE}_{self.port}"

    # --- pages ---------------------------------------------------------------------------------

    @staticmethod
    def _html(text: str, status: int = 200, csp: bool = True) -> web.Response:
        resp = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
        if csp:
            resp.headers["Content-Security-Policy"] = _PAGE_CSP
        return resp

    async def _index(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/live" if self._hosted is not None else "/setup")

    async def _live_page(self, request: web.Request) -> web.StreamResponse:
        return self._html(render_live())

    async def _setup_page(self, request: web.Request) -> web.StreamResponse:
        return self._html(render_setup())

    def _load_static(self, name: str) -> bytes:
        return resources.files("exposure_ctrl.console").joinpath("static", name).read_bytes()

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound(text="no such file\n")
        return web.Response(body=self._static[name], content_type=STATIC_FILES[name], charset="utf-8")

    # --- review --------------------------------------------------------------------------------

    async def _in_store(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(store)`` in a worker thread with its own read connection."""
        from exposure_ctrl.store import Store

        def work() -> Any:
            with Store.open(self.store_path, create=False) as store:
                return fn(store)

        return await asyncio.to_thread(work)

    def _no_store(self) -> web.Response:
        return self._html(
            render_message(
                "No sessions yet", f"There is no session store at {self.store_path} yet.",
                active="review", link=("/setup", "Start a session"),
            )
        )

    async def _review_index(self, request: web.Request) -> web.StreamResponse:
        def rows(store: Any) -> list[PatientRow]:
            out = []
            by: dict[str, list[Any]] = {}
            for s in store.list_sessions():
                by.setdefault(s.patient, []).append(s)
            for code in sorted(by):
                ss = by[code]
                out.append(PatientRow(code, len(ss), ss[-1].started_at, ss[-1].outcome))
            return out

        if not self.store_path.exists():
            return self._no_store()
        return self._html(render_review_index(await self._in_store(rows), str(self.store_path)))

    async def _review_patient(self, request: web.Request) -> web.StreamResponse:
        from exposure_ctrl.store import validate_patient_code

        code = request.match_info["code"]
        try:
            validate_patient_code(code)
        except ConfigError as e:
            return self._html(render_message("Not a patient code", str(e), active="review"), status=404)
        if not self.store_path.exists():
            return self._no_store()
        sessions = await self._in_store(lambda st: st.list_sessions(patient=code))
        if not sessions:
            return self._html(
                render_message("Unknown patient", f"No sessions of patient {code} in this store.", active="review",
                               link=("/review", "All patients")),
                status=404,
            )
        return self._html(render_patient(code, sessions))

    async def _review_session(self, request: web.Request) -> web.StreamResponse:
        from exposure_ctrl.report import build_review, render_review

        text = request.match_info["sid"]
        if not text.isdigit():
            raise web.HTTPNotFound(text="no such session\n")
        if not self.store_path.exists():
            return self._no_store()
        sid = int(text)

        def render(store: Any) -> tuple[str, str]:
            inp = build_review(store, store.resolve_session(sid))
            return render_review(inp), inp.record.info.patient

        try:
            html, patient = await self._in_store(render)
        except ConfigError as e:
            return self._html(render_message("No such session", str(e), active="review", link=("/review", "All patients")), status=404)
        except StoreError as e:
            return self._html(render_message("Cannot show this session", str(e), active="review"), status=500)
        # The report is self-contained and carries its own Content-Security-Policy.
        links = [(f"/review/patient/{quote(patient, safe='')}", f"← sessions of {patient}"), ("/review", "all patients"),
                 ("/live", "live session")]
        return self._html(with_console_nav(html, links), csp=False)

    async def _review_progress(self, request: web.Request) -> web.StreamResponse:
        from exposure_ctrl.report import progress_rows, render_progress
        from exposure_ctrl.store import validate_patient_code

        code = request.match_info["code"]
        try:
            validate_patient_code(code)
        except ConfigError as e:
            return self._html(render_message("Not a patient code", str(e), active="review"), status=404)
        if not self.store_path.exists():
            return self._no_store()

        def render(store: Any) -> str | None:
            rows, sc = progress_rows(store, code)
            return render_progress(code, rows, sc, utc_now()) if rows else None

        html = await self._in_store(render)
        if html is None:
            return self._html(render_message("Unknown patient", f"No sessions of patient {code} in this store.", active="review"), status=404)
        links = [(f"/review/patient/{quote(code, safe='')}", f"← sessions of {code}"), ("/review", "all patients")]
        return self._html(with_console_nav(html, links), csp=False)

    # --- API: live -----------------------------------------------------------------------------

    def _state(self, hr_after: float | None) -> tuple[dict[str, Any], float | None]:
        """The live state (see :func:`~exposure_ctrl.console.state.live_state`) and the time of
        the newest heart-rate point sent."""
        hosted = self._hosted
        base: dict[str, Any] = {"running": self.running, "starting": self._starting, "error": ""}
        if hosted is None:
            return base, hr_after
        base["error"] = hosted.error
        runner = hosted.runner
        if runner is None:
            base["starting"] = base["starting"] or not hosted.finished
            return base, hr_after
        live = hosted.live
        snap = runner.snapshot
        t0 = float(runner.writer.t_origin)
        state = live_state(
            snap,
            live.scenario,
            patient=live.patient,
            session_id=runner.writer.session_id,
            t0=t0,
            suds_history=[(t - t0, v, src) for t, v, src in getattr(snap, "suds_history", ())],
        )
        now = snap.hr_history[-1][0] if snap.hr_history else snap.t
        points = hr_points(snap.hr_history, after_t=hr_after, now_t=now, origin=t0)
        base.update(state)
        base["hr"] = points
        base["hr_reset"] = hr_after is None
        result = getattr(live, "result", None)
        base["session"]["finished"] = hosted.finished
        base["session"]["report_url"] = (
            f"/review/session/{runner.writer.session_id}" if result is not None and self._serves_reports(live) else None
        )
        report_path = getattr(live, "report_path", None)
        base["session"]["report_path"] = str(report_path) if report_path else None
        last = hr_after
        if snap.hr_history:
            last = max(hr_after if hr_after is not None else -math.inf, snap.hr_history[-1][0])
        return base, last

    def _serves_reports(self, live: Any) -> bool:
        store = getattr(live, "store_path", None)
        return store is not None and Path(store).resolve() == self.store_path.resolve()

    async def _api_state(self, request: web.Request) -> web.StreamResponse:
        state, _ = self._state(None)
        return web.json_response(state)

    async def _api_events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **_COMMON_HEADERS})
        await resp.prepare(request)
        wake = asyncio.Event()
        self._streams.add(wake)
        hr_after: float | None = None
        shown: int | None = None  # id of the hosted session last sent, to reset the chart
        try:
            while not self._closing.is_set():
                hosted_id = id(self._hosted.live) if self._hosted is not None and self._hosted.runner is not None else None
                if hosted_id != shown:
                    hr_after, shown = None, hosted_id
                state, hr_after = self._state(hr_after)
                data = json.dumps(state, separators=(",", ":"), allow_nan=False)
                await resp.write(f"event: state\ndata: {data}\n\n".encode())
                wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.push_interval_s)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._streams.discard(wake)
        return resp

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="the body is not valid JSON\n") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object\n")
        return body

    async def _api_command(self, request: web.Request) -> web.StreamResponse:
        from exposure_ctrl.session.commands import CommandKind, TherapistCommand

        body = await self._json_body(request)
        hosted = self._hosted
        runner = hosted.runner if hosted is not None else None
        if runner is None or hosted is None or hosted.finished or runner.snapshot.phase == "ended":
            return web.json_response({"error": "no session is running"}, status=409)
        try:
            kind = CommandKind(str(body.get("command", "")))
        except ValueError:
            names = ", ".join(k.value for k in CommandKind)
            return web.json_response({"error": f"unknown command {body.get('command')!r}; one of {names}"}, status=400)
        value = body.get("value")
        if kind is CommandKind.SUDS:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
        parameter = body.get("parameter") or None
        if parameter is not None and (not isinstance(parameter, str) or parameter not in hosted.live.scenario.parameter_ids):
            return web.json_response({"error": f"no parameter {parameter!r} in this scenario"}, status=400)
        text = body.get("text")
        try:
            cmd = TherapistCommand(
                kind,
                who="therapist (console)",
                parameter=parameter if kind in (CommandKind.STEP_UP, CommandKind.STEP_DOWN) else None,
                value=value if kind is CommandKind.SUDS else None,
                text=text if kind is CommandKind.NOTE and isinstance(text, str) else None,
            )
        except ConfigError as e:
            return web.json_response({"error": str(e)}, status=400)
        runner.commands.put_nowait(cmd)
        # Push the view right after the runner has executed the command.
        asyncio.get_running_loop().call_later(0.05, self.kick)
        return web.json_response({"queued": cmd.describe()}, status=202)

    # --- API: setup ----------------------------------------------------------------------------

    def _scenarios(self) -> list[dict[str, Any]]:
        if self._scenario_cache is None:
            from exposure_ctrl.scenario import resolve_scenario, shipped_scenarios

            out = []
            for sid in shipped_scenarios():
                try:
                    sc = resolve_scenario(sid)
                except ConfigError as e:
                    log.warning("scenario %s cannot be loaded: %s", sid, e)
                    continue
                out.append({"id": sc.id, "title": sc.title, "indication": sc.indication})
            self._scenario_cache = out
        return self._scenario_cache

    async def _api_options(self, request: web.Request) -> web.StreamResponse:
        from exposure_ctrl.sensors.source import available_sources
        from exposure_ctrl.session.live import DEFAULT_SCENARIO, DEFAULT_SPEED

        scenarios = await asyncio.to_thread(self._scenarios)
        return web.json_response(
            {
                "scenarios": scenarios,
                "default_scenario": DEFAULT_SCENARIO,
                "modes": [{"id": k, "help": v} for k, v in MODES.items()],
                "sensors": [
                    {"id": k, "label": SENSOR_LABELS.get(k, k), "help": v} for k, v in available_sources().items()
                ],
                "headsets": [{"id": k, "help": v} for k, v in HEADSETS.items()],
                "policies": _policy_choices(),
                "default_speed": DEFAULT_SPEED,
                "running": self.running,
                "allow_start": self.allow_start,
            }
        )

    async def _api_start(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request)
        try:
            opts = session_options(body, self.store_path)
            live = await self.start_session(opts)
        except ConfigError as e:
            status = 409 if "already running" in str(e) or "only shows" in str(e) else 400
            return web.json_response({"error": str(e)}, status=status)
        except ExposureCtrlError as e:
            return web.json_response({"error": f"the session could not start: {e}"}, status=500)
        runner = live.runner
        return web.json_response({"session": runner.writer.session_id if runner is not None else None, "live": "/live"}, status=201)

    async def _api_scan(self, request: web.Request) -> web.StreamResponse:
        try:
            found = await self._scan()
        except SensorUnavailable as e:
            return web.json_response({"error": str(e), "straps": []}, status=503)
        except Exception as e:  # a scan must never take the console down
            log.exception("strap scan failed")
            return web.json_response({"error": f"the scan failed: {e}", "straps": []}, status=500)
        return web.json_response(
            {
                "straps": [
                    {"name": s.name, "address": s.address, "rssi": s.rssi, "heart_rate": bool(s.heart_rate)}
                    for s in found
                ]
            }
        )


def _policy_choices() -> list[dict[str, str]]:
    """Policies offered on the setup page (the registry's names; none chosen: the shipped
    policy of the scenario, or the default rule)."""
    from exposure_ctrl.policy import DEFAULT_RULE, policy_names

    helps = {"ppo": "the learned policy shipped for the scenario", DEFAULT_RULE: "the default rule"}
    return [{"id": name, "help": helps.get(name, "")} for name in policy_names()]
