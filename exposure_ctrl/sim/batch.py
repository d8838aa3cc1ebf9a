"""Sessions of N simulated patients in lockstep: the engine behind both environments.

One session per patient slot ("row"): a baseline phase in the safe scene (run while the row is
reset), the exposure phase one decision period per :meth:`SessionBatch.step`, and at the end a
recovery phase in the safe scene. Inside every step, exactly as live: the arousal tracker's
features feed the safety shield, the shield filters the policy's action, the scene changes, the
patient and the sensor advance one period, the tracker ingests the sensor's samples (and a SUDS
rating when one is due) and produces the next observation.

:class:`~exposure_ctrl.sim.env.ExposureEnv` is this with N = 1;
:class:`~exposure_ctrl.sim.vector_env.ExposureVectorEnv` with N patients.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from exposure_ctrl import __version__
from exposure_ctrl.arousal import ArousalTracker, Feature
from exposure_ctrl.errors import ConfigError
from exposure_ctrl.safety import (
    NO_COMMAND,
    Reason,
    SafetyInputs,
    ShieldConfig,
    ShieldState,
    Verdict,
    resume,
    shield_step_into,
)
from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim import kernels as K
from exposure_ctrl.sim import patient as pt
from exposure_ctrl.sim.arrays import put_rows, take_rows
from exposure_ctrl.sim.cohorts import EVAL_SIZE, CohortSpec, Mixture, Split, sample_patients
from exposure_ctrl.sim.noise import NoiseLayout, split_noise
from exposure_ctrl.sim.observation import ObservationLayout
from exposure_ctrl.sim.records import Recorder, SessionEnd, SessionStart, StepRecord
from exposure_ctrl.sim.reward import RewardConfig
from exposure_ctrl.sim.sensors import SensorConfig
from exposure_ctrl.sim.simulator import Simulator

__all__ = ["SessionOptions", "SessionBatch", "safety_inputs", "true_sensitivities"]

_TRAIN_INDICES = 2**31
_FEW_ROWS = 4  # a step in which at most this many rows change the scene takes the per-row path
_MEMO_SIZE = 100_000  # entries kept per table of per-row results before it is emptied


@dataclasses.dataclass(frozen=True)
class SessionOptions:
    """Settings shared by the environments (their ``Arguments`` docstring section explains each)."""

    cohort: CohortSpec | Mixture
    split: Split = "train"
    sensor: str | SensorConfig = "strap"
    reward: RewardConfig = RewardConfig()
    suds_every_s: float | None = 60.0
    recovery: bool = True
    recovery_near_bpm: float | None = None  # default: half the window's low edge
    course_sessions: int = 1
    therapist_resume_s: float | None = 60.0
    scaled: bool = True
    truth_in_info: bool = False

    def __post_init__(self) -> None:
        if self.split not in ("train", "eval", "calibration"):
            raise ConfigError(f"split must be 'train', 'eval' or 'calibration'; found {self.split!r}")
        if self.course_sessions < 1:
            raise ConfigError(f"course_sessions must be at least 1, found {self.course_sessions}")
        if self.suds_every_s is not None and not self.suds_every_s > 0:
            raise ConfigError(f"suds_every_s must be positive or None, found {self.suds_every_s!r}")
        if self.therapist_resume_s is not None and not self.therapist_resume_s >= 0:
            raise ConfigError(f"therapist_resume_s must be >= 0 or None, found {self.therapist_resume_s!r}")


def safety_inputs(
    tracker_obs: np.ndarray, hr_bpm: np.ndarray, positions: np.ndarray, since_change_s: np.ndarray
) -> SafetyInputs:
    """What the shield sees, from the tracker's (unscaled) observation at the decision time.

    ``hr_bpm`` is the tracker's smoothed absolute heart rate (NaN before the first usable
    sample); the rise above baseline and the time since the last clean sample are the features
    ``hr_above_bpm`` and ``since_clean_s`` (:func:`exposure_ctrl.sim.kernels.safety_rows`). The
    headset is always connected in the gym and the simulated patient never presses the panic
    button (a patient who has had enough aborts).
    """
    n = tracker_obs.shape[0]
    hr = np.empty(n)
    above = np.empty(n)
    blind = np.empty(n)
    K.safety_rows(
        np.ascontiguousarray(tracker_obs, dtype=np.float64),
        np.ascontiguousarray(hr_bpm, dtype=np.float64),
        _STALE, _HR_ABOVE, _SINCE_CLEAN, hr, above, blind,
    )
    return SafetyInputs(
        hr_bpm=hr,
        hr_above_baseline_bpm=above,
        blind_s=blind,
        headset_lost_s=np.zeros(n),
        panic=np.zeros(n, dtype=bool),
        since_change_s=np.array(since_change_s, dtype=np.float64),
        positions=np.asarray(positions, dtype=np.int64),
    )


_STALE, _HR_ABOVE, _SINCE_CLEAN = int(Feature.STALE), int(Feature.HR_ABOVE_BPM), int(Feature.SINCE_CLEAN_S)


# --- the batch -------------------------------------------------------------------------------


class SessionBatch:
    """Sessions of N patients (see the module docstring)."""

    def __init__(self, scenario: Scenario, n: int, options: SessionOptions, rng: np.random.Generator) -> None:
        if n < 1:
            raise ConfigError(f"the number of patients must be at least 1, found {n}")
        self.sc = scenario
        self.n = int(n)
        self.opts = options
        self.rng = rng
        self.period_s = float(scenario.timing.decision_period_s)
        self.shield_cfg = ShieldConfig.from_scenario(scenario)
        self.safe = np.asarray(scenario.positions(scenario.safe_state), dtype=np.int64)
        self.start_pos = np.asarray(scenario.positions(scenario.start), dtype=np.int64)
        probe = ArousalTracker(scenario, n=1)
        self.layout = ObservationLayout(
            scenario, probe.observation_names, probe.observation_scales, scaled=options.scaled
        )
        tg = scenario.targets
        self.window = (float(tg.arousal_window_bpm.low), float(tg.arousal_window_bpm.high))
        self.ceiling = float(tg.ceiling_bpm)
        self.recovery_near_bpm = (
            options.recovery_near_bpm if options.recovery_near_bpm is not None else 0.5 * self.window[0]
        )
        self.recorder: Recorder | None = None
        self.cohort_name = options.cohort.name
        n = self.n
        k = scenario.n_parameters
        # per-row bookkeeping
        self.positions = np.broadcast_to(self.start_pos, (n, k)).copy()
        self.since_change_s = np.zeros(n)
        self.exposure_s = np.zeros(n)
        self.max_step = np.zeros(n, dtype=np.int64)
        self.in_window_s = np.zeros(n)
        self.latched_s = np.zeros(n)
        self.patient_index = np.zeros(n, dtype=np.int64)
        self.session = np.zeros(n, dtype=np.int64)
        self.course_open = np.zeros(n, dtype=bool)
        self.ended = np.ones(n, dtype=bool)  # the row's session is over (or never began)
        self.end_habituation = np.zeros((n, k))
        self.shield = ShieldState.initial(n)
        self.baseline_bpm = np.full(n, np.nan)
        self.baseline_good = np.zeros(n, dtype=bool)
        self.sim: Simulator | None = None
        self.tracker: ArousalTracker | None = None
        self._tracker_obs = np.zeros((n, self.layout.tracker_size))
        # per-step constants (never written) and what depends on the positions only
        self._reward_weights = options.reward.weights
        self._exposure_max_s = float(scenario.timing.exposure_max_s)
        self._all_rows = np.ones(n, dtype=bool)
        self._no_rows = np.zeros(n, dtype=bool)
        self._no_suds = np.full(n, np.nan)
        self._no_recovery = np.full(n, np.nan)
        # the shield's inputs, rewritten every step (the gym's headset never disconnects, its
        # patients never press stop nor take the headset off, there is no therapist command)
        self._hr = np.empty(n)
        self._hr_above = np.empty(n)
        self._blind_s = np.empty(n)
        self._lost_s = np.zeros(n)
        self._no_flags = np.zeros(n, dtype=bool)
        self._no_command = np.full(n, NO_COMMAND, dtype=np.int64)
        # per-row results of the scenario's functions for the (positions, action) and positions
        # met, used when only a few rows change in a step (see _move_few)
        self._moves: dict[tuple[bytes, int], tuple[np.ndarray, bytes]] = {}
        self._scenes: dict[bytes, tuple[int, np.ndarray]] = {}
        self._safe_key = self.safe.tobytes()
        self._scene_changed()

    # --- rows ----------------------------------------------------------------------------------

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng
        if self.sim is not None:
            self.sim.set_rng(rng)

    def _draw_indices(self, r: int) -> np.ndarray:
        high = _TRAIN_INDICES if self.opts.split == "train" else EVAL_SIZE
        return self.rng.integers(0, high, size=r)

    def start(
        self,
        rows: Sequence[int] | np.ndarray,
        patient_index: Sequence[int] | np.ndarray | None = None,
        new_course: bool = False,
    ) -> None:
        """Begin a session for ``rows``: the next session of the same patient while a course is
        open (``course_sessions`` > 1), else a new patient (``patient_index`` or drawn from the
        generator). Runs the baseline phase; the rows are then at the start of exposure."""
        rows = np.asarray(rows, dtype=np.int64)
        r = len(rows)
        if r == 0:
            return
        sc = self.sc
        k = sc.n_parameters
        cont = (
            self.course_open[rows]
            & (self.session[rows] + 1 < self.opts.course_sessions)
            & (not new_course)
            & (patient_index is None)
        )
        if self.sim is not None:
            # a session abandoned before its end (reset mid-session) ends now
            unfinished = rows[~self.ended[rows]]
            self.end_habituation[unfinished] = self.sim.patient.habituation[unfinished]
        idx = self.patient_index[rows].copy()
        fresh = ~cont
        if fresh.any():
            if patient_index is not None:
                idx[fresh] = np.broadcast_to(np.asarray(patient_index, dtype=np.int64), (r,))[fresh]
            else:
                idx[fresh] = self._draw_indices(int(fresh.sum()))
        if self.sim is not None and cont.any():
            old = take_rows(self.sim.params, rows)
            params = old
            if fresh.any():
                new = sample_patients(sc, self.opts.cohort, idx[fresh], split=self.opts.split)
                params = put_rows(old, np.flatnonzero(fresh), new)
            hab = np.where(cont[:, None], pt.next_session(old, self.end_habituation[rows]), 0.0)
        else:
            params = sample_patients(sc, self.opts.cohort, idx, split=self.opts.split)
            hab = np.zeros((r, k))
        self.session[rows] = np.where(cont, self.session[rows] + 1, 0)
        self.patient_index[rows] = idx
        self.course_open[rows] = self.opts.course_sessions > 1

        # baseline phase on a sub-batch, then merge
        safe_r = np.broadcast_to(self.safe, (r, k))
        sim = Simulator(sc, params, rng=self.rng, sensor=self.opts.sensor, positions=safe_r, habituation=hab)
        tr = ArousalTracker(sc, n=r, positions=safe_r, t0=0.0)
        tr.begin_baseline(0.0)
        tr.set_scene(0.0, safe_r)
        steps = int(math.ceil(sc.timing.baseline_s / self.period_s - 1e-9))
        if steps > 0:
            f = sim.run(safe_r, steps)
            tr.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
        t = float(sim.patient.t_s[0])
        base = tr.finish_baseline(t)
        start = np.broadcast_to(self.start_pos, (r, k))
        tr.set_scene(t, start)
        tobs = tr.tick(t)
        if r == self.n and np.array_equal(rows, np.arange(self.n)):
            self.sim = sim
            self.tracker = tr
        else:
            if self.sim is None or self.tracker is None:
                raise RuntimeError("start every row before starting some of them")
            self.sim.put_rows(rows, sim)
            self.tracker.put_rows(rows, tr)
        self._tracker_obs[rows] = tobs
        self.positions = self.positions.copy()
        self.positions[rows] = start
        self._scene_changed(rows)
        self.ended[rows] = False
        self.since_change_s[rows] = 0.0
        self.exposure_s[rows] = 0.0
        self.max_step[rows] = np.maximum(sc.hierarchy_index_of_intensity(sc.intensity_of_positions(start)), 0)
        self.in_window_s[rows] = 0.0
        self.latched_s[rows] = 0.0
        self.shield = ShieldState(
            above_ceiling_s=_set(self.shield.above_ceiling_s, rows, 0.0),
            latched=_set(self.shield.latched, rows, False),
            latch_reason=_set(self.shield.latch_reason, rows, 0),
        )
        self.baseline_bpm[rows] = base.bpm
        self.baseline_good[rows] = base.good
        if self.recorder is not None:
            versions = (("exposure_ctrl", __version__), ("numpy", np.__version__))
            for j, row in enumerate(rows):
                self.recorder.record(
                    SessionStart(
                        row=int(row),
                        t_s=t,
                        scenario_id=sc.id,
                        scenario_sha256=sc.sha256,
                        cohort=self.cohort_name,
                        split=self.opts.split,
                        patient_index=int(idx[j]),
                        session=int(self.session[row]),
                        baseline_bpm=float(base.bpm[j]),
                        baseline_good=bool(base.good[j]),
                        baseline_reasons=base.reasons[j],
                        versions=versions,
                    )
                )

    # --- observation -----------------------------------------------------------------------

    def observation(self) -> np.ndarray:
        """The current observations (N, D), float32, a new array."""
        return self.layout.build_raw(self._tracker_obs, self.positions, self.exposure_s)

    def action_masks(self) -> np.ndarray:
        """Legal actions of every row now, (N, 1 + 2K) (a new array)."""
        return self._masks.copy()

    # --- the step ---------------------------------------------------------------------------

    def step(
        self, actions: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One decision period for every row: ``(obs, reward, terminated, info)`` (arrays).

        Rows not ``active`` (sessions over, about to be restarted) are advanced but hold, are
        never terminated again and are not recorded.
        """
        sim, tr = self.sim, self.tracker
        if sim is None or tr is None:
            raise RuntimeError("start the sessions before stepping")
        n = self.n
        P = self.period_s
        a = np.array(actions, dtype=np.int64, copy=True).reshape(n)
        if active is None:
            act = self._all_rows
        else:
            act = np.asarray(active, dtype=bool)
            if np.count_nonzero(act) < n:
                a[~act] = 0
        t = sim.patient.t_s.copy()

        # the simulated therapist resumes a latched shield once the patient is calm and seen
        # (np.count_nonzero: a third of the cost of .any() on small arrays)
        if self.opts.therapist_resume_s is not None and np.count_nonzero(self.shield.latched):
            fresh = self._tracker_obs[:, Feature.STALE] < 0.5
            calm = fresh & (self._tracker_obs[:, Feature.HR_ABOVE_BPM] < self.window[1])
            which = self.shield.latched & (self.latched_s >= self.opts.therapist_resume_s) & calm
            if which.any():
                self.shield = resume(self.shield, which)
                self.latched_s = np.where(which, 0.0, self.latched_s)

        v_action, v_safe, v_reason = self._shield(a)
        # the scene: most periods nothing moves (the shield's dwell time), so the work is done
        # for the rows that move only
        new, changed = self.positions, self._no_rows
        moving = np.count_nonzero(v_action) + np.count_nonzero(v_safe)
        if moving:
            new, changed = (self._move_few if moving <= _FEW_ROWS else self._move_many)(v_action, v_safe)
            n_changed = np.count_nonzero(changed)
            if n_changed:
                tr.set_scene(t, new, mask=changed)
                self.positions = new
                self._scene_changed(None if n_changed == n else np.flatnonzero(changed))

        step = sim.step(new, reuse=True)  # its arrays are consumed before the next step
        f = step.frames
        tr.update_block(f.t_s, f.bpm, f.rr_ms, f.n_rr, f.contact, f.present, f.flags)
        t_end = t + P
        due = np.empty(n, dtype=bool)
        every = self.opts.suds_every_s
        suds = self._no_suds
        if K.exposure_clock_rows(self.exposure_s, P, np.inf if every is None else float(every), due):
            tr.set_suds(t_end, step.trace.suds, mask=due)
            suds = np.where(due, step.trace.suds, np.nan)
        self._tracker_obs = tr.tick(t_end)

        # progress, refusals, reward, clocks and the session's end: one compiled pass
        terms = np.empty((7, n))  # the six reward terms and their total
        total = terms[6]
        aborted, completed, terminated = np.empty((3, n), dtype=bool)
        executed = np.empty(n, dtype=np.int64)
        any_end = K.session_rows(
            self._reward_weights, step.trace.arousal_bpm, self.window[0], self.window[1], self.ceiling,
            P, self._exposure_max_s, a, v_action, v_safe, v_reason, changed, act,
            step.trace.aborted_now, self.shield.latched, self._step_index,
            self.max_step, self.in_window_s, self.since_change_s, self.latched_s, self.exposure_s, self.ended,
            terms, total, aborted, completed, terminated, executed,
        )
        recovery_s = self._no_recovery
        if any_end:
            self.end_habituation = np.where(terminated[:, None], sim.patient.habituation, self.end_habituation)
            self.course_open &= ~(aborted | (terminated & (self.session + 1 >= self.opts.course_sessions)))
            if self.opts.recovery and completed.any():
                done_rows = np.flatnonzero(completed)
                recovery_s = np.full(n, np.nan)
                recovery_s[done_rows] = self._recovery(done_rows)

        info = {
            "action_mask": self._masks.copy(),
            "positions": self.positions.copy(),
            "hierarchy_index": self._step_index.copy(),
            "proposed_action": a,
            "executed_action": executed,
            "shield_reason": v_reason,
            "go_safe": v_safe,
            "t_s": t_end,
            "exposure_s": self.exposure_s.copy(),
            "suds": suds.copy(),
            "aborted": aborted,
            "completed": completed,
            "recovery_s": recovery_s.copy(),
            "reward_terms": {
                "in_window": terms[0],
                "above_ceiling": terms[1],
                "progress": terms[2],
                "changed": terms[3],
                "blocked": terms[4],
                "aborted": terms[5],
            },
        }
        if self.opts.truth_in_info:
            info["truth"] = self.truth()
        if self.recorder is not None:
            self._record(t, a, Verdict(v_action, v_safe, v_reason), total, terms, suds, aborted, step, completed, recovery_s, act)
        return self.observation(), total, terminated, info

    def _shield(self, proposed: np.ndarray, state: ShieldState | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shield's verdict on ``proposed`` (N,): new arrays of the executed action, go-safe
        flags and reason codes; ``state`` (default: the batch's) is updated in place. As
        :func:`safety_inputs` + :func:`~exposure_ctrl.safety.shield_step` without their
        conversions: every array here already has the kernels' form."""
        n = self.n
        K.safety_rows(
            self._tracker_obs, np.ascontiguousarray(self.tracker.features.hr), _STALE, _HR_ABOVE,
            _SINCE_CLEAN, self._hr, self._hr_above, self._blind_s,
        )  # fmt: skip
        action, go_safe, reason = np.empty(n, dtype=np.int64), np.empty(n, dtype=bool), np.empty(n, dtype=np.int64)
        shield_step_into(
            self.shield_cfg, self.sc, self.shield if state is None else state, self._hr, self._hr_above,
            self._blind_s, self._lost_s, self._no_flags, self.since_change_s, self._no_flags,
            self.positions, proposed, self._no_command, self.period_s, action, go_safe, reason,
        )  # fmt: skip
        return action, go_safe, reason

    def _move_many(self, action: np.ndarray, go_safe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scene after the verdict when many rows move or go safe (vectorised
        :meth:`Scenario.apply_action`): the new positions and which rows changed."""
        new = self.positions
        moving = np.count_nonzero(action)
        if moving == self.n:
            new = self.sc.apply_action(new, action)
        elif moving:
            rows = np.flatnonzero(action)
            new = new.copy()
            new[rows] = self.sc.apply_action(new[rows], action[rows])
        if np.count_nonzero(go_safe):
            new = np.where(go_safe[:, None], self.safe[None, :], new)
        return new, np.any(new != self.positions, axis=1)

    def _move_few(self, action: np.ndarray, go_safe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scene after the verdict when only a few rows move or go safe: the new positions
        (a new array) and which rows changed, from per-row results of
        :meth:`Scenario.apply_action` kept for every (positions, action) met (a handful of
        dictionary look-ups instead of a dozen numpy calls)."""
        new = self.positions.copy()
        changed = np.zeros(self.n, dtype=bool)
        memo = self._moves
        if len(memo) > _MEMO_SIZE:
            memo.clear()
        for i in np.flatnonzero(action | go_safe).tolist():
            key = new[i].tobytes()
            if go_safe[i]:
                to, to_key = self.safe, self._safe_key
            else:
                a = int(action[i])
                got = memo.get((key, a))
                if got is None:
                    row = self.sc.apply_action(new[i : i + 1], action[i : i + 1])[0]
                    got = memo[(key, a)] = (row, row.tobytes())
                to, to_key = got
            if to_key != key:
                new[i] = to
                changed[i] = True
        return new, changed

    def _scene_changed(self, rows: np.ndarray | None = None) -> None:
        """The positions (of ``rows``; default all) changed: refresh what depends on them only."""
        sc = self.sc
        if rows is not None and len(rows) <= _FEW_ROWS:  # per row, kept for every scene met
            memo = self._scenes
            if len(memo) > _MEMO_SIZE:
                memo.clear()
            for i in rows.tolist():
                key = self.positions[i].tobytes()
                got = memo.get(key)
                if got is None:
                    one = self.positions[i : i + 1]
                    index = int(np.maximum(sc.hierarchy_index_of_intensity(sc.intensity_of_positions(one)), -1)[0])
                    got = memo[key] = (index, sc.action_mask(one)[0])
                self._step_index[i], self._masks[i] = got
            return
        pos = self.positions if rows is None else self.positions[rows]
        index = np.maximum(sc.hierarchy_index_of_intensity(sc.intensity_of_positions(pos)), -1)
        masks = sc.action_mask(pos)
        if rows is None:
            self._step_index, self._masks = index, masks
        else:
            self._step_index[rows] = index
            self._masks[rows] = masks

    def truth(self) -> dict[str, np.ndarray]:
        """Ground truth for evaluation: fear, fear-driven rise, and the true effects (bpm) of
        every action (impossible moves: 0, the shield holds them) and the whole-range
        sensitivity of every parameter at the current scene."""
        sim = self.sim
        if sim is None:
            raise RuntimeError("start the sessions first")
        eff = np.nan_to_num(sim.action_effects(self.positions), nan=0.0)
        return {
            "fear": sim.fear(),
            "arousal_bpm": sim.arousal_bpm(),
            "action_effects_bpm": eff,
            "sensitivities_bpm": true_sensitivities(sim.params, sim.patient, self.positions, self.sc),
            "habituation": sim.patient.habituation.copy(),
        }

    def _recovery(self, rows: np.ndarray) -> np.ndarray:
        """Recovery phase of the rows whose exposure ended: the safe scene until the fear-driven
        rise is back within ``recovery_near_bpm`` of rest, at most ``timing.recovery_s``.
        Returns the time it took (the limit when not reached)."""
        sim = self.sim
        if sim is None:
            raise RuntimeError("start the sessions first")
        sc = self.sc
        params = take_rows(sim.params, rows)
        state = take_rows(sim.patient, rows)
        r = len(rows)
        grid = sim.grid
        layout = NoiseLayout(beats=pt.beats_capacity(grid.period_s), sensor_z=0)
        safe = np.broadcast_to(self.safe, (r, sc.n_parameters))
        limit = float(sc.timing.recovery_s)
        took = np.full(r, limit)
        done = pt.true_arousal_bpm(params, state) <= self.recovery_near_bpm
        took[done] = 0.0
        elapsed = 0.0
        while elapsed < limit - 1e-9 and not done.all():
            pn, _ = split_noise(layout, self.rng.random((layout.n_uniform, r)), self.rng.standard_normal((layout.n_normal, r)))
            state, trace = pt.transition(params, state, safe, pn, grid)
            near = trace.arousal_bpm <= self.recovery_near_bpm  # (S, N)
            first = np.argmax(near, axis=0)
            hit = near.any(axis=0) & ~done
            took = np.where(hit, elapsed + grid.offsets_s[first], took)
            done |= hit
            elapsed += grid.period_s
        return took

    def _record(self, t, a, verdict, total, terms, suds, aborted, step, completed, recovery_s, act) -> None:  # noqa: ANN001
        rec = self.recorder
        if rec is None or self.sim is None:
            return
        fear = self.sim.fear()
        ar = self.sim.arousal_bpm()
        hr_above = self._tracker_obs[:, Feature.HR_ABOVE_BPM]
        for i in np.flatnonzero(act):
            i = int(i)
            rec.record(
                StepRecord(
                    row=i,
                    t_s=float(t[i]),
                    positions=tuple(int(x) for x in self.positions[i]),
                    proposed=int(a[i]),
                    executed=int(verdict.action[i]) if not verdict.go_safe[i] else -1,
                    shield_reason=Reason(int(verdict.reason[i])).code,
                    go_safe=bool(verdict.go_safe[i]),
                    reward=float(total[i]),
                    in_window=float(terms[0, i]),
                    above_ceiling=float(terms[1, i]),
                    hr_above_bpm=float(hr_above[i]),
                    suds=None if np.isnan(suds[i]) else float(suds[i]),
                    aborted=bool(aborted[i]),
                    truth_fear=float(fear[i]),
                    truth_arousal_bpm=float(ar[i]),
                )
            )
            if aborted[i] or completed[i]:
                rec.record(
                    SessionEnd(
                        row=i,
                        t_s=float(t[i] + self.period_s),
                        how="aborted" if aborted[i] else "completed",
                        exposure_s=float(self.exposure_s[i]),
                        highest_step=int(self.max_step[i]),
                        time_in_window_frac=float(self.in_window_s[i] / max(self.exposure_s[i], 1e-9)),
                        recovery_s=None if np.isnan(recovery_s[i]) else float(recovery_s[i]),
                    )
                )


def true_sensitivities(params: pt.PatientParams, state: pt.PatientState, positions: np.ndarray, sc: Scenario) -> np.ndarray:
    """Per parameter, the steady-state fear-driven rise (bpm) its whole range adds at the current
    scene: the parameter at its most feared level minus at its least, the others as they are
    (the quantity the response model's ``sensitivity_arrays`` estimates). Shape (N, K)."""
    pos = np.asarray(positions, dtype=np.int64)
    n, k = pos.shape
    out = np.empty((n, k))
    for kk in range(k):
        hi = pos.copy()
        lo = pos.copy()
        hi[:, kk] = sc.n_levels[kk] - 1
        lo[:, kk] = 0
        d_hi, _ = pt.scene_drive(params, hi, state.habituation)
        d_lo, _ = pt.scene_drive(params, lo, state.habituation)
        out[:, kk] = params.hr_gain_bpm * (d_hi - d_lo)
    return out


def _set(a: np.ndarray, rows: np.ndarray, value: Any) -> np.ndarray:
    out = a.copy()
    out[rows] = value
    return out
