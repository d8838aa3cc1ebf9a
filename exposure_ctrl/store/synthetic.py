"""Synthetic session records, written through the ordinary writer API.

For tests, benchmarks and demonstrations of the store and the review report only: the heart rate
here is a scripted toy (a first-order response to the scene's intensity with habituation and
noise), not the simulated patient of :mod:`exposure_ctrl.sim`, and the "policy" is a fixed rule.
Everything is deterministic for a given ``seed``. No real person's data is involved.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING

import numpy as np

from exposure_ctrl.sensors.sample import HeartSample, Quality

if TYPE_CHECKING:
    from exposure_ctrl.scenario import Scenario
    from exposure_ctrl.store.db import Store

__all__ = ["SyntheticPlan", "write_synthetic_session"]


@dataclasses.dataclass(frozen=True)
class SyntheticPlan:
    """What happens in a synthetic session (times in session seconds)."""

    baseline_s: float = 180.0
    exposure_s: float = 900.0
    recovery_s: float = 120.0
    sample_period_s: float = 1.0
    decision_period_s: float = 5.0
    rest_bpm: float = 72.0
    reactivity_bpm: float = 60.0  # rise per unit of intensity before habituation
    habituation_tau_s: float = 240.0
    sensor_gap: tuple[float, float] | None = (600.0, 625.0)
    headset_gap: tuple[float, float] | None = (800.0, 806.0)
    surge: tuple[float, float, float] | None = (470.0, 500.0, 18.0)  # start, end, extra bpm
    outcome: str = "completed"
    mode: str = "autonomous"
    end: bool = True  # False: the record stops as after a crash


def write_synthetic_session(
    store: "Store",
    scenario: "Scenario",
    *,
    patient: str = "P-0001",
    seed: int = 0,
    plan: SyntheticPlan = SyntheticPlan(),
    started_at: _dt.datetime | None = None,
    commit_interval_s: float = 0.25,
) -> int:
    """Write one complete synthetic session into ``store``; return its id."""
    rng = np.random.default_rng(seed)
    sc = scenario
    started = started_at or _dt.datetime(2026, 3, 2, 9, 0, tzinfo=_dt.timezone.utc)
    tg = sc.targets
    w = store.begin_session(
        patient=patient,
        scenario=sc,
        mode=plan.mode,
        policy_id=f"{sc.id}/rule-climb",
        policy_sha256="0" * 64,
        seed=seed,
        settings={"synthetic": True, "plan": dataclasses.asdict(plan)},
        started_at=started,
        t_origin=0.0,
        commit_interval_s=commit_interval_s,
    )
    with w:
        t_exp = plan.baseline_s
        t_rec = t_exp + plan.exposure_s
        t_end = t_rec + plan.recovery_s
        w.phase(0.0, "baseline", "session start")
        w.headset_event(0.0, "connected", {"client": "synthetic"})
        w.sensor_event(0.0, "connected", {"source": "synthetic"})
        safe = dict(sc.safe_state)
        c = w.scene_change(0.0, safe, trigger="system", who="system", reason="baseline", sent_t=0.0)
        w.scene_acked(c, 0.02)

        pos = np.array(sc.positions(sc.start))
        step_i = 0
        hab = 0.0  # habituated fraction at the current level (0..1)
        level_since = t_exp
        last_change = -1e9
        arousal = 0.0
        current = safe
        sensor_gap_id = headset_gap_id = None
        baseline_samples: list[float] = []
        t = 0.0
        next_decision = t_exp
        started_exposure = False
        while t < t_end:
            # --- phase changes
            if t >= t_exp and not started_exposure:
                started_exposure = True
                w.phase(t, "exposure", "baseline done")
                current = sc.state_at(pos)
                c = w.scene_change(t, current, trigger="system", who="system",
                                   reason="exposure starts at the first step", sent_t=t)
                w.scene_acked(c, t + 0.03)
                level_since, last_change = t, t
                w.suds(t + 1, int(rng.integers(20, 35)), "therapist", "therapist")
            if plan.end is False and t >= t_rec - 60:
                break  # the record just stops (as after kill -9)
            if t_rec <= t < t_rec + plan.sample_period_s and current is not safe:
                w.phase(t, "recovery", "exposure time over")
                c = w.scene_change(t, safe, trigger="system", who="system", reason="recovery",
                                   sent_t=t)
                w.scene_acked(c, t + 0.02)
                current = safe
            # --- heart rate
            intensity = sc.intensity(current) if current is not safe else 0.0
            target = plan.reactivity_bpm * intensity * (1.0 - 0.6 * hab)
            arousal += (target - arousal) * min(1.0, plan.sample_period_s / 20.0)
            if t_exp <= t < t_rec:
                hab = 1.0 - np.exp(-(t - level_since) / plan.habituation_tau_s)
            if plan.surge and plan.surge[0] <= t < plan.surge[1]:
                arousal += (plan.surge[2] - arousal + target) * 0.3  # a startle
            bpm = plan.rest_bpm + arousal + rng.normal(0, 1.5)
            in_sensor_gap = plan.sensor_gap and plan.sensor_gap[0] <= t < plan.sensor_gap[1]
            if plan.sensor_gap and t >= plan.sensor_gap[0] and sensor_gap_id is None:
                sensor_gap_id = w.gap_start(t, "sensor", "strap disconnected")
                w.sensor_event(t, "disconnected", {"reason": "synthetic dropout"})
            if plan.sensor_gap and t >= plan.sensor_gap[1] and sensor_gap_id in w.open_gaps:
                w.gap_end(sensor_gap_id, t)
                w.sensor_event(t, "reconnected", {})
            if plan.headset_gap and t >= plan.headset_gap[0] and headset_gap_id is None:
                headset_gap_id = w.gap_start(t, "headset", "no heartbeat for timeout_s")
                w.headset_event(t, "lost", {"timeout_s": 3.0})
            if plan.headset_gap and t >= plan.headset_gap[1] and headset_gap_id in w.open_gaps:
                w.gap_end(headset_gap_id, t)
                w.headset_event(t, "connected", {"client": "synthetic", "resumed": True})
            if not in_sensor_gap:
                flags = Quality(0)
                if rng.random() < 0.01:
                    flags = Quality.RR_ECTOPIC
                rr = 60000.0 / bpm
                w.sample(HeartSample(t=t, bpm=round(bpm, 1), rr_ms=(rr,), contact=True,
                                     source="synthetic", flags=flags))
                if t < t_exp:
                    baseline_samples.append(bpm)
            # --- decisions
            if t_exp <= t < t_rec and t >= next_decision:
                next_decision += plan.decision_period_s
                rise = arousal
                obs = {"hr_above_baseline": round(rise, 2), "step": step_i}
                mask = sc.action_mask(pos)
                blind = bool(in_sensor_gap) or bool(
                    plan.headset_gap and plan.headset_gap[0] <= t < plan.headset_gap[1])
                target_step = min(step_i + 1, len(sc.hierarchy) - 1)
                proposal = 0
                if rise < tg.arousal_window_bpm.low and t - last_change >= sc.timing.min_dwell_s:
                    diff = sc.hierarchy_positions[target_step] - pos
                    ups = [k for k in range(len(pos)) if diff[k] > 0]
                    if ups:
                        proposal = sc.action_of(sc.parameter_ids[ups[0]], "up")
                elif rise > tg.arousal_window_bpm.high + 2 and t - last_change >= 10:
                    downs = [k for k in range(len(pos)) if pos[k] > 0 and sc.parameters[k].role
                             == "stimulus"]
                    if downs:
                        proposal = sc.action_of(sc.parameter_ids[downs[-1]], "down")
                if proposal and not mask[proposal]:
                    proposal = 0
                verdict, vreason, executed = "allow", None, proposal
                going_up = proposal and (proposal - 1) % 2 == 0
                if blind and going_up:
                    verdict, vreason, executed = "block", "blind", 0
                elif rise > tg.ceiling_bpm and going_up:
                    verdict, vreason, executed = "block", "above_ceiling", 0
                elif rise > tg.ceiling_bpm:
                    k = int(np.argmax(np.where(pos > 0, sc.intensity_table[
                        np.arange(len(pos)), pos], -1)))
                    executed = sc.action_of(sc.parameter_ids[k], "down")
                    verdict, vreason = "replace", "ceiling_sustained"
                label = sc.describe_action(proposal, pos)
                w.decision(
                    t, mode=plan.mode, phase="exposure", observation=obs,
                    proposed_action=proposal, proposed_label=label,
                    proposal_reason=("arousal below the window; climb toward step "
                                     f"{target_step + 1}" if going_up else
                                     "arousal above the window" if proposal else
                                     "in the window: hold"),
                    verdict=verdict, verdict_reason=vreason, executed_action=executed,
                    executed_label=sc.describe_action(executed, pos),
                )
                if executed:
                    new = sc.apply_action(pos, executed)
                    if not np.array_equal(new, pos):
                        pos = new
                        current = sc.state_at(pos)
                        trig = "policy" if verdict == "allow" else "shield"
                        c = w.scene_change(t, current, trigger=trig, who=trig,
                                           reason=vreason or label, sent_t=t + 0.001)
                        w.scene_acked(c, t + 0.001 + float(rng.uniform(0.02, 0.12)))
                        last_change = t
                        idx = sc.hierarchy_index(current)
                        if idx > step_i or (executed - 1) % 2 == 1:
                            step_i = max(step_i, idx)
                            level_since = t
                            hab *= 0.3
            # --- occasional SUDS, estimates, a therapist step
            if t_exp < t < t_rec and int(t) % 120 == 0 and float(t).is_integer():
                w.suds(t, int(np.clip(25 + arousal * 2.5 + rng.normal(0, 5), 0, 100)),
                       "headset" if int(t) % 240 == 0 else "therapist", "therapist")
                w.model_estimate(
                    t,
                    {p.id: {"mean": float(abs(rng.normal(8.0 * p.weight, 2.0))),
                            "sd": float(6.0 / (1 + (t - t_exp) / 300))}
                     for p in sc.parameters},
                    detail={"sensitivities": [f"{p.title or p.id}: synthetic"
                                              for p in sc.parameters[:2]]},
                )
            if abs(t - (t_exp + 0.5 * plan.exposure_s)) < plan.sample_period_s / 2:
                w.note(t, "Patient reports the spider 'looks less real' now.", "therapist")
                w.command(t, "therapist", "hold", {"seconds": 30}, "ok")
            if abs(t - (t_exp + 0.7 * plan.exposure_s)) < plan.sample_period_s / 2:
                contrib = np.where(pos > 0, sc.intensity_table[np.arange(len(pos)), pos], -1.0)
                k = int(np.argmax(contrib)) if contrib.max() > 0 else None
                if k is not None:
                    pos = sc.apply_action(pos, sc.action_of(sc.parameter_ids[k], "down"))
                    current = sc.state_at(pos)
                    c = w.scene_change(t, current, trigger="therapist", who="therapist",
                                       reason="patient asked for a pause", sent_t=t)
                    w.scene_acked(c, t + 0.05)
                    w.command(t, "therapist", "step_down", {}, "ok")
                    last_change = t
            if t == t_exp:
                if len(baseline_samples) >= 5:
                    w.baseline(t_exp, float(np.mean(baseline_samples)),
                               float(np.std(baseline_samples)), 0.98, len(baseline_samples))
            t = round(t + plan.sample_period_s, 6)
        if plan.end:
            w.phase(t_end, "ended", plan.outcome)
            w.end(t_end, plan.outcome, "synthetic session")
    return w.session_id
