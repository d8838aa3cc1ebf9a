"""Pure renderers of a scenario for the terminal (``exposure-ctrl scenario show``)."""

from __future__ import annotations

from rich.table import Table

from exposure_ctrl.scenario.model import Scenario

__all__ = ["parameter_table", "hierarchy_table", "targets_table"]


def parameter_table(sc: Scenario) -> Table:
    """One row per parameter: kind, role, weight, Unity binding, levels with their intensity."""
    t = Table(title=f"{sc.title} — parameters (levels in order of rising fear)", expand=False)
    for col in ("#", "parameter", "kind", "role", "weight", "binds to", "levels (intensity prior)"):
        t.add_column(col, overflow="fold")
    for i, p in enumerate(sc.parameters):
        levels = "\n".join(f"{p.label(j):<16} {x:.2f}" for j, x in enumerate(p.intensities))
        t.add_row(str(i), p.id, p.kind, p.role, f"{p.weight:g}", p.unity_binding, levels)
    return t


def hierarchy_table(sc: Scenario) -> Table:
    """The fear hierarchy with each step's intensity and what changes from the step before."""
    t = Table(title=f"{sc.title} — fear hierarchy", expand=False)
    t.add_column("step", justify="right")
    t.add_column("intensity", justify="right")
    t.add_column("name / changes from the step before", overflow="fold")
    prev = sc.safe_state
    t.add_row("safe", f"{sc.intensity(sc.safe_state):.3f}", f"(safe state)\n[dim]{sc.describe(prev)}[/dim]")
    for i, step in enumerate(sc.hierarchy):
        changes = [
            f"{p.id}: {p.label(p.index_of(prev[p.id]))} → {p.label(p.index_of(step.state[p.id]))}"
            for p in sc.parameters
            if p.index_of(prev[p.id]) != p.index_of(step.state[p.id])
        ]
        t.add_row(
            str(i + 1),
            f"{sc.intensity(step.state):.3f}",
            f"{step.name}\n[dim]{'; '.join(changes) or '—'}[/dim]",
        )
        prev = step.state
    return t


def targets_table(sc: Scenario) -> Table:
    """Targets, timing and safety settings."""
    t = Table(title=f"{sc.title} — targets and timing", expand=False, show_header=False)
    tg, tm, sf = sc.targets, sc.timing, sc.safety
    rows = [
        ("arousal window", f"{tg.arousal_window_bpm.low:g}–{tg.arousal_window_bpm.high:g} bpm above baseline"),
        ("ceiling", f"{tg.ceiling_bpm:g} bpm above baseline, sustained {tg.ceiling_sustained_s:g} s"),
        ("hard maximum", f"{tg.hard_max_bpm:g} bpm"),
        ("SUDS window", f"{tg.suds_window.low:g}–{tg.suds_window.high:g}"),
        ("baseline / exposure max / recovery", f"{tm.baseline_s:g} s / {tm.exposure_max_s:g} s / {tm.recovery_s:g} s"),
        ("decision period / min dwell", f"{tm.decision_period_s:g} s / {tm.min_dwell_s:g} s"),
        ("blind after / safe after", f"{sf.stale_after_s:g} s / {sf.blind_safe_after_s:g} s"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t
