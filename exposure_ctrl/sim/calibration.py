"""Calibration protocols: cohort statistics compared with the bands in ``docs/simulator.md``.

Each protocol runs a cohort through a fixed, policy-free schedule on the batched simulator and
returns plain numbers. The calibration tests (``tests/sim/test_calibration.py``) assert that they
fall inside the documented bands; ``benchmarks/bench_sim.py --calibration`` prints them.

Protocols (all start with the scenario's resting baseline phase in the safe state):

- :func:`top_rise`: jump to the top of the hierarchy; the rise is the strap's mean heart rate
  60-120 s later minus its mean over the last 120 s of the baseline.
- :func:`habituation_half_time`: hold the hierarchy step whose (unhabituated) steady-state fear is
  closest to ``level`` (0.7: inside the window for the median patient) for 40 minutes; the
  half-time is when the fear-driven heart-rate rise (60-s mean) first falls to half of its peak.
- :func:`recovery`: hold that step 5 minutes, then the safe state; time until the fear-driven
  rise has fallen by half, and the fraction still left 10 minutes later.
- :func:`suds_hr_correlation`: hold a random hierarchy step 3 minutes; correlation across
  patients between the SUDS rating at the end and the strap's heart rate above baseline over
  the last minute.
- :func:`rmssd_drop`: RMSSD (RR intervals of the strap) over the last 120 s of the baseline vs.
  60-180 s at the top of the hierarchy, among patients whose rise there is at least 12 bpm.
- :func:`abort_rate`: courses of ``sessions`` sessions in the vector environment under a given
  controller (the calibration uses a window-keeping rule built on the policy layer's hierarchy
  navigation, passed in so that this module stays below the policy layer); the fraction of
  patients who abort at least once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim.cohorts import CohortSpec, Mixture, Split, sample_patients
from exposure_ctrl.sim.patient import PatientParams, scene_drive
from exposure_ctrl.sim.simulator import SimStep, Simulator

__all__ = [
    "Stats",
    "top_rise",
    "habituation_half_time",
    "recovery",
    "suds_hr_correlation",
    "rmssd_drop",
    "BANDS",
    "run_all",
]


@dataclasses.dataclass(frozen=True)
class Stats:
    """A named set of numbers from one protocol."""

    name: str
    values: dict[str, float]

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v:.3g}" for k, v in self.values.items())
        return f"{self.name}: {inner}"


# Documented bands: statistic → (low, high). Sources in docs/simulator.md.
BANDS: dict[str, dict[str, tuple[float, float]]] = {
    "top_rise": {"mean_bpm": (10.0, 18.0), "cv": (0.3, 0.8), "frac_below_5": (0.01, 0.2)},
    "top_rise_severe": {"mean_bpm": (14.0, 26.0), "cv": (0.3, 0.8)},
    "habituation_half_time": {"median_min": (5.0, 20.0)},
    "recovery": {"median_half_s": (15.0, 90.0), "median_left_at_10min": (0.02, 0.3)},
    "suds_hr_correlation": {"r": (0.3, 0.6)},
    "rmssd_drop": {"median_drop": (0.2, 0.4)},
    "abort_rate_severe": {"per_course": (0.05, 0.15)},
}


def _patients(sc: Scenario, cohort: str | CohortSpec | Mixture, n: int, split: Split, first: int) -> PatientParams:
    return sample_patients(sc, cohort, np.arange(first, first + n), split=split)


def _sim(sc: Scenario, params: PatientParams, seed: int, sensor: str = "strap") -> Simulator:
    return Simulator(sc, params, rng=np.random.default_rng(seed), sensor=sensor)


def _run(sim: Simulator, positions: np.ndarray, seconds: float) -> list[SimStep]:
    n = sim.n
    pos = np.broadcast_to(np.asarray(positions, dtype=np.int64), (n, sim.scenario.n_parameters))
    steps = int(round(seconds / sim.grid.period_s))
    return [sim.step(pos) for _ in range(steps)]


def _safe(sc: Scenario) -> np.ndarray:
    return np.asarray(sc.positions(sc.safe_state), dtype=np.int64)


def _mean_bpm(steps: Sequence[SimStep]) -> np.ndarray:
    """Mean of the strap's usable bpm over the steps (N,)."""
    num = 0.0
    den = 0.0
    for s in steps:
        f = s.frames
        ok = f.present & (f.contact != 0) & (f.bpm > 0)
        num = num + np.where(ok, f.bpm, 0.0).sum(axis=0)
        den = den + ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _rmssd(steps: Sequence[SimStep]) -> np.ndarray:
    """RMSSD (ms) of the RR intervals delivered over the steps.

    Successive differences over each patient's delivered intervals in order; a pair is skipped
    when either interval deviates more than 20 % from the patient's median (ectopic beats).
    """
    rr = np.concatenate(
        [np.where(s.frames.present[:, :, None], s.frames.rr_ms, np.nan).transpose(1, 0, 2).reshape(s.frames.bpm.shape[1], -1) for s in steps],
        axis=1,
    )  # (N, T*M) with NaN padding
    out = np.full(rr.shape[0], np.nan)
    for i, row in enumerate(rr):
        x = row[np.isfinite(row)]
        if x.size < 3:
            continue
        med = np.median(x)
        good = np.abs(x - med) <= 0.2 * med
        d = np.diff(x)
        pair = good[1:] & good[:-1]
        if pair.any():
            out[i] = float(np.sqrt(np.mean(d[pair] ** 2)))
    return out


