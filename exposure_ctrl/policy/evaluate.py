"""Evaluation: every policy meets the same held-out simulated patients (paired seeds).

For each policy, ``patients`` held-out patients of the cohort (``split="eval"``, indices
``0..patients-1``) go through a course of ``course_sessions`` sessions with the policy in charge,
all patients in one batch. The generator is seeded with ``seed`` for every policy, and the
simulator draws the same noise whatever the actions, so in the first session every policy sees
the very same patients, baselines and sensor noise: differences are the policies' own.

Per-session metrics (first session of the course; fresh patients), each with a 95% confidence
interval over patients (t-interval of the mean; Wilson for the abort rate):

- ``time_in_window_pct``: share of the planned exposure time (``timing.exposure_max_s``) with
  the fear-driven heart-rate rise (ground truth) inside the window; an abort counts the rest
  of the session as outside;
- ``final_step``: the highest hierarchy step reached (1 = the first step; by intensity);
- ``max_intensity``: the highest scene intensity reached (0..1);
- ``above_ceiling_pct``: share of the exposure time above the ceiling;
- ``abort_pct``: sessions the patient aborted;
- ``changes_per_10min``: executed scene changes (policy, shield or safe state) per 10 minutes.

Over the whole course: ``sessions_to_top``: the session in which the top step was first reached;
a patient who never reached it within the course (or dropped out) counts as ``course_sessions +
1`` (censored; the share who reached it is ``reached_top_pct``).

:func:`evaluate` returns an :class:`Evaluation`; :func:`render_markdown` and
:func:`render_goal` format it, :func:`plot_evaluation` draws it (PNG), :func:`write_evaluation`
writes all three files. Library code: nothing here prints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exposure_ctrl.policy.registry import LoadedPolicy, load_policy
from exposure_ctrl.scenario.model import Scenario

__all__ = [
    "METRICS",
    "Metric",
    "Evaluation",
    "PolicyResult",
    "evaluate",
    "render_markdown",
    "render_goal",
    "goal_check",
    "constraint_checks",
    "plot_evaluation",
    "write_evaluation",
    "mean_ci",
    "wilson_ci",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool | None
    digits: int = 1


METRICS: tuple[Metric, ...] = (
    Metric("time_in_window_pct", "time in window", "%", True),
    Metric("final_step", "final hierarchy step", "", True, 1),
    Metric("max_intensity", "intensity reached", "0..1", True, 2),
    Metric("above_ceiling_pct", "time above ceiling", "%", False, 2),
    Metric("abort_pct", "abort rate", "%", False),
    Metric("changes_per_10min", "changes per 10 min", "", None),
    Metric("sessions_to_top", "sessions to reach the top", "", False, 2),
)


def _t975(df: int) -> float:
    """Two-sided 95% Student t quantile (table for small df, normal beyond)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
    if df <= 0:
        return math.nan
    for k in sorted(table):
        if df <= k:
            return table[k]
    return 1.960


def mean_ci(x: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95% t-interval ``(mean, low, high)``."""
    a = np.asarray(x, dtype=np.float64)
    n = a.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    m = float(a.mean())
    if n == 1:
        return (m, m, m)
    half = _t975(n - 1) * float(a.std(ddof=1)) / math.sqrt(n)
    return (m, m - half, m + half)


def wilson_ci(successes: int, n: int) -> tuple[float, float, float]:
    """A proportion and its 95% Wilson interval, in percent."""
    if n == 0:
        return (math.nan, math.nan, math.nan)
    z = 1.96
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (100 * p, 100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


@dataclasses.dataclass
class PolicyResult:
    """One policy's per-patient values (arrays over patients) and summaries."""

    policy: str
    kind: str
    description: str
    sha256: str | None
    per_patient: dict[str, np.ndarray]
    summary: dict[str, tuple[float, float, float]]
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "kind": self.kind,
            "description": self.description,
            "sha256": self.sha256,
            "wall_s": round(self.wall_s, 2),
            "summary": {k: {"mean": v[0], "ci95": [v[1], v[2]]} for k, v in self.summary.items()},
            "per_patient": {k: [float(x) for x in v] for k, v in self.per_patient.items()},
        }


