"""The console's HTML pages: pure functions from data to a document.

The live and setup pages are shells filled in by their scripts (``static/live.js``,
``static/setup.js``) from the JSON API; the review pages are rendered here completely (no script).
Every value is escaped; every page loads only ``/static/console.css`` and, for the shells, one
script of its own, so the page works offline and under a strict Content-Security-Policy. The
session report itself is :func:`exposure_ctrl.report.render_review`, served as it is.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

__all__ = [
    "render_page",
    "render_live",
    "render_setup",
    "render_review_index",
    "render_patient",
    "render_message",
    "with_console_nav",
    "PatientRow",
]

_NAV = (("live", "/live", "Live session"), ("setup", "/setup", "New session"), ("review", "/review", "Review"))


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _when(dt: _dt.datetime | None) -> str:
    if dt is None:
        return "—"
    if dt.tzinfo is not None:
        dt = dt.astimezone()
    return dt.strftime("%Y-%m-%d %H:%M")


def render_page(title: str, body: str, *, active: str = "", scripts: Sequence[str] = ()) -> str:
    """A whole console document: header with navigation, ``body`` (already escaped HTML)."""
    current = ' class="active" aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{current if key == active else ""}>{_e(label)}</a>' for key, href, label in _NAV
    )
    js = "".join(f'<script src="/static/{_e(name)}" defer></script>' for name in scripts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(title)} · exposure-ctrl</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<link rel="icon" href="/static/icon.svg" type="image/svg+xml">'
        f"{js}</head><body>"
        '<header class="top"><span class="brand">exposure-ctrl</span>'
        f'<nav>{nav}</nav><span id="conn" class="conn" role="status"></span></header>'
        f"<main>{body}</main></body></html>\n"
    )


def render_message(title: str, text: str, *, active: str = "", link: tuple[str, str] | None = None) -> str:
    """A page with one message (not found, no store yet…)."""
    more = f'<p><a class="button" href="{_e(link[0])}">{_e(link[1])}</a></p>' if link else ""
    return render_page(title, f'<section class="card"><h1>{_e(title)}</h1><p>{_e(text)}</p>{more}</section>', active=active)


# --- live ----------------------------------------------------------------------------------------

_LIVE_BODY = """
<section id="nosession" class="card hidden">
  <h1>No session is running</h1>
  <p id="nosession-text">Start one from <a href="/setup">New session</a>, or review past sessions.</p>
  <p id="last-report" class="hidden"><a class="button" id="last-report-link" href="/review">Open the report of the last session</a></p>