def _baseline(sc: Scenario, sim: Simulator) -> list[SimStep]:
    return _run(sim, _safe(sc), sc.timing.baseline_s)


def _rested(
    sc: Scenario, cohort: str | CohortSpec | Mixture, n: int, split: Split, first: int, seed: int, sensor: str = "strap"
) -> tuple[PatientParams, Simulator, list[SimStep]]:
    """Patients of a protocol, their simulator, and the resting baseline they have been through."""
    params = _patients(sc, cohort, n, split, first)
    sim = _sim(sc, params, seed, sensor=sensor)
    return params, sim, _baseline(sc, sim)


def _arousal(steps: Sequence[SimStep]) -> np.ndarray:
    """The true fear-driven rise of every patient over the steps, (T, N) at the simulator's dt."""
    return np.concatenate([s.trace.arousal_bpm for s in steps], axis=0)


def top_rise(
    sc: Scenario, cohort: str | CohortSpec | Mixture, n: int = 400, seed: int = 0, first: int = 0, split: Split = "calibration"
) -> Stats:
    params, sim, base = _rested(sc, cohort, n, split, first, seed)
    rest = _mean_bpm(base[-int(120 / sim.grid.period_s) :])
    top = _run(sim, sc.hierarchy_positions[-1], 120.0)
    rise = _mean_bpm(top[int(60 / sim.grid.period_s) :]) - rest
    rise = rise[np.isfinite(rise)]
    return Stats(
        "top_rise",
        {
            "mean_bpm": float(rise.mean()),
            "sd_bpm": float(rise.std()),
            "cv": float(rise.std() / rise.mean()),
            "p5_bpm": float(np.percentile(rise, 5)),
            "p95_bpm": float(np.percentile(rise, 95)),
            "frac_below_5": float((rise < 5).mean()),
            "frac_above_30": float((rise > 30).mean()),
        },
    )


def _step_near(sc: Scenario, params: PatientParams, level: float) -> np.ndarray:
    """Per patient, the hierarchy step whose unhabituated drive is closest to ``level``: (N, K)."""
    n, k = params.n, sc.n_parameters
    hp = sc.hierarchy_positions
    drives = np.stack(
        [scene_drive(params, np.broadcast_to(hp[i], (n, k)), np.zeros((n, k)))[0] for i in range(len(hp))],
        axis=1,
    )
    best = np.argmin(np.abs(drives - level), axis=1)
    return hp[best]


