"""The report's figures, drawn with matplotlib (a bare ``Figure``, no pyplot and no global
backend) into inline SVG text.

Every function returns a complete ``<svg>`` element as a string. Elements a reader (or a test)
looks for carry ids (``gid``): ``hr-line``, ``hr-smooth``, ``baseline-line``, ``window-band``,
``ceiling-band``, ``shield-markers``, ``suds-points-<source>``, ``gap-sensor-N``,
``gap-headset-N``, ``intensity-line``, ``param-<id>``, ``trigger-<name>``,
``sensitivity-bar-<id>``, ``progress-*``.
Output is deterministic (fixed hash salt, no date), so the same session gives the same file.
Text is drawn as paths, so the figures look the same without any font installed.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from exposure_ctrl.report.analysis import (
    HeartSeries,
    SessionStats,
    level_timeline,
    phase_intervals,
)
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.store.records import ModelEstimate, SessionRecord

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "TRIGGER_COLOURS",
    "heart_rate_svg",
    "scene_svg",
    "sensitivity_svg",
    "progress_svg",
]

TRIGGER_COLOURS = {
    "policy": "#1f77b4",
    "shield": "#d62728",
    "therapist": "#2ca02c",
    "system": "#7f7f7f",
}
_PHASE_COLOURS = {"baseline": "#e8eef7", "recovery": "#f1ebf7"}
_WINDOW = "#2ca02c"
_CEILING = "#d62728"
_RC = {
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Figure, prefix: str) -> str:
    buf = io.StringIO()
    # a salt per figure keeps the ids matplotlib generates apart when several SVGs share a page
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"exposure-ctrl-{prefix}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: inline in HTML
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def _styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Build the figure under the report's matplotlib style (not the user's global rcParams)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper


def _shade_phases(ax, rec: SessionRecord, label: bool) -> None:
    for iv in phase_intervals(rec):
        colour = _PHASE_COLOURS.get(iv.label)
        if colour is None or iv.duration <= 0:
            continue
        ax.axvspan(iv.start / 60, iv.end / 60, color=colour, zorder=0, lw=0)
        if label:
            ax.text(
                (iv.start + iv.end) / 120,
                0.98,
                iv.label,
                transform=blended_transform_factory(ax.transData, ax.transAxes),
                ha="center",
                va="top",
                fontsize=8,
                color="#555555",
            )


def _shade_gaps(ax, rec: SessionRecord, end_t: float) -> list[Patch]:
    handles = []
    styles = {
        "sensor": dict(facecolor="#bbbbbb", hatch="////", label="heart-rate gap"),
        "headset": dict(facecolor="#f5c28a", hatch="\\\\\\\\", label="headset gap"),
    }
    seen = set()
    for g in rec.gaps:
        st = styles.get(g.kind, styles["sensor"])
        end = g.end_t if g.end_t is not None else end_t
        span = ax.axvspan(
            g.start_t / 60,
            max(end, g.start_t + 1.0) / 60,
            facecolor=st["facecolor"],
            hatch=st["hatch"],
            edgecolor="#888888",
            alpha=0.55,
            lw=0,
            zorder=1,
        )
        span.set_gid(f"gap-{g.kind}-{g.seq}")
        if g.kind not in seen:
            seen.add(g.kind)
            handles.append(Patch(facecolor=st["facecolor"], hatch=st["hatch"], edgecolor="#888888",
                                 alpha=0.55, label=st["label"]))
    return handles


@_styled
def heart_rate_svg(rec: SessionRecord, sc: Scenario, hs: HeartSeries) -> str:
    """Heart rate with baseline, window and ceiling; SUDS below; gaps, shield and panic marked."""
    fig = Figure(figsize=(11, 5.2))
    gs = fig.add_gridspec(2, 1, height_ratios=[4, 1.3], hspace=0.08)
    ax = fig.add_subplot(gs[0])
    ax_s = fig.add_subplot(gs[1], sharex=ax)
    end_t = rec.end_t
    tg = sc.targets
    _shade_phases(ax, rec, label=True)
    _shade_phases(ax_s, rec, label=False)
    handles = []
    if hs.baseline_bpm is not None:
        b = hs.baseline_bpm
        w = ax.axhspan(b + tg.arousal_window_bpm.low, b + tg.arousal_window_bpm.high,
                       color=_WINDOW, alpha=0.16, lw=0, zorder=1,
                       label=f"therapeutic window (+{tg.arousal_window_bpm.low:g}…"
                             f"+{tg.arousal_window_bpm.high:g} bpm)")
        w.set_gid("window-band")
        top = max(float(np.nanmax(hs.bpm)) if len(hs.bpm) else b, b + tg.ceiling_bpm) + 8
        c = ax.axhspan(b + tg.ceiling_bpm, top, color=_CEILING, alpha=0.10, lw=0, zorder=1,
                       label=f"above ceiling (+{tg.ceiling_bpm:g} bpm)")
        c.set_gid("ceiling-band")
        (bl,) = ax.plot([0, end_t / 60], [b, b], ls="--", color="#444444", lw=1,
                        label=f"baseline {b:.0f} bpm" + (" (estimated)" if hs.baseline_estimated
                                                         else ""))
        bl.set_gid("baseline-line")
        handles += [w, c, bl]
    if tg.hard_max_bpm <= (np.nanmax(hs.bpm) if len(hs.bpm) else 0) + 15:
        ax.axhline(tg.hard_max_bpm, color=_CEILING, lw=1, ls=":")
    if len(hs.t):
        t = hs.t / 60
        bpm = np.where(hs.clean, hs.bpm, np.nan)
        # break the line across gaps so that it does not bridge missing data
        gap = np.diff(hs.t, prepend=hs.t[0]) > max(3.0, float(sc.safety.stale_after_s))
        bpm_line = np.where(gap, np.nan, bpm)
        (raw,) = ax.plot(t, bpm_line, color="#9ecae1", lw=0.7, zorder=3, label="heart rate")
        raw.set_gid("hr-line")
        sm = np.where(gap, np.nan, hs.smooth)
        (smooth,) = ax.plot(t, sm, color="#08519c", lw=1.6, zorder=4,
                            label="heart rate, 10 s mean")
        smooth.set_gid("hr-smooth")
        handles += [raw, smooth]
        flagged = ~hs.clean
        if flagged.any():
            fb = np.clip(hs.bpm[flagged], 30, 220)
            fl = ax.scatter(t[flagged], fb, marker="x", s=10, color="#999999", lw=0.8,
                            zorder=3, label="flagged sample (not used)")
            fl.set_gid("hr-flagged")
            handles.append(fl)
    handles += _shade_gaps(ax, rec, end_t)
    _shade_gaps(ax_s, rec, end_t)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    shield_t = [d.t / 60 for d in rec.decisions if d.shield_intervened]
    shield_t += [c.t / 60 for c in rec.scene_changes if c.trigger == "shield"]
    if shield_t:
        sh = ax.scatter(sorted(set(shield_t)), [0.93] * len(set(shield_t)), transform=trans,
                        marker="v", s=36, color=_CEILING, zorder=6, clip_on=False,
                        label="shield intervened")
        sh.set_gid("shield-markers")
        handles.append(sh)
    panic = [e.t / 60 for e in rec.headset_events if e.kind == "panic"]
    if panic:
        pm = ax.scatter(panic, [0.86] * len(panic), transform=trans, marker="*", s=90,
                        color="#7b2cbf", zorder=6, clip_on=False, label="panic button")
        pm.set_gid("panic-markers")
        handles.append(pm)
    ax.set_ylabel("heart rate (bpm)")
    ax.set_xlim(0, max(end_t, 1.0) / 60)
    if hs.baseline_bpm is not None and len(hs.bpm):
        finite = hs.bpm[hs.clean]
        lo = min(float(finite.min()) if len(finite) else hs.baseline_bpm, hs.baseline_bpm) - 5
        hi = max(float(finite.max()) if len(finite) else 0, hs.baseline_bpm + tg.ceiling_bpm) + 6
        ax.set_ylim(lo, hi)
    ax.grid(True, axis="y", color="#eeeeee", lw=0.6)
    ax.tick_params(labelbottom=False)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)

    # SUDS panel
    sw = sc.targets.suds_window
    ax_s.axhspan(sw.low, sw.high, color=_WINDOW, alpha=0.12, lw=0)
    if rec.suds:
        colours = {"therapist": "#6a3d9a", "headset": "#e7298a"}
        for source in ("therapist", "headset"):
            pts = [s for s in rec.suds if s.source == source]
            if not pts:
                continue
            sc_pts = ax_s.scatter([p.t / 60 for p in pts], [p.value for p in pts], marker="D",
                                  s=22, color=colours[source], zorder=5,
                                  label=f"SUDS ({source})")
            sc_pts.set_gid(f"suds-points-{source}")
            for p in pts:
                ax_s.annotate(str(p.value), (p.t / 60, p.value), textcoords="offset points",
                              xytext=(0, 5), ha="center", fontsize=7, color=colours[source])
        ax_s.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    else:
        ax_s.text(0.5, 0.5, "no SUDS ratings recorded", transform=ax_s.transAxes, ha="center",
                  va="center", color="#888888")
    ax_s.set_ylim(0, 108)
    ax_s.set_yticks([0, 50, 100])
    ax_s.set_ylabel("SUDS")
    ax_s.set_xlabel("session time (minutes)")
    ax_s.grid(True, axis="y", color="#eeeeee", lw=0.6)
    return _svg(fig, "hr")


def _step_xy(times: Sequence[float], values: Sequence[float], end_t: float):
    xs = list(times) + [end_t]
    ys = list(values) + [values[-1]]
    return np.asarray(xs) / 60, np.asarray(ys, dtype=float)


@_styled
def scene_svg(rec: SessionRecord, sc: Scenario) -> str:
    """Intensity (with the hierarchy steps) and every parameter over time, each change marked
    with who triggered it."""
    shown, changes = level_timeline(rec)
    k = sc.n_parameters
    fig = Figure(figsize=(11, 2.2 + 0.95 * k))
    gs = fig.add_gridspec(1 + k, 1, height_ratios=[2.6] + [1] * k, hspace=0.18)
    end_t = max(rec.end_t, float(shown[-1]) if len(shown) else 0.0)
    ax = fig.add_subplot(gs[0])
    axes = [ax] + [fig.add_subplot(gs[i + 1], sharex=ax) for i in range(k)]
    for a in axes:
        _shade_phases(a, rec, label=a is ax)
    ax.set_ylabel("intensity")
    ax.set_ylim(-0.02, 1.02)
    last_label = -1.0
    for i, hi in enumerate(sc.hierarchy_intensities):
        ax.axhline(hi, color="#dddddd", lw=0.6, zorder=1)
        if hi - last_label < 0.045 and i != len(sc.hierarchy) - 1:
            continue  # too close to the previous label to be readable
        last_label = hi
        ax.text(1.002, hi, f"step {i + 1}", transform=blended_transform_factory(ax.transAxes,
                ax.transData), fontsize=6.5, color="#999999", va="center")
    handles = []
    if changes:
        xs, ys = _step_xy(shown, [c.intensity if c.intensity is not None else np.nan
                                  for c in changes], end_t)
        (line,) = ax.step(xs, ys, where="post", color="#333333", lw=1.4, zorder=3)
        line.set_gid("intensity-line")
        for trig, colour in TRIGGER_COLOURS.items():
            pts = [(s / 60, c.intensity) for s, c in zip(shown, changes)
                   if c.trigger == trig and c.intensity is not None]
            if pts:
                m = ax.scatter(*zip(*pts), color=colour, s=26, zorder=5, edgecolor="white",
                               lw=0.5, label=f"change by {trig}")
                m.set_gid(f"trigger-{trig}")
                handles.append(m)
    else:
        ax.text(0.5, 0.5, "no scene changes recorded", transform=ax.transAxes, ha="center")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.04, 1.0), fontsize=8,
              frameon=False)
    ax.tick_params(labelbottom=False)
    for i, (p, a) in enumerate(zip(sc.parameters, axes[1:])):
        n = p.n_levels
        a.set_ylim(-0.5, n - 0.5)
        ticks = list(range(n)) if n <= 6 else sorted({0, n // 2, n - 1})
        a.set_yticks(ticks)
        a.set_yticklabels([p.label(j) for j in ticks], fontsize=7)
        a.set_ylabel(p.title or p.id, rotation=0, ha="right", va="center", fontsize=8)
        a.grid(True, axis="y", color="#f0f0f0", lw=0.5)
        if not changes:
            continue
        idx = []
        for c in changes:
            try:
                idx.append(p.index_of(c.state.get(p.id)))
            except ValueError:
                idx.append(np.nan)
        xs, ys = _step_xy(shown, idx, end_t)
        (line,) = a.step(xs, ys, where="post", color="#555555", lw=1.1)
        line.set_gid(f"param-{p.id}")
        prev = None
        for s, c, j in zip(shown, changes, idx):
            if prev is not None and j != prev:
                a.scatter([s / 60], [j], color=TRIGGER_COLOURS.get(c.trigger, "#000000"), s=16,
                          zorder=5, edgecolor="white", lw=0.4)
            prev = j
        if i < k - 1:
            a.tick_params(labelbottom=False)
    axes[-1].set_xlabel("session time (minutes)")
    ax.set_xlim(0, max(end_t, 1.0) / 60)
    return _svg(fig, "scene")


@_styled
def sensitivity_svg(sc: Scenario, estimates: Sequence[ModelEstimate]) -> str | None:
    """The latest per-parameter sensitivity (mean ± sd) as bars; with several estimates, how
    each one evolved. None when the session has no estimates."""
    if not estimates:
        return None
    last = estimates[-1].estimates
    ids = [p.id for p in sc.parameters if p.id in last] + [
        pid for pid in last if pid not in sc.parameter_ids
    ]
    if not ids:
        return None
    fig = Figure(figsize=(11, 0.5 + 0.38 * len(ids)))
    ax = fig.add_subplot(1, 2, 1)
    means = [last[i]["mean"] for i in ids]
    sds = [last[i].get("sd") or 0.0 for i in ids]
    y = np.arange(len(ids))
    bars = ax.barh(y, means, xerr=sds, color="#6baed6", ecolor="#333333", capsize=3)
    for i, patch in enumerate(bars.patches):
        patch.set_gid(f"sensitivity-bar-{ids[i]}")
    titles = {p.id: (p.title or p.id) for p in sc.parameters}
    ax.set_yticks(y)
    ax.set_yticklabels([titles.get(i, i) for i in ids])
    ax.invert_yaxis()
    ax.axvline(0, color="#444444", lw=0.8)
    ax.set_xlabel(f"{estimates[-1].unit} (mean ± sd), latest estimate")
    ax2 = fig.add_subplot(1, 2, 2)
    if len(estimates) > 1:
        ts = np.array([e.t for e in estimates]) / 60
        for pid in ids:
            m = np.array([e.estimates.get(pid, {}).get("mean", np.nan) for e in estimates])
            (ln,) = ax2.plot(ts, m, lw=1.2, label=titles.get(pid, pid))
            ln.set_gid(f"sensitivity-{pid}")
        ax2.set_xlabel("session time (minutes)")
        ax2.set_ylabel(estimates[-1].unit)
        ax2.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax2.set_axis_off()
    return _svg(fig, "sens")


@_styled
def progress_svg(
    sessions: Sequence[tuple[int, SessionStats]], sc: Scenario | None
) -> str | None:
    """Across sessions: peak rise per hierarchy step (one line per session), and time in the
    window and step reached per session."""
    if not sessions:
        return None
    fig = Figure(figsize=(11, 3.6))
    ax = fig.add_subplot(1, 2, 1)
    cmap = matplotlib.colormaps["viridis"]
    n = len(sessions)
    for i, (sid, st) in enumerate(sessions):
        lv = [(lv.index + 1, lv.peak_rise_bpm) for lv in st.levels
              if lv.index >= 0 and lv.peak_rise_bpm is not None]
        if lv:
            (ln,) = ax.plot(*zip(*lv), marker="o", ms=3, lw=1.2,
                            color=cmap(i / max(1, n - 1)), label=f"session {sid}")
            ln.set_gid(f"progress-peak-{sid}")
    if sc is not None:
        w = sc.targets.arousal_window_bpm
        ax.axhspan(w.low, w.high, color=_WINDOW, alpha=0.14, lw=0)
        ax.axhline(sc.targets.ceiling_bpm, color=_CEILING, lw=0.8, ls="--")
    ax.set_xlabel("hierarchy step")
    ax.set_ylabel("peak rise above baseline (bpm)")
    ax.legend(fontsize=7, frameon=False)
    ax2 = fig.add_subplot(1, 2, 2)
    x = np.arange(n)
    frac = [100 * (st.time_in_window_frac or 0.0) for _, st in sessions]
    bars = ax2.bar(x, frac, color="#74c476", label="time in window (%)")
    for (sid, _), patch in zip(sessions, bars.patches):
        patch.set_gid(f"progress-window-{sid}")
    ax2.set_ylim(0, 100)
    ax2.set_ylabel("time in window (% of exposure)")
    ax2.set_xticks(x)
    ax2.set_xticklabels([str(sid) for sid, _ in sessions])
    ax2.set_xlabel("session")
    ax3 = ax2.twinx()
    steps = [(st.step_reached + 1) if st.step_reached is not None else np.nan for _, st in sessions]
    (ln,) = ax3.plot(x, steps, color="#08519c", marker="s", lw=1.4, label="step reached")
    ln.set_gid("progress-step")
    if sc is not None:
        ax3.set_ylim(0, len(sc.hierarchy) + 0.5)
    ax3.set_ylabel("hierarchy step reached")
    ax3.spines["right"].set_visible(True)
    return _svg(fig, "prog")