</section>
<div id="live" class="hidden">
  <div id="alarms" class="alarms" role="alert" aria-live="assertive"></div>
  <div id="ended" class="ended hidden" role="status">
    <strong id="ended-text"></strong>
    <a id="report-link" class="button primary hidden" href="#">Open the review report</a>
    <span id="report-wait" class="muted hidden">the report is being written…</span>
  </div>
  <section class="statusbar" aria-label="session status">
    <div class="stat"><span class="k">patient</span><span class="v" id="patient">—</span></div>
    <div class="stat"><span class="k">scenario</span><span class="v" id="scenario">—</span></div>
    <div class="stat"><span class="k">phase</span><span class="v phase" id="phase">—</span></div>
    <div class="stat"><span class="k">in phase</span><span class="v" id="phase-elapsed">—</span></div>
    <div class="stat"><span class="k">session time</span><span class="v" id="elapsed">—</span></div>
    <div class="stat"><span class="k">mode</span><span class="v" id="mode">—</span></div>
    <div class="stat"><span class="k">policy</span><span class="v" id="paused">—</span></div>
    <div class="stat"><span class="k">strap</span><span class="v dev" id="strap">—</span></div>
    <div class="stat"><span class="k">headset</span><span class="v dev" id="headset">—</span></div>
  </section>
  <div class="grid">
    <section class="card heart" aria-label="heart rate">
      <div class="hr-head">
        <div class="big"><span id="hr">—</span><span class="unit">bpm</span></div>
        <div class="hr-facts">
          <div><span class="k">above baseline</span> <span id="hr-above">—</span> <span id="zone" class="chip">—</span></div>
          <div><span class="k">baseline</span> <span id="baseline">—</span> <span id="baseline-verdict" class="muted"></span></div>
          <div><span class="k">window</span> <span id="window">—</span> · <span class="k">ceiling</span> <span id="ceiling">—</span></div>
          <div><span class="k">HRV (RMSSD)</span> <span id="rmssd">—</span> · <span class="k">signal</span> <span id="quality" class="chip">—</span></div>
        </div>
      </div>
      <canvas id="hr-chart" class="chart" width="800" height="260" aria-label="heart rate over the last minutes"></canvas>
      <div class="legend"><span class="sw hr"></span>heart rate <span class="sw base"></span>baseline <span class="sw win"></span>window <span class="sw ceil"></span>ceiling</div>
      <h3>SUDS <span class="muted" id="suds-last"></span></h3>
      <canvas id="suds-chart" class="chart small" width="800" height="90" aria-label="SUDS ratings"></canvas>
    </section>
    <section class="card controls" aria-label="controls">
      <h2>Controls</h2>
      <div class="buttons">
        <button id="btn-pause" data-cmd="pause">Pause policy</button>
        <button id="btn-hold" data-cmd="hold">Hold</button>
        <button id="btn-up" data-cmd="step_up">Step up ▲</button>
        <button id="btn-down" data-cmd="step_down">Step down ▼</button>
        <button id="btn-safe" data-cmd="safe" class="danger wide">SAFE SCENE</button>
        <button id="btn-end" data-cmd="end" class="wide">End session</button>
        <button id="btn-confirm" data-cmd="confirm_baseline" class="wide hidden">Start exposure on this baseline</button>
      </div>
      <div id="proposal" class="proposal hidden" aria-live="polite">
        <div class="k">the policy proposes</div>
        <div id="proposal-text" class="v"></div>
        <div class="buttons two"><button id="btn-accept" data-cmd="accept" class="primary">Accept</button><button id="btn-reject" data-cmd="reject">Reject</button></div>
      </div>
      <form id="suds-form" class="inline" autocomplete="off">
        <label for="suds-input">SUDS 0–100</label>
        <input id="suds-input" name="suds" type="number" min="0" max="100" step="1" inputmode="numeric" required>
        <button type="submit" id="btn-suds">Save SUDS</button>
      </form>
      <form id="note-form" class="inline" autocomplete="off">
        <label for="note-input">Note</label>
        <input id="note-input" name="note" type="text" maxlength="500" placeholder="what you observe (no names)">
        <button type="submit" id="btn-note">Save note</button>
      </form>
      <div id="toast" class="toast" role="status" aria-live="polite"></div>
    </section>
    <section class="card scene" aria-label="scene">
      <h2>Scene <span class="muted" id="step">—</span></h2>
      <div class="meter"><span id="intensity-bar"></span></div>
      <table class="params"><thead><tr><th>parameter</th><th>commanded</th><th>shown on headset</th><th>fear level</th><th></th></tr></thead>
      <tbody id="params"></tbody></table>
    </section>
    <section class="card decide" aria-label="policy and shield">
      <h2>Policy</h2>
      <p><span class="k">next</span> <span id="policy-action">—</span></p>
      <p><span class="k">because</span> <span id="policy-reason">—</span></p>
      <h2>Shield</h2>
      <p><span class="k">last verdict</span> <span id="shield-last">—</span></p>
      <p><span class="k">last intervention</span> <span id="shield-intervention">—</span></p>
      <h2>This patient</h2>
      <ul id="sensitivities" class="plain"></ul>
    </section>
    <section class="card log" aria-label="messages">
      <h2>Messages</h2>
      <ul id="messages" class="messages"></ul>
    </section>
  </div>
</div>
"""


def render_live() -> str:
    return render_page("Live session", _LIVE_BODY, active="live", scripts=("chart.js", "live.js"))


# --- setup ---------------------------------------------------------------------------------------

_SETUP_BODY = """
<section class="card setup">
  <h1>New session</h1>
  <div id="running" class="notice hidden">A session is running: <a href="/live">go to the live view</a>.</div>
  <form id="setup-form" autocomplete="off" novalidate>
    <fieldset><legend>Patient</legend>
      <label for="patient">Patient code</label>
      <input id="patient" name="patient" required maxlength="32" placeholder="e.g. P-0042" pattern="[A-Za-z0-9][A-Za-z0-9_-]{1,31}">
      <p class="hint">A pseudonymous code, never a name. Codes that look like names are refused.</p>
    </fieldset>
    <fieldset><legend>Scene and policy</legend>
      <label for="scenario">Scenario</label><select id="scenario" name="scenario"></select>
      <p class="hint" id="scenario-hint"></p>
      <label for="mode">Mode</label><select id="mode" name="mode"></select>
      <p class="hint" id="mode-hint"></p>
      <label for="policy">Policy</label><select id="policy" name="policy"></select>
    </fieldset>
    <fieldset><legend>Heart-rate sensor</legend>
      <label for="sensor">Sensor</label><select id="sensor" name="sensor"></select>
      <p class="hint" id="sensor-hint"></p>
      <div id="ble-box" class="hidden">
        <button type="button" id="scan">Scan for straps</button> <span id="scan-status" class="muted"></span>
        <ul id="straps" class="straps"></ul>
        <label for="device">Strap address or name</label><input id="device" name="device" placeholder="first strap found">
      </div>
      <div id="replay-box" class="hidden">
        <label for="replay">Recording file (on this computer)</label><input id="replay" name="replay" placeholder="/path/to/recording.jsonl">
      </div>
      <div id="sim-box" class="hidden">
        <label for="speed">Clock speed (simulation)</label><input id="speed" name="speed" type="number" min="0.1" step="any" placeholder="60">
        <label for="seed">Seed of the simulated patient</label><input id="seed" name="seed" type="number" step="1" placeholder="random">
      </div>
    </fieldset>
    <fieldset><legend>Headset</legend>
      <label for="headset">Headset</label><select id="headset" name="headset"></select>
      <div id="listen-box" class="hidden">
        <label for="bind">Listen on</label><input id="bind" name="bind" placeholder="tcp://127.0.0.1:5556">
        <label for="keys">CURVE key folder (required beyond loopback)</label><input id="keys" name="keys" placeholder="~/.config/exposure-ctrl/keys">
      </div>
    </fieldset>
    <fieldset><legend>Timing (optional)</legend>
      <label for="baseline_s">Baseline (s)</label><input id="baseline_s" name="baseline_s" type="number" min="30" step="any" placeholder="scenario's">
      <label for="duration_min">Exposure at most (min)</label><input id="duration_min" name="duration_min" type="number" min="0.5" step="any" placeholder="scenario's">
    </fieldset>
    <div id="setup-error" class="error hidden" role="alert"></div>
    <button type="submit" id="start" class="primary big">Start session</button>
  </form>
