"""Pure ``render_*`` functions: session records in, one self-contained HTML document out.

The document needs nothing but itself: CSS is inline, figures are inline SVG, there is no
script, and a Content-Security-Policy forbids the browser from fetching anything (the file holds
health data and must not phone home). Every recorded text (notes, reasons, names of things) is
HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

from exposure_ctrl import __version__
from exposure_ctrl.report.analysis import (
    HeartSeries,
    SessionStats,
    heart_series,
    session_stats,
)
from exposure_ctrl.report.plots import (
    TRIGGER_COLOURS,
    heart_rate_svg,
    progress_svg,
    scene_svg,
    sensitivity_svg,
)
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.store.records import SessionRecord

__all__ = [
    "ReviewInput",
    "ProgressRow",
    "render_review",
    "render_progress",
    "fmt_clock",
    "fmt_duration",
    "CSP",
]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
"""Content-Security-Policy of every report: nothing may be loaded from anywhere."""

_OUTCOMES = {
    "completed": "Completed",
    "therapist_ended": "Ended by the therapist",
    "aborted_by_patient": "Stopped by the patient",
    "safety": "Stopped for safety",
    None: "No end recorded",
}

_CSS = """
:root { --ink:#222; --muted:#666; --line:#ddd; --ok:#2ca02c; --warn:#b35900; --bad:#c62828; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.warning { border-left: 4px solid var(--warn); background: #fff6ec; padding: 8px 12px; margin: 8px 0; }
.warning.bad { border-color: var(--bad); background: #fdecea; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px;
         margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card dd { margin: 2px 0 0; font-size: 19px; font-weight: 600; }
.card dd small { display: block; font-size: 12px; font-weight: 400; color: var(--muted); }
figure { margin: 8px 0 16px; }
figure svg { width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #fafafa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.trig { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; }
.muted { color: var(--muted); }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
@media print { body { max-width: none; padding: 0; } h2 { break-after: avoid; }
               figure, table { break-inside: avoid; } }
"""


@dataclasses.dataclass(frozen=True)
class ReviewInput:
    """Everything the review report shows. ``scenario`` is the one the session ran with;
    ``scenario_notes`` say whether the file still matches (see ``report.review``)."""

    record: SessionRecord
    scenario: Scenario
    scenario_notes: Sequence[str] = ()
    generated_at: _dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class ProgressRow:
    """One session in a patient's progress."""

    info_id: int
    started_at: _dt.datetime
    scenario_id: str
    outcome: str | None
    stats: SessionStats
    hierarchy_len: int


# --- formatting ------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt_clock(t: float | None) -> str:
    """Session time as ``m:ss`` (or ``h:mm:ss``)."""
    if t is None:
        return "–"
    s = int(round(max(0.0, t)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_duration(s: float | None) -> str:
    """A duration for people: ``45 s``, ``12 min 5 s``, ``1 h 03 min``."""
    if s is None:
        return "–"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h} h {rem // 60:02d} min"


def _bpm(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "–"
    return f"{x:+.1f} bpm" if signed else f"{x:.1f} bpm"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _utc(dt: _dt.datetime | None) -> str:
    if dt is None:
        return "–"
    return dt.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, id: str,
           num: Sequence[int] = (), empty: str = "none recorded") -> str:
    """Rows are already-escaped HTML cells."""
    rows = list(rows)
    if not rows:
        return f'<p class="muted" id="{id}">{_e(empty)}</p>'
    head = "".join(
        f'<th{" class=num" if i in num else ""}>{_e(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td{" class=num" if i in num else ""}>{c}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<table id="{id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _trig(trigger: str) -> str:
    colour = TRIGGER_COLOURS.get(trigger, "#000000")
    return f'<span class="trig" style="background:{colour}">{_e(trigger)}</span>'


def _card(key: str, label: str, value: str, detail: str = "") -> str:
    small = f"<small>{detail}</small>" if detail else ""
    return f'<div class="card" data-key="{key}"><dt>{_e(label)}</dt><dd>{value}{small}</dd></div>'


def _diff(sc: Scenario, before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    if before is None:
        return _e(sc.describe(after)) if _fits(sc, after) else _e(json.dumps(after))
    parts = []
    for p in sc.parameters:
        a, b = before.get(p.id), after.get(p.id)
        if a != b:
            parts.append(f"{p.title or p.id}: {_label(p, a)} → {_label(p, b)}")
    return _e("; ".join(parts)) if parts else '<span class="muted">same scene (re-sent)</span>'


def _label(p: Any, value: Any) -> str:
    try:
        return p.label(p.index_of(value))
    except (ValueError, TypeError):
        return str(value)


def _fits(sc: Scenario, state: dict[str, Any]) -> bool:
    try:
        sc.positions(state)
    except ValueError:
        return False
    return True


# --- the review report -----------------------------------------------------------------------


def _warnings(inp: ReviewInput, hs: HeartSeries, st: SessionStats) -> list[str]:
    rec = inp.record
    out = [f'<div class="warning">{_e(n)}</div>' for n in inp.scenario_notes]
    if rec.info.outcome is None:
        out.append(
            '<div class="warning bad">No end was recorded: the controller stopped unexpectedly '
            "(a crash, a killed process or a power cut). The record runs to the last data "
            f"stored, at {fmt_clock(rec.end_t)}.</div>"
        )
    if hs.baseline_bpm is None:
        out.append(
            '<div class="warning">No resting baseline was recorded, so rises above baseline and '
            "time in the window cannot be computed.</div>"
        )
    elif hs.baseline_estimated:
        out.append(
            '<div class="warning">No baseline was recorded by the controller; the baseline shown '
            "is the median of the clean samples of the baseline phase.</div>"
        )
    if st.n_gaps:
        out.append(
            f'<div class="warning">{st.n_gaps} gap(s) in the heart rate or the headset link, '
            f"{fmt_duration(st.gap_s)} in all (hatched in the figures; listed below).</div>"
        )
    return out


def render_review(inp: ReviewInput) -> str:
    """The review report of one session as a complete HTML document."""
    rec, sc = inp.record, inp.scenario
    info = rec.info
    hs = heart_series(rec)
    st = session_stats(rec, sc, hs)
    n_steps = len(sc.hierarchy)
    title = f"Session {info.id} · patient {info.patient} · {sc.title}"

    # summary cards
    outcome = _OUTCOMES.get(info.outcome, info.outcome or "")
    step = (
        f"{st.step_reached + 1} of {n_steps}" if st.step_reached is not None and st.step_reached >= 0
        else ("below step 1" if st.step_reached is not None else "–")
    )
    triggers = ", ".join(f"{n} {k}" for k, n in sorted(st.changes_by_trigger.items()))
    base = (
        f"{hs.baseline_bpm:.0f} bpm" if hs.baseline_bpm is not None else "–"
    )
    base_detail = (
        f"sd {hs.baseline_sd:.1f} bpm" + (" · estimated" if hs.baseline_estimated else "")
        if hs.baseline_sd is not None else ""
    )
    cards = [
        _card("outcome", "Outcome", _e(outcome), _e(info.end_reason or "")),
        _card("duration", "Duration", fmt_duration(st.duration_s),
              f"exposure {fmt_duration(st.exposure_s)}"),
        _card("time-in-window", "Time in window", _pct(st.time_in_window_frac),
              f"{fmt_duration(st.time_in_window_s)} of {fmt_duration(st.observed_exposure_s)} "
              f"with heart rate · above: {fmt_duration(st.time_above_window_s)}"),
        _card("peak-rise", "Peak rise", _bpm(st.peak_rise_bpm),
              f"at {fmt_clock(st.peak_rise_t)}" if st.peak_rise_t is not None else ""),
        _card("step-reached", "Hierarchy step reached", _e(step), _e(st.step_reached_name or "")),
        _card("baseline", "Resting baseline", base, _e(base_detail)),
        _card("shield", "Shield interventions", str(st.n_shield_interventions),
              f"above ceiling: {fmt_duration(st.time_above_ceiling_s)}"),
        _card("scene-changes", "Scene changes", str(st.n_scene_changes), _e(triggers)),
        _card("gaps", "Gaps", str(st.n_gaps), fmt_duration(st.gap_s) if st.n_gaps else ""),
        _card("suds", "Peak SUDS", "–" if st.suds_peak is None else str(st.suds_peak),
              f"{len(rec.suds)} rating(s)"),
    ]
    if info.mode == "advisory" or st.proposals_accepted or st.proposals_rejected:
        cards.append(_card("advice", "Proposals accepted", str(st.proposals_accepted),
                           f"rejected: {st.proposals_rejected}"))

    # habituation per level
    lvl_rows = [
        [
            _e(lv.index + 1 if lv.index >= 0 else "–"),
            _e(lv.name),
            fmt_duration(lv.time_s),
            str(lv.visits),
            _bpm(lv.peak_rise_bpm),
            _bpm(lv.end_rise_bpm),
            (_bpm(lv.habituation_bpm) + (f" ({lv.habituation_pct:.0f} %)"
                                          if lv.habituation_pct is not None else ""))
            if lv.habituation_bpm is not None else '<span class="muted">stay too short</span>',
        ]
        for lv in st.levels
    ]

    # scene changes
    prev = None
    change_rows = []
    for c in sorted(rec.scene_changes, key=lambda c: c.seq):
        change_rows.append([
            fmt_clock(c.t),
            _diff(sc, prev, c.state),
            "–" if c.intensity is None else f"{c.intensity:.2f}",
            "–" if c.hierarchy_index is None else (
                str(c.hierarchy_index + 1) if c.hierarchy_index >= 0 else "below 1"),
            _trig(c.trigger),
            _e(c.who or ""),
            _e(c.reason or ""),
            "not acked" if c.acked_t is None else (
                "–" if c.rtt_ms is None else f"{c.rtt_ms:.0f}"),
        ])
        prev = c.state

    shield_rows = [
        [
            fmt_clock(d.t),
            _e(d.proposed_label or ("hold" if d.proposed_action == 0 else "")),
            _e(d.verdict),
            _e(d.verdict_reason or ""),
            _e(d.executed_label or ""),
            _e(d.proposal_reason or ""),
        ]
        for d in rec.decisions
        if d.shield_intervened
    ]
    advice_rows = [
        [fmt_clock(d.t), _e(d.proposed_label or ""), _e(d.proposal_reason or ""),
         _e(d.response), _e(d.responded_by or ""), fmt_clock(d.response_t)]
        for d in rec.decisions
        if d.response is not None
    ]
    gap_rows = [
        [
            _e(g.kind),
            fmt_clock(g.start_t),
            fmt_clock(g.end_t) if g.end_t is not None else "open at the end",
            fmt_duration((g.end_t if g.end_t is not None else rec.end_t) - g.start_t),
            _e(g.reason or ""),
        ]
        for g in rec.gaps
    ]
    event_rows = sorted(
        [(e.t, "headset", e.kind, e.detail) for e in rec.headset_events]
        + [(e.t, "heart-rate sensor", e.kind, e.detail) for e in rec.sensor_events],
        key=lambda r: r[0],
    )
    event_rows_html = [
        [fmt_clock(t), _e(src), _e(kind), _e(json.dumps(detail, ensure_ascii=False)) if detail
         else ""]
        for t, src, kind, detail in event_rows
    ]
    suds_rows = [[fmt_clock(s.t), str(s.value), _e(s.source), _e(s.who or "")] for s in rec.suds]
    note_rows = [[fmt_clock(n.t), _e(n.author), _e(n.text)] for n in rec.notes]
    cmd_rows = [
        [fmt_clock(c.t), _e(c.who), _e(c.command),
         _e(json.dumps(c.args, ensure_ascii=False)) if c.args else "", _e(c.result or "")]
        for c in rec.commands
    ]
    phase_rows = [[fmt_clock(p.t), _e(p.phase), _e(p.reason or "")] for p in rec.phases]

    # sensitivity
    sens_svg = sensitivity_svg(sc, rec.estimates)
    if rec.estimates:
        last = rec.estimates[-1]
        titles = {p.id: p.title or p.id for p in sc.parameters}
        sens_rows = [
            [_e(titles.get(pid, pid)), f"{v['mean']:+.2f}",
             "–" if v.get("sd") is None else f"{v['sd']:.2f}"]
            for pid, v in last.estimates.items()
        ]
        lines = last.detail.get("sensitivities") if isinstance(last.detail, dict) else None
        lines_html = (
            '<ul id="sensitivity-lines">'
            + "".join(f"<li>{_e(x)}</li>" for x in lines)
            + "</ul>"
            if isinstance(lines, list) and lines
            else ""
        )
        sens_html = (
            f'<figure id="fig-sensitivity">{sens_svg}<figcaption>How much each parameter raised '
            "this patient's heart rate, as the controller's response model estimated it "
            f"({_e(last.unit)}; latest estimate at {fmt_clock(last.t)}; bars show ± one "
            "standard deviation). Wide bars mean the model is unsure. Heart rate and reported "
            "fear agree only loosely; read these next to the SUDS ratings.</figcaption></figure>"
            + _table(["parameter", f"mean ({last.unit})", "sd"], sens_rows,
                     id="sensitivity-table", num=(1, 2))
            + lines_html
        )
    else:
        sens_html = '<p class="muted" id="sensitivity-none">No response-model estimates recorded.</p>'

    prov = {
        "session uid": info.uid,
        "scenario": f"{info.scenario_id} v{info.scenario_version}",
        "scenario file": info.scenario_source,
        "scenario sha256": info.scenario_sha256,
        "policy": info.policy_id,
        "policy sha256": info.policy_sha256,
        "mode": info.mode,
        "seed": info.seed,
        "started": _utc(info.started_at),
        "ended": _utc(info.ended_at),
    }
    prov_rows = [[_e(k), f"<code>{_e(v)}</code>" if v is not None else "–"] for k, v in prov.items()]
    soft_rows = [[_e(k), _e(v)] for k, v in sorted(info.software.items())]

    win = sc.targets.arousal_window_bpm
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1 id="title">{_e(title)}</h1>',
        f'<p class="sub">Started {_e(_utc(info.started_at))} · mode {_e(info.mode)} · policy '
        f"{_e(info.policy_id or '–')} · scenario {_e(info.scenario_id)} v{_e(info.scenario_version)}"
        "</p></header>",
        *_warnings(inp, hs, st),
        '<section id="summary"><h2>Summary</h2><dl class="cards">',
        *cards,
        "</dl></section>",
        '<section id="heart-rate"><h2>Heart rate</h2>',
        f'<figure id="fig-heart-rate">{heart_rate_svg(rec, sc, hs)}<figcaption>Heart rate '
        "(light: every sample; dark: 10-second mean) against the patient's resting baseline "
        f"(dashed). Green band: therapeutic window, {win.low:g} to {win.high:g} bpm above "
        f"baseline; red: above the ceiling ({sc.targets.ceiling_bpm:g} bpm above baseline). "
        "Red triangles: the shield changed or refused the policy's action. Hatched: gaps in the "
        "heart rate (grey) or headset link (orange). Lower panel: SUDS ratings (green band: "
        f"the target {sc.targets.suds_window.low:g}–{sc.targets.suds_window.high:g}). Shaded "
        "columns: baseline and recovery phases.</figcaption></figure></section>",
        '<section id="scene"><h2>Scene</h2>',
        f'<figure id="fig-scene">{scene_svg(rec, sc)}<figcaption>Intensity of the scene shown '
        "(0 = safe scene, 1 = most feared; grey lines mark the hierarchy steps) and every "
        "parameter over time. Dots mark changes, coloured by who made them: "
        + " ".join(_trig(t) for t in TRIGGER_COLOURS)
        + ". Times are when the headset confirmed showing the scene.</figcaption></figure>",
        "</section>",
        '<section id="levels"><h2>Habituation at each level</h2>',
        "<p class=muted>Peak rise above baseline while at each hierarchy step, the mean rise over "
        "the last 30 s of the last stay, and the difference (how far arousal came down while "
        "staying: habituation).</p>",
        _table(["step", "name", "time", "stays", "peak rise", "rise at end", "habituation"],
               lvl_rows, id="levels-table", num=(2, 3, 4, 5, 6),
               empty="no exposure at any hierarchy step recorded"),
        "</section>",
        '<section id="sensitivity"><h2>Estimated sensitivity per parameter</h2>',
        sens_html,
        "</section>",
        '<section id="timeline"><h2>What happened</h2>',
        "<h3>Scene changes</h3>",
        _table(["time", "change", "intensity", "step", "by", "who", "reason", "rtt ms"],
               change_rows, id="changes-table", num=(2, 3, 7)),
        "<h3>Shield interventions</h3>",
        _table(["time", "policy proposed", "shield", "reason code", "executed", "policy's reason"],
               shield_rows, id="shield-table", empty="the shield never intervened"),
    ]
    if advice_rows:
        parts += [
            "<h3>Proposals (advisory mode)</h3>",
            _table(["time", "proposal", "reason", "answer", "by", "answered at"], advice_rows,
                   id="advice-table"),
        ]
    parts += [
        "<h3>Gaps</h3>",
        _table(["what", "from", "to", "duration", "reason"], gap_rows, id="gaps-table",
               empty="no gaps"),
        "<h3>Headset and sensor events</h3>",
        _table(["time", "device", "event", "detail"], event_rows_html, id="events-table"),
        "<h3>SUDS ratings</h3>",
        _table(["time", "SUDS", "from", "entered by"], suds_rows, id="suds-table", num=(1,)),
        "<h3>Notes</h3>",
        _table(["time", "author", "note"], note_rows, id="notes-table"),
        "<h3>Therapist commands</h3>",
        _table(["time", "who", "command", "arguments", "result"], cmd_rows, id="commands-table"),
        "<h3>Phases</h3>",
        _table(["time", "phase", "reason"], phase_rows, id="phases-table"),
        "</section>",
        '<section id="provenance"><h2>Record</h2>',
        _table(["", ""], prov_rows, id="provenance-table"),
        "<h3>Software</h3>",
        _table(["package", "version"], soft_rows, id="software-table"),
        "<h3>Settings</h3>",
        f"<pre>{_e(json.dumps(info.settings, indent=2, ensure_ascii=False, sort_keys=True))}</pre>",
        "</section>",
        f"<footer>exposure-ctrl {_e(__version__)} · report generated "
        f"{_e(_utc(inp.generated_at))} · "
        f"{len(rec.samples)} heart-rate samples ({st.n_flagged} flagged), "
        f"{len(rec.decisions)} decisions. Contains health data under a pseudonymous code: keep it "
        "on this machine or a secured clinical system.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --- progress --------------------------------------------------------------------------------


def render_progress(patient: str, rows: Sequence[ProgressRow], scenario: Scenario | None,
                    generated_at: _dt.datetime | None = None) -> str:
    """A patient's progress across sessions as a complete HTML document."""
    table_rows = [
        [
            str(r.info_id),
            _e(_utc(r.started_at)),
            _e(r.scenario_id),
            _e(_OUTCOMES.get(r.outcome, r.outcome or "")),
            _e(f"{r.stats.step_reached + 1} of {r.hierarchy_len}"
               if r.stats.step_reached is not None and r.stats.step_reached >= 0 else "–"),
            _pct(r.stats.time_in_window_frac),
            _bpm(r.stats.peak_rise_bpm),
            _e(", ".join(f"{lv.index + 1}: {lv.peak_rise_bpm:+.0f}" for lv in r.stats.levels
                         if lv.index >= 0 and lv.peak_rise_bpm is not None)),
        ]
        for r in rows
    ]
    svg = progress_svg([(r.info_id, r.stats) for r in rows], scenario)
    title = f"Progress · patient {patient}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1 id="title">{_e(title)}</h1>',
        f'<p class="sub">{len(rows)} session(s)</p>',
        f'<figure id="fig-progress">{svg or ""}<figcaption>Left: peak heart-rate rise above '
        "baseline at each hierarchy step, one line per session (lower at the same step = "
        "habituation across sessions). Right: share of exposure time in the therapeutic window "
        "(bars) and the highest hierarchy step reached (line).</figcaption></figure>",
        _table(["session", "started", "scenario", "outcome", "step reached", "time in window",
                "peak rise", "peak rise per step (bpm)"], table_rows, id="progress-table",
               num=(5, 6), empty="no sessions for this patient"),
        f"<footer>exposure-ctrl {_e(__version__)} · generated {_e(_utc(generated_at))}</footer>",
        "</body></html>",
    ]) + "\n"