def _moving(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing moving average along axis 0 (T, N) with window ``w`` (first w-1 rows partial)."""
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), x], axis=0), axis=0)
    idx = np.arange(1, x.shape[0] + 1)
    lo = np.maximum(idx - w, 0)
    return (c[idx] - c[lo]) / (idx - lo)[:, None]


def habituation_half_time(
    sc: Scenario,
    cohort: str | CohortSpec | Mixture,
    n: int = 200,
    seed: int = 0,
    level: float = 0.7,
    hold_min: float = 40.0,
    first: int = 0,
    split: Split = "calibration",
) -> Stats:
    params, sim, _ = _rested(sc, cohort, n, split, first, seed, sensor="ideal")
    steps = _run(sim, _step_near(sc, params, level), hold_min * 60.0)
    ar = _arousal(steps)
    dt = sim.grid.dt_s
    sm = _moving(ar, int(round(60 / dt)))
    peak_i = int(round(180 / dt))
    peak = sm[:peak_i].max(axis=0)
    after = np.arange(sm.shape[0])[:, None] >= np.argmax(sm[:peak_i], axis=0)[None, :]
    below = (sm <= 0.5 * peak) & after
    t_half = np.where(below.any(axis=0), np.argmax(below, axis=0) * dt / 60.0, np.inf)
    return Stats(
        "habituation_half_time",
        {
            "median_min": float(np.median(t_half)),
            "p25_min": float(np.percentile(t_half, 25)),
            "p75_min": float(np.percentile(t_half, 75)),
            "frac_not_halved": float(np.mean(~np.isfinite(t_half))),
            "aborted": float(sim.patient.aborted.mean()),
        },
    )


def recovery(
    sc: Scenario,
    cohort: str | CohortSpec | Mixture,
    n: int = 200,
    seed: int = 0,
    level: float = 0.7,
    first: int = 0,
    split: Split = "calibration",
) -> Stats:
    params, sim, _ = _rested(sc, cohort, n, split, first, seed, sensor="ideal")
    _run(sim, _step_near(sc, params, level), 300.0)
    at_switch = sim.arousal_bpm()
    steps = _run(sim, _safe(sc), 660.0)
    ar = _arousal(steps)
    dt = sim.grid.dt_s
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = ar / at_switch[None, :]
    half = rel <= 0.5
    t_half = np.where(half.any(axis=0), (np.argmax(half, axis=0) + 1) * dt, np.inf)
    left = rel[int(round(600 / dt)) - 1]
    ok = at_switch > 1.0
    return Stats(
        "recovery",
        {
            "median_half_s": float(np.median(t_half[ok])),
            "p90_half_s": float(np.percentile(t_half[ok], 90)),
            "median_left_at_10min": float(np.median(left[ok])),
        },
    )


def suds_hr_correlation(
    sc: Scenario,
    cohort: str | CohortSpec | Mixture,
    n: int = 400,
    seed: int = 0,
    first: int = 0,
    split: Split = "calibration",
) -> Stats:
    params, sim, base = _rested(sc, cohort, n, split, first, seed)
    rest = _mean_bpm(base[-int(120 / sim.grid.period_s) :])
    pick = np.random.default_rng(seed + 1).integers(0, len(sc.hierarchy), size=n)
    steps = _run(sim, sc.hierarchy_positions[pick], 180.0)
    rise = _mean_bpm(steps[-int(60 / sim.grid.period_s) :]) - rest
    suds = steps[-1].trace.suds
    ok = np.isfinite(rise) & ~sim.patient.aborted
    r = float(np.corrcoef(suds[ok], rise[ok])[0, 1])
    return Stats("suds_hr_correlation", {"r": r, "n": float(ok.sum())})


def rmssd_drop(
    sc: Scenario,
    cohort: str | CohortSpec | Mixture,
    n: int = 200,
    seed: int = 0,
    first: int = 0,
    split: Split = "calibration",
) -> Stats:
    params, sim, base = _rested(sc, cohort, n, split, first, seed)
    k = int(120 / sim.grid.period_s)
    rest_rmssd = _rmssd(base[-k:])
    rest = _mean_bpm(base[-k:])
    top = _run(sim, sc.hierarchy_positions[-1], 180.0)
    high = top[int(60 / sim.grid.period_s) :]
    top_rmssd = _rmssd(high)
    rise = _mean_bpm(high) - rest
    sel = (rise >= 12.0) & np.isfinite(rest_rmssd) & np.isfinite(top_rmssd)
    drop = 1.0 - top_rmssd[sel] / rest_rmssd[sel]
    return Stats(
        "rmssd_drop",
        {
            "median_drop": float(np.median(drop)),
            "median_rest_ms": float(np.median(rest_rmssd)),
            "n": float(sel.sum()),
        },
    )


Controller = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``controller(hr_above_bpm (N,), positions (N, K), new_session (N,)) -> actions (N,)``; may keep
state (``new_session`` marks the sessions that just started)."""


def abort_rate(
    sc: Scenario,
    cohort: str | CohortSpec | Mixture,
    make_controller: Callable[[Scenario, int], Controller],
    n: int = 64,
    sessions: int = 4,
    seed: int = 0,
) -> Stats:
    """Fraction of ``n`` patients who abort during a course of ``sessions`` sessions."""
    from exposure_ctrl.arousal import Feature
    from exposure_ctrl.sim.vector_env import ExposureVectorEnv

    env = ExposureVectorEnv(n, sc, cohort, recovery=False, course_sessions=sessions, split="calibration")
    env.reset(seed=seed, options={"patient_index": np.arange(n)})
    b = env._batch
    control = make_controller(sc, n)
    aborted = np.zeros(n, dtype=bool)
    over = np.zeros(n, dtype=bool)
    finished = np.zeros(n, dtype=np.int64)
    in_window = []
    steps = int(round(sc.timing.exposure_max_s / sc.timing.decision_period_s))
    new = np.ones(n, dtype=bool)
    for _ in range((steps + 1) * sessions + 1):
        a = control(b._tracker_obs[:, Feature.HR_ABOVE_BPM].copy(), b.positions.copy(), new)
        _, _, term, _, info = env.step(a)
        new = info["autoreset"].copy()
        live = ~info["autoreset"] & ~over
        aborted |= info["aborted"] & live
        in_window.append(np.where(live, info["reward_terms"]["in_window"], np.nan))
        finished += term & live
        over |= aborted | (finished >= sessions)
        if over.all():
            break
    return Stats(
        "abort_rate",
        {"per_course": float(aborted.mean()), "in_window": float(np.nanmean(in_window)), "n": float(n)},
    )


def run_all(sc: Scenario, cohort: str | CohortSpec | Mixture, seed: int = 0) -> list[Stats]:
    """Every protocol on one cohort (a few seconds)."""
    return [
        top_rise(sc, cohort, seed=seed),
        habituation_half_time(sc, cohort, seed=seed),
        recovery(sc, cohort, seed=seed),
        suds_hr_correlation(sc, cohort, seed=seed),
        rmssd_drop(sc, cohort, seed=seed),
    ]