</section>
"""


def render_setup() -> str:
    return render_page("New session", _SETUP_BODY, active="setup", scripts=("setup.js",))


# --- review --------------------------------------------------------------------------------------


class PatientRow(tuple):
    """``(code, n_sessions, last_started, last_outcome)`` for the review index."""

    def __new__(cls, code: str, n_sessions: int, last_started: _dt.datetime | None, last_outcome: str | None) -> "PatientRow":
        return super().__new__(cls, (code, n_sessions, last_started, last_outcome))


def _outcome(o: str | None) -> str:
    if not o:
        return '<span class="chip warn">not ended</span>'
    cls = "ok" if o == "completed" else ("warn" if o == "therapist_ended" else "bad")
    return f'<span class="chip {cls}">{_e(o.replace("_", " "))}</span>'


def render_review_index(patients: Sequence[PatientRow], store_path: str) -> str:
    """Every patient in the store with their number of sessions."""
    if not patients:
        body = (
            '<section class="card"><h1>Review</h1><p>No sessions recorded yet in '
            f"<code>{_e(store_path)}</code>.</p>"
            '<p><a class="button primary" href="/setup">Start a session</a></p></section>'
        )
        return render_page("Review", body, active="review")
    rows = "".join(
        f'<tr><td><a href="/review/patient/{quote(code, safe="")}">{_e(code)}</a></td>'
        f"<td>{n}</td><td>{_when(last)}</td><td>{_outcome(outcome)}</td>"
        f'<td><a href="/review/progress/{quote(code, safe="")}">progress</a></td></tr>'
        for code, n, last, outcome in patients
    )
    body = (
        '<section class="card"><h1>Review</h1>'
        f'<p class="muted">Store: <code>{_e(store_path)}</code></p>'
        '<table class="list" id="patients"><thead><tr><th>patient</th><th>sessions</th>'
        "<th>last session</th><th>last outcome</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )
    return render_page("Review", body, active="review")


def render_patient(code: str, sessions: Sequence[Any]) -> str:
    """One patient's sessions (``SessionSummary`` rows), each with a link to its report."""
    rows = "".join(
        f'<tr data-session="{s.id}"><td>{s.id}</td><td>{_when(s.started_at)}</td><td>{_e(s.scenario)}</td>'
        f"<td>{_e(s.mode)}</td><td>{_outcome(s.outcome)}</td><td>{s.n_samples}</td>"
        f"<td>{s.n_scene_changes}</td>"
        f'<td><a class="button" href="/review/session/{s.id}">report</a></td></tr>'
        for s in sessions
    )
    body = (
        f'<section class="card"><h1>Patient {_e(code)}</h1>'
        f'<p><a class="button" href="/review/progress/{quote(code, safe="")}">Progress across sessions</a> '
        '<a href="/review">all patients</a></p>'
        '<table class="list" id="sessions"><thead><tr><th>session</th><th>started</th><th>scenario</th>'
        "<th>mode</th><th>outcome</th><th>samples</th><th>scene changes</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )
    return render_page(f"Patient {code}", body, active="review")


_NAV_STYLE = (
    "display:flex;gap:1.2rem;padding:0.55rem 1rem;background:#16283f;"
    "font:600 15px system-ui,sans-serif;margin:0 0 0.5rem"
)


def with_console_nav(document: str, links: Sequence[tuple[str, str]]) -> str:
    """A report (a self-contained document) with a bar of links back into the console after
    its ``<body>``. The report's own Content-Security-Policy allows inline styles only, so the
    bar is styled inline and loads nothing."""
    anchors = "".join(f'<a style="color:#fff" href="{_e(href)}">{_e(text)}</a>' for href, text in links)
    bar = f'<nav class="console-nav" style="{_NAV_STYLE}">{anchors}</nav>'
    i = document.find("<body>")
    if i < 0:
        return document
    i += len("<body>")
    return document[:i] + bar + document[i:]
