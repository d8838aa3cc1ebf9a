"""Rule baselines: what therapists and control engineers do without learning (batch-first).

Each is a real competitor with its settings in a frozen dataclass, tested on scripted patients
(``tests/policy/test_rules.py``):

- :class:`FixedSchedule` — the traditional graded programme: the next hierarchy step every
  ``step_every_s`` seconds, whatever the patient does.
- :class:`HabituationCriterion` — a therapist's rule: at a hierarchy step, step up once arousal
  has fallen by half from its peak at this level (the ``fall_from_peak_frac`` feature) or after
  ``max_dwell_s``; step back down after sustained overshoot above the window.
- :class:`BandPI` — a PI controller on heart rate above baseline toward the window's middle;
  its output moves one hierarchy step up or down.
- :class:`GreedyModel` — one step of model-predictive control with the online response model:
  the neighbour state (or staying) whose predicted arousal (``model_next_*_bpm``) is closest to
  the upper-middle of the window.

All of them read the observation by name and in units (:class:`~.spec.ObservationSpec`), keep
their per-patient memory in arrays over N and propose nothing while the minimum dwell since the
last scene change runs (the shield would refuse it; a step down while above the window is the
exception, as in the shield). The shield wraps them as it wraps every policy.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exposure_ctrl.policy.navigate import action_toward, at_state, climb_target, descend_target
from exposure_ctrl.policy.spec import ObservationSpec, observation_spec, positions_of
from exposure_ctrl.scenario.model import Scenario

__all__ = [
    "RulePolicy",
    "FixedSchedule",
    "FixedScheduleConfig",
    "HabituationCriterion",
    "HabituationConfig",
    "BandPI",
    "BandPIConfig",
    "GreedyModel",
    "GreedyConfig",
]


class RulePolicy:
    """Shared plumbing: the scenario, the named observation, the window, positions, dwell."""

    name = "rule"

    def __init__(self, scenario: Scenario, spec: ObservationSpec | None = None) -> None:
        self.sc = scenario
        self.spec = spec if spec is not None else observation_spec(scenario)
        tg = scenario.targets
        self.low = float(tg.arousal_window_bpm.low)
        self.high = float(tg.arousal_window_bpm.high)
        self.mid = 0.5 * (self.low + self.high)
        self.ceiling = float(tg.ceiling_bpm)
        self.period_s = float(scenario.timing.decision_period_s)
        self.min_dwell_s = float(scenario.timing.min_dwell_s)
        self.n = 1
        self.reset(1)

    def reset(self, n: int = 1) -> None:
        self.n = int(n)

    # observation helpers -------------------------------------------------------------------
    def f(self, obs: np.ndarray, name: str) -> np.ndarray:
        return self.spec.unit(obs, name)

    def positions(self, obs: np.ndarray) -> np.ndarray:
        return positions_of(self.spec, self.sc, obs)

    def exposure_s(self, obs: np.ndarray) -> np.ndarray:
        return self.f(obs, "exposure_time_frac") * float(self.sc.timing.exposure_max_s)

    def dwell_ok(self, obs: np.ndarray) -> np.ndarray:
        """True where the minimum dwell since the last scene change is over."""
        return self.f(obs, "since_scene_change_s") >= self.min_dwell_s - 1e-6

    def seen(self, obs: np.ndarray) -> np.ndarray:
        """True where the heart rate is fresh and a baseline is known."""
        return (self.f(obs, "stale") < 0.5) & (self.f(obs, "baseline_known") > 0.5)

    def step_index(self, pos: np.ndarray) -> np.ndarray:
        """Highest hierarchy step at or below the current intensity (-1 below the first)."""
        return np.asarray(self.sc.hierarchy_index_of_intensity(self.sc.intensity_of_positions(pos)))

    def _check(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs = np.asarray(obs, dtype=np.float64)
        mask = np.asarray(mask, dtype=bool)
        if obs.ndim != 2 or obs.shape[1] != len(self.spec):
            raise ValueError(f"{self.name}: expected observations of shape (N, {len(self.spec)}), found {obs.shape}")
        if mask.shape != (obs.shape[0], self.sc.n_actions):
            raise ValueError(f"{self.name}: expected a mask of shape ({obs.shape[0]}, {self.sc.n_actions}), found {mask.shape}")
        if obs.shape[0] != self.n:
            self.reset(obs.shape[0])
        return obs, mask

    def _legal(self, actions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        a = np.asarray(actions, dtype=np.int64)
        ok = mask[np.arange(len(a)), a]
        return np.where(ok, a, 0)

    def _describe(self, a: int, pos: np.ndarray) -> str:
        return self.sc.describe_action(int(a), tuple(int(x) for x in pos))


# --- fixed schedule ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FixedScheduleConfig:
    """``step_every_s``: seconds per hierarchy step (None: the exposure time over the steps)."""

    step_every_s: float | None = None


class FixedSchedule(RulePolicy):
    """The traditional programme: hierarchy step ``floor(t / step_every_s)`` at exposure time t,
    reached one parameter move at a time, regardless of arousal."""

    name = "fixed-schedule"

    def __init__(self, scenario: Scenario, config: FixedScheduleConfig | None = None, spec: ObservationSpec | None = None) -> None:
        self.config = config or FixedScheduleConfig()
        h = len(scenario.hierarchy)
        every = self.config.step_every_s
        self.step_every_s = float(every) if every is not None else float(scenario.timing.exposure_max_s) / h
        if not self.step_every_s > 0:
            raise ValueError(f"step_every_s must be positive, found {self.step_every_s!r}")
        super().__init__(scenario, spec)

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs, mask = self._check(observation, action_mask)
        pos = self.positions(obs)
        h = len(self.sc.hierarchy)
        target = np.minimum((self.exposure_s(obs) // self.step_every_s).astype(np.int64), h - 1)
        toward = action_toward(self.sc, pos, self.sc.hierarchy_positions[target])
        ok = self.dwell_ok(obs)
        a = self._legal(np.where(ok, toward, 0), mask)
        reasons = []
        for i in range(len(a)):
            step = f"step {target[i] + 1} of {h} (every {self.step_every_s / 60:.1f} min)"
            if a[i]:
                reasons.append(f"schedule: {step}: {self._describe(a[i], pos[i])}")
            elif toward[i] and not ok[i]:
                reasons.append(f"schedule: {step}: waiting for the minimum dwell")
            else:
                reasons.append(f"schedule: holding at {step}")
        return a, reasons


# --- habituation criterion ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HabituationConfig:
    """Settings of the therapist's habituation rule.

    Attributes:
        fall_frac: step up once arousal has fallen by this fraction from its peak at the level.
        min_at_level_s: time at a level before the fall is judged (the peak must form first).
        max_dwell_s: step up after this long at a level whatever arousal does.
        overshoot_s: above the window this long (since the last change) → step down.
    """

    fall_frac: float = 0.5
    min_at_level_s: float = 60.0
    max_dwell_s: float = 300.0
    overshoot_s: float = 20.0


class HabituationCriterion(RulePolicy):
    """Step up when arousal at this hierarchy step has fallen by half from its peak (or after a
    maximum dwell); step down after sustained overshoot. Moves between steps one parameter at a
    time; a step down by the shield or the therapist re-targets to the step reached."""

    name = "habituation"

    def __init__(self, scenario: Scenario, config: HabituationConfig | None = None, spec: ObservationSpec | None = None) -> None:
        self.config = config or HabituationConfig()
        super().__init__(scenario, spec)

    def reset(self, n: int = 1) -> None:
        super().reset(n)
        start = np.asarray(self.sc.positions(self.sc.start), dtype=np.int64)
        first = int(max(self.sc.hierarchy_index_of_intensity(self.sc.intensity_of_positions(start[None]))[0], 0))
        self.target = np.full(self.n, first, dtype=np.int64)
        self.over_s = np.zeros(self.n)
        self.last_pos: np.ndarray | None = None
        self.at_step_s = np.zeros(self.n)

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs, mask = self._check(observation, action_mask)
        c = self.config
        sc = self.sc
        h = len(sc.hierarchy)
        pos = self.positions(obs)
        hr = self.f(obs, "hr_above_bpm")
        seen = self.seen(obs)
        since = self.f(obs, "since_scene_change_s")
        # A step down we did not ask for (shield, therapist): re-target to where we are.
        if self.last_pos is not None:
            lower = sc.intensity_of_positions(pos) < sc.intensity_of_positions(self.last_pos) - 1e-9
            self.target = np.where(lower, np.maximum(self.step_index(pos), 0), self.target)
        tgt_pos = sc.hierarchy_positions[self.target]
        there = at_state(pos, tgt_pos)
        self.at_step_s = np.where(there, self.at_step_s + self.period_s, 0.0)
        over = seen & (hr > self.high)
        self.over_s = np.where(over, self.over_s + self.period_s, 0.0)

        overshoot = (self.over_s >= c.overshoot_s) & (since >= c.overshoot_s)
        fall = self.f(obs, "fall_from_peak_frac")
        at_level = self.f(obs, "at_intensity_s")
        habituated = there & seen & (at_level >= c.min_at_level_s) & (fall >= c.fall_frac)
        too_long = there & (self.at_step_s >= c.max_dwell_s)
        climb = (habituated | too_long) & ~overshoot & ~over
        # decide the target
        # overshoot: back to the step below the one we are at (or to the step we are above)
        floor = np.maximum(self.step_index(pos), 0)
        on_floor = at_state(pos, sc.hierarchy_positions[floor])
        down_t = np.maximum(np.where(on_floor, floor - 1, floor), 0)
        self.target = np.where(overshoot, down_t, self.target)
        self.target = np.where(climb, np.minimum(self.target + 1, h - 1), self.target)
        self.over_s = np.where(overshoot, 0.0, self.over_s)
        self.at_step_s = np.where(climb | overshoot, 0.0, self.at_step_s)

        toward = action_toward(sc, pos, sc.hierarchy_positions[self.target])
        going_down = (toward > 0) & (toward % 2 == 0)
        exempt = going_down & seen & (hr > self.high)
        a = self._legal(np.where(self.dwell_ok(obs) | exempt, toward, 0), mask)
        reasons = []
        for i in range(self.n):
            step = f"step {self.target[i] + 1} of {h}"
            if overshoot[i]:
                why = f"arousal above the window ({hr[i]:.0f} bpm) for {c.overshoot_s:.0f} s: back to {step}"
            elif habituated[i] and climb[i]:
                why = f"arousal fell by {fall[i]:.0%} from its peak: up to {step}"
            elif too_long[i] and climb[i]:
                why = f"{c.max_dwell_s / 60:.0f} min at this step: up to {step}"
            elif toward[i]:
                why = f"moving to {step}"
            else:
                why = f"at {step}: waiting for arousal to fall by {c.fall_frac:.0%} from its peak"
            if a[i]:
                why += f": {self._describe(a[i], pos[i])}"
            elif toward[i]:
                why += " (waiting for the minimum dwell)"
            reasons.append(why)
        self.last_pos = sc.apply_action(pos, a)
        return a, reasons


# --- band PI controller -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BandPIConfig:
    """PI gains on the error (window middle - arousal), bpm; output ±1 moves one step.

    Attributes:
        kp: per bpm of error.
        ki: per bpm·s of integrated error.
        integral_limit: anti-windup: |ki * integral| stays below this.
        setpoint_frac: where in the window the set-point sits (0.5 = the middle).
    """

    kp: float = 0.12
    ki: float = 0.004
    integral_limit: float = 1.5
    setpoint_frac: float = 0.5


class BandPI(RulePolicy):
    """A PI controller on heart rate above baseline; ``u >= 1`` climbs one hierarchy move,
    ``u <= -1`` descends one. The integral is reset on every move (bumpless) and frozen while
    the heart rate is not seen."""

    name = "band-pi"

    def __init__(self, scenario: Scenario, config: BandPIConfig | None = None, spec: ObservationSpec | None = None) -> None:
        self.config = config or BandPIConfig()
        super().__init__(scenario, spec)
        self.setpoint = self.low + self.config.setpoint_frac * (self.high - self.low)

    def reset(self, n: int = 1) -> None:
        super().reset(n)
        self.integral = np.zeros(self.n)

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs, mask = self._check(observation, action_mask)
        c = self.config
        sc = self.sc
        pos = self.positions(obs)
        hr = self.f(obs, "hr_above_bpm")
        seen = self.seen(obs)
        err = np.where(seen, self.setpoint - hr, 0.0)
        self.integral = self.integral + err * self.period_s
        lim = c.integral_limit / max(c.ki, 1e-12)
        self.integral = np.clip(self.integral, -lim, lim)
        u = c.kp * err + c.ki * self.integral
        up = sc.hierarchy_positions[climb_target(sc, pos)]
        down = sc.hierarchy_positions[descend_target(sc, pos)]
        want = np.where(u >= 1.0, action_toward(sc, pos, up), np.where(u <= -1.0, action_toward(sc, pos, down), 0))
        want = np.where(seen | (u < 0), want, 0)  # never escalate blind
        going_down = (want > 0) & (want % 2 == 0)
        exempt = going_down & seen & (hr > self.high)
        a = self._legal(np.where(self.dwell_ok(obs) | exempt, want, 0), mask)
        self.integral = np.where(a != 0, 0.0, self.integral)
        reasons = []
        for i in range(self.n):
            head = f"PI: arousal {hr[i]:.0f} bpm, set-point {self.setpoint:.0f}, output {u[i]:+.2f}"
            if a[i]:
                reasons.append(f"{head}: {self._describe(a[i], pos[i])}")
            elif want[i]:
                reasons.append(f"{head}: waiting for the minimum dwell")
            else:
                reasons.append(f"{head}: hold")
        return a, reasons


# --- model-based greedy -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GreedyConfig:
    """``target_frac``: where in the window the target sits (0 low edge, 1 high edge);
    ``hysteresis_bpm``: a move must beat staying by this much."""

    target_frac: float = 0.65
    hysteresis_bpm: float = 1.0


class GreedyModel(RulePolicy):
    """One-step look-ahead with the online response model: among staying and every legal move,
    the state whose predicted steady-state arousal is closest to the upper-middle of the window."""

    name = "greedy-model"

    def __init__(self, scenario: Scenario, config: GreedyConfig | None = None, spec: ObservationSpec | None = None) -> None:
        self.config = config or GreedyConfig()
        super().__init__(scenario, spec)
        self.target_bpm = self.low + self.config.target_frac * (self.high - self.low)
        names = [n for n in self.spec.names if n.startswith("model_next_") and not n.endswith("_sd_bpm")]
        if len(names) != scenario.n_actions:
            from exposure_ctrl.errors import PolicyMismatchError

            raise PolicyMismatchError(
                f"{self.name}: expected {scenario.n_actions} model_next_*_bpm columns (one per action), found {len(names)}"
            )
        self.next_names = names

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs, mask = self._check(observation, action_mask)
        c = self.config
        pos = self.positions(obs)
        pred = self.spec.unit_columns(obs, self.next_names)  # (N, A)
        hr = self.f(obs, "hr_above_bpm")
        seen = self.seen(obs)
        cost = np.abs(pred - self.target_bpm)
        cost[:, 1:] += c.hysteresis_bpm
        legal = mask.copy()
        legal[:, 1::2] &= seen[:, None]  # never escalate blind
        cost = np.where(legal, cost, np.inf)
        want = np.argmin(cost, axis=1)
        going_down = (want > 0) & (want % 2 == 0)
        exempt = going_down & seen & (hr > self.high)
        a = self._legal(np.where(self.dwell_ok(obs) | exempt, want, 0), mask)
        reasons = []
        for i in range(self.n):
            p = pred[i, want[i]]
            if a[i]:
                reasons.append(
                    f"model predicts {p:.0f} bpm after '{self._describe(a[i], pos[i])}' "
                    f"(now {pred[i, 0]:.0f}, target {self.target_bpm:.0f})"
                )
            elif want[i]:
                reasons.append(f"model prefers '{self._describe(want[i], pos[i])}' ({p:.0f} bpm): waiting for the minimum dwell")
            else:
                reasons.append(f"model predicts {pred[i, 0]:.0f} bpm here, closest to the target {self.target_bpm:.0f}: hold")
        return a, reasons