@dataclasses.dataclass
class Evaluation:
    scenario: str
    scenario_sha256: str | None
    cohort: str
    split: str
    patients: int
    seed: int
    course_sessions: int
    sensor: str
    results: list[PolicyResult]
    versions: dict[str, str]

    def result(self, name: str) -> PolicyResult:
        for r in self.results:
            if r.policy == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "scenario_sha256": self.scenario_sha256,
            "cohort": self.cohort,
            "split": self.split,
            "patients": self.patients,
            "seed": self.seed,
            "course_sessions": self.course_sessions,
            "sensor": self.sensor,
            "versions": self.versions,
            "metrics": [dataclasses.asdict(m) for m in METRICS],
            "results": [r.to_json() for r in self.results],
            "goal": goal_check(self),
        }


def _versions() -> dict[str, str]:
    import platform

    from exposure_ctrl import __version__

    out = {"exposure_ctrl": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:  # only when already imported (a learned policy was evaluated)
        import sys

        for mod in ("torch", "stable_baselines3", "sb3_contrib"):
            if mod in sys.modules:
                out[mod] = str(getattr(sys.modules[mod], "__version__", "?"))
    except Exception:  # pragma: no cover
        pass
    return out


def run_policy(
    sc: Scenario,
    loaded: LoadedPolicy,
    cohort: Any,
    patients: int,
    seed: int,
    course_sessions: int,
    sensor: str = "strap",
    on_step: Callable[[int, int], None] | None = None,
    split: str = "eval",
) -> dict[str, np.ndarray]:
    """Run one policy over the course of ``patients`` held-out patients (``split="train"``:
    training patients, for tuning); per-patient metrics."""
    from exposure_ctrl.sim.batch import SessionBatch, SessionOptions
    from exposure_ctrl.sim.cohorts import get_cohort

    n = int(patients)
    opts = SessionOptions(
        cohort=get_cohort(cohort), split=split, sensor=sensor, recovery=False, course_sessions=int(course_sessions)
    )
    b = SessionBatch(sc, n, opts, np.random.default_rng(seed))
    pol = loaded.policy
    bind = getattr(pol, "bind", None)
    if bind is not None:
        bind(lambda: (b.sim.params, b.sim.patient, b.positions))  # type: ignore[union-attr]
    h = len(sc.hierarchy)
    exposure_max = float(sc.timing.exposure_max_s)
    period = float(sc.timing.decision_period_s)
    steps_per_session = int(math.ceil(exposure_max / period - 1e-9))
    total_steps = steps_per_session * course_sessions
    out: dict[str, np.ndarray] = {}
    in_course = np.ones(n, dtype=bool)
    top_at = np.full(n, course_sessions + 1, dtype=np.float64)
    done_steps = 0
    for s in range(course_sessions):
        if s == 0:
            b.start(np.arange(n), patient_index=np.arange(n))
        else:
            # Every row continues (dropped-out rows too, ignored below), so the generator is
            # consumed the same way whatever the policy did.
            b.course_open[:] = True
            b.start(np.arange(n))
        pol.reset(n)
        obs = b.observation()
        done = np.zeros(n, dtype=bool)
        inw = np.zeros(n)
        above = np.zeros(n)
        changes = np.zeros(n)
        aborted = np.zeros(n, dtype=bool)
        max_int = sc.intensity_of_positions(b.positions).astype(np.float64)
        max_step = b.max_step.astype(np.float64).copy()
        while not done.all():
            actions, _ = pol.act(obs, b.action_masks())
            obs, _, term, info = b.step(actions, active=~done)
            live = ~done
            terms = info["reward_terms"]
            inw += np.where(live, terms["in_window"], 0.0) * period
            above += np.where(live, terms["above_ceiling"], 0.0) * period
            changes += live & (np.asarray(info["executed_action"]) != 0)
            aborted |= live & np.asarray(info["aborted"], dtype=bool)
            max_int = np.where(live, np.maximum(max_int, sc.intensity_of_positions(b.positions)), max_int)
            max_step = np.where(live, b.max_step, max_step)
            done |= np.asarray(term, dtype=bool)
            done_steps += 1
            if on_step is not None:
                on_step(min(done_steps, total_steps), total_steps)
        reached = in_course & (max_step >= h - 1) & (top_at > course_sessions)
        top_at = np.where(reached, s + 1, top_at)
        if s == 0:
            out["time_in_window_pct"] = 100.0 * inw / exposure_max
            out["final_step"] = max_step + 1.0
            out["max_intensity"] = max_int
            out["above_ceiling_pct"] = 100.0 * above / exposure_max
            out["abort_pct"] = 100.0 * aborted.astype(np.float64)
            out["changes_per_10min"] = changes / (exposure_max / 600.0)
        in_course &= ~aborted
        done_steps = steps_per_session * (s + 1)
    out["sessions_to_top"] = top_at
    out["reached_top_pct"] = 100.0 * (top_at <= course_sessions)
    return out


def _summarise(per: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    summ: dict[str, tuple[float, float, float]] = {}
    for k, v in per.items():
        if k in ("abort_pct", "reached_top_pct"):
            summ[k] = wilson_ci(int(round(float(np.sum(v)) / 100.0)), len(v))
        else:
            summ[k] = mean_ci(v)
    return summ


def evaluate(
    scenario: Scenario,
    policies: Sequence[str | LoadedPolicy],
    *,
    cohort: str | None = None,
    patients: int = 100,
    seed: int = 0,
    course_sessions: int = 4,
    sensor: str = "strap",
    on_progress: Callable[[str, int, int], None] | None = None,
    split: str = "eval",
    settings: dict[str, dict[str, Any]] | None = None,
) -> Evaluation:
    """Evaluate ``policies`` (names, directories or loaded policies) on the same patients."""
    from exposure_ctrl.sim.cohorts import cohort_for

    spec = cohort_for(scenario, cohort)
    results: list[PolicyResult] = []
    for ref in policies:
        loaded = (
            ref if isinstance(ref, LoadedPolicy) else load_policy(ref, scenario, live=False, **(settings or {}).get(str(ref), {}))
        )
        t0 = time.monotonic()
        cb = None
        if on_progress is not None:
            name = loaded.id

            def cb(i: int, total: int, _name: str = name) -> None:
                on_progress(_name, i, total)

        per = run_policy(scenario, loaded, spec, patients, seed, course_sessions, sensor, cb, split=split)
        wall = time.monotonic() - t0
        log.info("evaluated %s in %.1f s", loaded.id, wall)
        results.append(
            PolicyResult(
                policy=loaded.id,
                kind=loaded.kind,
                description=loaded.description,
                sha256=loaded.sha256,
                per_patient=per,
                summary=_summarise(per),
                wall_s=wall,
            )
        )
    return Evaluation(
        scenario=scenario.id,
        scenario_sha256=scenario.sha256,
        cohort=spec.name,
        split=split,
        patients=int(patients),
        seed=int(seed),
        course_sessions=int(course_sessions),
        sensor=sensor,
        results=results,
        versions=_versions(),
    )


# --- the goal --------------------------------------------------------------------------------


def constraint_checks(learned: dict[str, float], ref: dict[str, float]) -> dict[str, bool]:
    """The goal's three no-worse constraints of a learned policy against a reference, from their
    summaries' ``final_step``, ``abort_pct`` and ``above_ceiling_pct`` (means): the same
    comparisons for the goal, the training's iterate selection and the card."""
    return {
        "same_or_higher_step": bool(learned["final_step"] >= ref["final_step"] - 1e-9),
        "no_more_aborts": bool(learned["abort_pct"] <= ref["abort_pct"] + 1e-9),
        "no_more_time_above_ceiling": bool(learned["above_ceiling_pct"] <= ref["above_ceiling_pct"] + 1e-9),
    }


def goal_check(ev: Evaluation, learned: str | None = None) -> dict[str, Any] | None:
    """The issue's goal for a learned policy against the best non-oracle baseline and the oracle.

    Needs a learned policy (``learned`` or the first non-rule, non-oracle result), at least one
    baseline and the oracle; returns None otherwise.
    """
    learned_r = None
    for r in ev.results:
        if (learned is not None and r.policy == learned) or (learned is None and r.kind not in ("rule", "online-rl", "oracle")):
            learned_r = r
            break
    oracle = next((r for r in ev.results if r.kind == "oracle"), None)
    baselines = [r for r in ev.results if r.kind in ("rule", "online-rl")]
    if learned_r is None or oracle is None or not baselines:
        return None
    key = "time_in_window_pct"
    best = max(baselines, key=lambda r: r.summary[key][0])
    lw = learned_r.summary[key][0]
    bw = best.summary[key][0]
    ow = oracle.summary[key][0]
    diff = learned_r.per_patient[key] - best.per_patient[key]
    d_mean, d_lo, d_hi = mean_ci(diff)
    rel = lw / bw - 1.0 if bw > 0 else math.inf
    checks = {
        "beats_best_baseline_by_20pct": bool(rel >= 0.20),
        **constraint_checks(
            {k: v[0] for k, v in learned_r.summary.items()}, {k: v[0] for k, v in best.summary.items()}
        ),
        "reaches_85pct_of_oracle": bool(ow > 0 and lw / ow >= 0.85),
    }
    return {
        "learned": learned_r.policy,
        "best_baseline": best.policy,
        "oracle": oracle.policy,
        "time_in_window": {"learned": lw, "best_baseline": bw, "oracle": ow},
        "relative_to_best_baseline": rel,
        "paired_difference_pct_points": {"mean": d_mean, "ci95": [d_lo, d_hi]},
        "fraction_of_oracle": lw / ow if ow > 0 else math.nan,
        "checks": checks,
        "met": all(checks.values()),
    }


# --- rendering -------------------------------------------------------------------------------


def _cell(v: tuple[float, float, float], digits: int) -> str:
    m, lo, hi = v
    if not np.isfinite(m):
        return "–"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def render_markdown(ev: Evaluation) -> str:
    """The evaluation table (and the goal check) as Markdown."""
    lines = [
        f"### Evaluation: scenario `{ev.scenario}`, cohort `{ev.cohort}` ({'held-out' if ev.split == 'eval' else ev.split} split)",
        "",
        f"{ev.patients} held-out patients, seed {ev.seed}, sensor `{ev.sensor}`; per-session metrics from the "
        f"first session, sessions to the top over a course of {ev.course_sessions} "
        f"(not reached = {ev.course_sessions + 1}). Mean [95% CI].",
        "",
    ]
    head = "| policy | " + " | ".join(f"{m.title}{' (' + m.unit + ')' if m.unit else ''}" for m in METRICS) + " |"
    lines.append(head)
    lines.append("|" + "---|" * (len(METRICS) + 1))
    for r in ev.results:
        cells = [_cell(r.summary[m.key], m.digits) for m in METRICS]
        lines.append(f"| {r.policy} | " + " | ".join(cells) + " |")
    g = render_goal(ev)
    if g:
        lines += ["", g]
    return "\n".join(lines) + "\n"


def render_goal(ev: Evaluation) -> str:
    g = goal_check(ev)
    if g is None:
        return ""
    tw = g["time_in_window"]
    d = g["paired_difference_pct_points"]
    c = g["checks"]
    mark = {True: "yes", False: "NO"}
    return "\n".join(
        [
            f"Goal ({g['learned']} vs best baseline {g['best_baseline']} and the oracle): "
            f"time in window {tw['learned']:.1f}% vs {tw['best_baseline']:.1f}% "
            f"({100 * g['relative_to_best_baseline']:+.0f}% relative; paired difference {d['mean']:+.1f} points "
            f"[{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]), {100 * g['fraction_of_oracle']:.0f}% of the oracle's {tw['oracle']:.1f}%.",
            f"- beats the best baseline by >= 20% relative: {mark[c['beats_best_baseline_by_20pct']]}",
            f"- reaches at least the same hierarchy step: {mark[c['same_or_higher_step']]}",
            f"- no more aborts: {mark[c['no_more_aborts']]}",
            f"- no more time above the ceiling: {mark[c['no_more_time_above_ceiling']]}",
            f"- reaches >= 85% of the oracle: {mark[c['reaches_85pct_of_oracle']]}",
            f"- goal met: {mark[g['met']]}",
        ]
    )


def plot_evaluation(ev: Evaluation, path: Path) -> Path:
    """One panel per metric: bars with 95% CI whiskers, one bar per policy (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [r.policy for r in ev.results]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, m in zip(axes.ravel(), METRICS):
        vals = np.array([r.summary[m.key] for r in ev.results])
        mean = vals[:, 0]
        err = np.vstack([mean - vals[:, 1], vals[:, 2] - mean])
        colors = ["#888888" if r.kind in ("rule", "online-rl") else ("#c0504d" if r.kind == "oracle" else "#1f77b4") for r in ev.results]
        ax.bar(range(len(names)), mean, yerr=err, color=colors, capsize=3)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{m.title}{' (' + m.unit + ')' if m.unit else ''}", fontsize=10)
    ax = axes.ravel()[-1]
    ax.axis("off")
    ax.text(0.0, 0.9, f"scenario {ev.scenario}\ncohort {ev.cohort} (held out)\n{ev.patients} patients, seed {ev.seed}\n"
            "grey: baselines, red: oracle,\nblue: learned; whiskers: 95% CI", va="top", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_evaluation(ev: Evaluation, out_dir: Path, stem: str = "evaluation") -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>.json`` and ``<stem>.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{stem}.md"
    md.write_text(render_markdown(ev), encoding="utf-8")
    js = out_dir / f"{stem}.json"
    js.write_text(json.dumps(ev.to_json(), indent=1, default=float) + "\n", encoding="utf-8")
    png = plot_evaluation(ev, out_dir / f"{stem}.png")
    return {"markdown": md, "json": js, "png": png}
