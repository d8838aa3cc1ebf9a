"""The card of a shipped policy (``policies/<scenario-id>/CARD.md``): what it is, how it was
trained (command, seed, cohort, software versions, wall time), and how it measured against the
baselines and the oracle on held-out patients, goal check included. Pure text rendering.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_card"]


def _selection_line(sel: dict[str, Any] | None) -> str:
    if not sel:
        return "- selection: the last iterate"
    ch = sel.get("chosen") or {}
    ref = sel.get("reference") or {}
    return (
        f"- selection: best of {sel.get('candidates')} validated iterates on {sel.get('validation')}: "
        f"iterate at {ch.get('timesteps', 0):,} decisions, {ch.get('time_in_window_pct', float('nan')):.1f}% in window "
        f"(best rule there: {ref.get('policy')} {ref.get('time_in_window_pct', float('nan')):.1f}%; "
        f"constraints {'met' if ch.get('meets_constraints') else _unmet(ch, ref)})"
    )


_MISSED = {  # constraint -> how the card names a miss (the summary key compared)
    "no_more_aborts": ("aborts {:.1f}% vs {:.1f}%", "abort_pct"),
    "no_more_time_above_ceiling": ("above ceiling {:.2f}% vs {:.2f}%", "above_ceiling_pct"),
    "same_or_higher_step": ("final step {:.2f} vs {:.2f}", "final_step"),
}


def _unmet(ch: dict[str, Any], ref: dict[str, Any]) -> str:
    """Which of the three constraints the kept iterate misses (none met them all)."""
    from exposure_ctrl.policy.evaluate import constraint_checks

    ch, ref = ({key: float(d.get(key, 0.0)) for _, key in _MISSED.values()} for d in (ch, ref))
    met = constraint_checks(ch, ref)
    miss = [text.format(ch[key], ref[key]) for name, (text, key) in _MISSED.items() if not met[name]]
    return "not met by any iterate: best in window among those meeting the most of them, missing " + (", ".join(miss) or "?")


def _more_guards(g: dict[str, Any]) -> list[str]:
    out = []
    if g.get("hold_during_dwell"):
        out.append("- dwell guard: proposes nothing during the minimum dwell, except a step down while the heart rate reads above the window")
    if g.get("descend_above_bpm") is not None:
        out.append(f"- descend reflex: only steps down proposed while the heart rate reads above {g['descend_above_bpm']:g} bpm over baseline")
    return out


def _dagger(cfg: dict[str, Any]) -> list[str]:
    if cfg.get("warm_start") == "oracle" and cfg.get("dagger_rounds"):
        return [f"- DAgger: {cfg['dagger_rounds']} rounds of {cfg.get('dagger_sessions')} student-driven sessions labelled by the oracle"]
    return []


def render_card(meta: dict[str, Any], evaluation_md: str, goal: dict[str, Any] | None, notes: str = "") -> str:
    """CARD.md text from a policy's ``policy.json`` and its evaluation."""
    tr = meta.get("training") or {}
    cfg = tr.get("config") or {}
    versions = tr.get("versions") or {}
    sc = meta.get("scenario") or {}
    status = "unknown"
    if goal is not None:
        status = "meets the goal" if goal.get("met") else "does NOT meet the goal (see the checks below)"
    lines = [
        f"# Policy card: `{meta.get('id')}` (scenario `{sc.get('id')}`)",
        "",
        f"**Status: {status}.** {meta.get('description', '')}",
        "",
        "This is the policy `exposure-ctrl run` uses by default for this scenario. It proposes one",
        "scene change (or hold) every decision period; the safety shield filters every proposal,",
        "live exactly as in training, and the therapist can always override.",
        "",
        "## Model",
        "",
        f"- kind: `{meta.get('kind')}` (sb3-contrib MaskablePPO, MLP {tuple(cfg.get('net_arch', ()))}, impossible moves masked)",
        f"- file: `{(meta.get('model') or {}).get('file')}`, sha256 `{(meta.get('model') or {}).get('sha256')}`",
        f"- observation: {len((meta.get('observation') or {}).get('names', []))} named columns (arousal features, "
        "online response-model estimates, parameter positions, elapsed time), scaled as the gym and the session build them",
        f"- scenario: `{sc.get('id')}` version {sc.get('version')}, {len(sc.get('parameters', []))} parameters, "
        f"{sc.get('n_actions')} actions, file sha256 `{sc.get('sha256')}`",
        "",
        "## Training",
        "",
        "```",
        str(tr.get("command") or f"exposure-ctrl train --scenario {sc.get('id')} --timesteps {cfg.get('timesteps')} --seed {cfg.get('seed')}"),
        "```",
        "",
        f"- seed: {cfg.get('seed')}; decisions: {tr.get('timesteps'):,}" if isinstance(tr.get("timesteps"), int) else f"- seed: {cfg.get('seed')}",
        f"- cohort: `{tr.get('cohort')}`, split `{tr.get('split')}` (a new training patient every session: domain randomisation); "
        "evaluation uses the disjoint held-out split",
        f"- wall time: {tr.get('wall_s')} s on {((tr.get('machine') or {}).get('cpus'))} CPU(s) (machine shared with other work)",
        "- reward (training only): "
        + ", ".join(f"{k.removeprefix('reward_')} {cfg[k]:g}" for k in cfg if k.startswith("reward_"))
        + (f", potential-based shaping {cfg.get('shaping'):g}" if cfg.get("shaping") else ""),
        "- PPO: " + ", ".join(f"{k} {cfg[k]}" for k in ("n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda", "ent_coef", "clip_range") if k in cfg),
        f"- warm start: imitation of `{cfg.get('warm_start')}` ({cfg.get('warm_start_sessions')} sessions, {cfg.get('warm_start_epochs')} epochs)"
        if cfg.get("warm_start") else "- warm start: none",
        f"- escalation guard: no escalation proposed above {(meta.get('action_guard') or {}).get('no_escalation_above_bpm')} bpm over baseline"
        if (meta.get("action_guard") or {}).get("no_escalation_above_bpm") is not None else "- escalation guard: none",
        *_more_guards(meta.get("action_guard") or {}),
        *_dagger(cfg),
        _selection_line(tr.get("selection")),
        "- software: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "## Evaluation (held-out patients)",
        "",
        evaluation_md.strip(),
        "",
    ]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)
