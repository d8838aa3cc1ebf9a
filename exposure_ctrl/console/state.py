"""What the live page shows, as JSON: a pure function of the runner's snapshot and the scenario.

:func:`live_state` turns a :class:`~exposure_ctrl.session.runner.Snapshot` (plus a few facts the
console knows: patient, session id, when the session started) into one JSON-ready dict that the
page renders as it is. Heart-rate points are sent incrementally (:func:`hr_points`): the first
message of a stream carries the last minutes, later ones only the new points.

Nothing here touches the network or the loop; the server calls it on every push.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from exposure_ctrl.scenario.model import Scenario

__all__ = ["live_state", "hr_points", "signal_quality", "zone_of", "scene_rows", "HISTORY_SPAN_S", "MESSAGES_SHOWN"]

HISTORY_SPAN_S = 600.0
"""Heart rate kept on the page: the last ten minutes of session time."""

MESSAGES_SHOWN = 12

_STRAP_OK = ("connected", "streaming")


def _num(x: Any, digits: int = 1) -> float | None:
    """A finite float rounded for the wire, else None (JSON has no NaN)."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return round(f, digits) if math.isfinite(f) else None


def signal_quality(since_clean_s: float | None, strap_status: str, stale_after_s: float) -> tuple[str, str]:
    """``(level, text)``: ``waiting`` (nothing yet), ``good``, ``degraded`` (clean samples come,
    but with gaps or artifacts), ``lost`` (blind: no clean sample for ``stale_after_s``)."""
    if strap_status in ("disconnected", "ended"):
        return "lost", f"strap {strap_status}"
    if since_clean_s is None or not math.isfinite(since_clean_s):
        return "waiting", "waiting for the first clean sample"
    if since_clean_s >= stale_after_s:
        return "lost", f"no clean heart rate for {since_clean_s:.0f} s"
    if since_clean_s > min(3.0, stale_after_s / 2):
        return "degraded", f"last clean sample {since_clean_s:.0f} s ago"
    return "good", "clean samples"


def zone_of(above_bpm: float | None, sc: Scenario) -> str:
    """Where the heart rate lies relative to the targets: ``unknown``, ``below`` the window,
    ``window``, ``above`` it, or over the ``ceiling``."""
    if above_bpm is None or not math.isfinite(above_bpm):
        return "unknown"
    t = sc.targets
    if above_bpm > t.ceiling_bpm:
        return "ceiling"
    if above_bpm > t.arousal_window_bpm.high:
        return "above"
    if above_bpm >= t.arousal_window_bpm.low:
        return "window"
    return "below"


def _label(p: Any, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(p.label(p.index_of(value)))  # continuous labels carry their unit
    except (ValueError, KeyError, IndexError, TypeError):
        return str(value)


def scene_rows(sc: Scenario, commanded: Mapping[str, Any], shown: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter: the commanded and the shown level, and how feared it is (level
    index of ``n_levels``)."""
    rows = []
    for p in sc.parameters:
        cmd = commanded.get(p.id)
        seen = shown.get(p.id)
        try:
            index = p.index_of(cmd) if cmd is not None else None
        except (ValueError, KeyError, TypeError):
            index = None
        rows.append(
            {
                "id": p.id,
                "title": p.title or p.id.replace("_", " "),
                "role": p.role,
                "commanded": _label(p, cmd),
                "shown": _label(p, seen),
                "index": index,
                "n_levels": p.n_levels,
                "differs": cmd is not None and seen is not None and cmd != seen,
            }
        )
    return rows


def hr_points(history: Iterable[tuple[float, float]], *, after_t: float | None, now_t: float,
              origin: float = 0.0, span_s: float = HISTORY_SPAN_S) -> list[list[float]]:
    """``[[t - origin, bpm], …]`` of the points newer than ``after_t`` (all of the last
    ``span_s`` before ``now_t`` when None). ``after_t`` and ``now_t`` are on the history's clock;
    the result is in session seconds when ``origin`` is the session's start."""
    lo = now_t - span_s
    out = []
    for t, bpm in history:
        if (after_t is not None and t <= after_t) or t < lo:
            continue
        out.append([round(float(t) - origin, 2), round(float(bpm), 1)])
    return out


def live_state(
    snap: Any,
    sc: Scenario,
    *,
    patient: str,
    session_id: int | None,
    t0: float | None,
    suds_history: Sequence[tuple[float, int, str]] = (),
) -> dict[str, Any]:
    """Everything the live page shows except the heart-rate points (see :func:`hr_points`).

    ``snap``: the runner's snapshot; ``t0``: the session clock at the start (for the elapsed
    time); ``suds_history``: ``(t, value, source)`` of every rating so far.
    """
    targets = sc.targets
    quality, quality_text = signal_quality(snap.since_clean_s, snap.sensor_status, sc.safety.stale_after_s)
    step = int(snap.hierarchy_index)
    n_steps = len(sc.hierarchy)
    step_name = sc.hierarchy[step].name if 0 <= step < n_steps else "below the first step"
    ended = snap.phase == "ended"
    headset = str(snap.headset_status)
    return {
        "session": {
            "id": session_id,
            "patient": patient,
            "scenario_id": sc.id,
            "scenario": sc.title,
            "mode": snap.mode,
            "t": _num(snap.t, 2),
            "elapsed_s": _num(snap.t - t0, 1) if t0 is not None else None,
            "phase": snap.phase,
            "phase_elapsed_s": _num(snap.t - snap.phase_started_t, 1),
            "paused": bool(snap.paused),
            "latched": bool(snap.latched),
            "latch_reason": snap.latch_reason,
            "awaiting_baseline_confirmation": bool(snap.awaiting_baseline_confirmation),
            "ended": ended,
            "outcome": snap.outcome,
            "end_reason": snap.end_reason,
        },
        "heart": {
            "bpm": _num(snap.hr_bpm),
            "above_bpm": _num(snap.hr_above_bpm),
            "baseline_bpm": _num(snap.baseline_bpm),
            "baseline_verdict": snap.baseline_verdict,
            "rmssd_ms": _num(snap.rmssd_ms),
            "since_clean_s": _num(snap.since_clean_s),
            "quality": quality,
            "quality_text": quality_text,
            "zone": zone_of(snap.hr_above_bpm, sc),
            "window_bpm": [targets.arousal_window_bpm.low, targets.arousal_window_bpm.high],
            "ceiling_bpm": targets.ceiling_bpm,
            "hard_max_bpm": targets.hard_max_bpm,
        },
        "suds": {
            "last": snap.suds,
            "window": [targets.suds_window.low, targets.suds_window.high],
            "history": [[_num(t, 2), int(v), str(src)] for t, v, src in suds_history],
        },
        "scene": {
            "intensity": _num(snap.intensity, 3),
            "step": step,
            "steps": n_steps,
            "step_name": step_name,
            "parameters": scene_rows(sc, snap.state, snap.shown_state),
        },
        "policy": {
            "action": snap.last_policy_action,
            "reason": snap.last_policy_reason,
            "proposal": snap.pending_proposal,
        },
        "shield": {
            "last": snap.last_shield,
            "last_intervention": snap.last_intervention,
            "latched": bool(snap.latched),
        },
        "devices": {
            "strap": snap.sensor_status,
            "strap_ok": snap.sensor_status in _STRAP_OK,
            "headset": headset,
            "headset_ok": headset.startswith("connected"),
        },
        "alarms": list(snap.alarms),
        "messages": list(snap.messages)[-MESSAGES_SHOWN:],
        "sensitivities": list(snap.sensitivities),
    }
