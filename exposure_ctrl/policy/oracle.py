"""The oracle: model-predictive control with the *true* patient model (simulation only).

The upper bound every other policy is measured against. It reads the simulated patient's true
parameters and state (never available live) and, whenever the minimum dwell allows a change,
tries every legal move now followed by every legal move one dwell later (a two-stage tree,
``(1 + 2K)²`` branches), simulating the patient's true fear dynamics — onset delay, rise and
decay, the slow component, habituation, sensitisation and aborts — with
:func:`exposure_ctrl.sim.patient.transition` for ``2 x dwell`` periods. Fear does not depend on
the noise (only heart rate and beats do), so each rollout is exact. The branch with the best
score is taken:

    score = Σ periods (in-window fraction − ceiling_weight · above-ceiling fraction)
            + steady_weight · [steady-state arousal of the final scene in the window]
            + intensity_weight · intensity of the final scene
            − abort_weight · [the patient aborts]

The steady-state term looks past the horizon (where the scene would settle); the small
intensity term breaks ties toward progress. Bind it to the simulation with :meth:`Oracle.bind`
before acting; :func:`~exposure_ctrl.policy.load_policy` refuses it in live sessions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.policy.rules import RulePolicy
from exposure_ctrl.policy.spec import ObservationSpec
from exposure_ctrl.scenario.model import Scenario

__all__ = ["Oracle", "OracleConfig", "TruthSource"]

TruthSource = Callable[[], tuple[Any, Any, np.ndarray]]
"""Returns the true ``(PatientParams, PatientState, positions (N, K))`` of the bound rows."""


@dataclasses.dataclass(frozen=True)
class OracleConfig:
    """Weights of the oracle's score (see the module docstring) and its horizon.

    ``tail_periods``: periods simulated after the second move (default: one dwell)."""

    ceiling_weight: float = 3.0
    abort_weight: float = 100.0
    steady_weight: float = 4.0
    intensity_weight: float = 0.5
    tail_periods: int | None = None


class Oracle(RulePolicy):
    """MPC with the true patient model (see the module docstring)."""

    name = "oracle"

    def __init__(self, scenario: Scenario, config: OracleConfig | None = None, spec: ObservationSpec | None = None) -> None:
        self.config = config or OracleConfig()
        super().__init__(scenario, spec)
        self.truth: TruthSource | None = None
        self.dwell_periods = max(1, int(math.ceil(self.min_dwell_s / self.period_s - 1e-9)))
        self.tail_periods = self.config.tail_periods or self.dwell_periods
        from exposure_ctrl.sim import patient as pt
        from exposure_ctrl.sim.noise import NoiseLayout

        self._pt = pt
        self._grid = pt.make_grid(self.period_s)
        self._layout = NoiseLayout(beats=pt.beats_capacity(self.period_s), sensor_z=0)

    def bind(self, truth: TruthSource) -> "Oracle":
        """Give the oracle access to the true patients (e.g. a SessionBatch's simulator)."""
        self.truth = truth
        return self

    # --- rollouts -------------------------------------------------------------------------------

    def _noise(self, n: int) -> Any:
        from exposure_ctrl.sim.noise import split_noise

        lay = self._layout
        pn, _ = split_noise(lay, np.full((lay.n_uniform, n), 0.5), np.zeros((lay.n_normal, n)))
        return pn

    def _run(self, params: Any, state: Any, pos: np.ndarray, periods: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        """Hold ``pos`` for ``periods``: (state, in-window sum, above-ceiling sum, aborted)."""
        pt = self._pt
        n = pos.shape[0]
        noise = self._noise(n)
        inw = np.zeros(n)
        above = np.zeros(n)
        for _ in range(periods):
            state, tr = pt.transition(params, state, pos, noise, self._grid)
            a = tr.arousal_bpm
            inw += ((a >= self.low) & (a <= self.high)).mean(axis=0)
            above += (a > self.ceiling).mean(axis=0)
        return state, inw, above, np.asarray(state.aborted, dtype=bool)

    def plan(self, params: Any, state: Any, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best first move and its score for N patients allowed to move now, (N,) each."""
        from exposure_ctrl.sim.arrays import take_rows

        sc = self.sc
        c = self.config
        pt = self._pt
        pos = np.asarray(positions, dtype=np.int64)
        n, k = pos.shape
        na = sc.n_actions
        acts = np.arange(na)
        # stage 1: N x A rows
        r1 = np.repeat(np.arange(n), na)
        a1 = np.tile(acts, n)
        legal1 = sc.action_mask(pos)[r1, a1]
        p1 = take_rows(params, r1)
        s1 = take_rows(state, r1)
        pos1 = sc.apply_action(pos[r1], a1)
        s1, inw1, ab1, abort1 = self._run(p1, s1, pos1, self.dwell_periods)
        # stage 2: N x A x A rows
        r2 = np.repeat(np.arange(n * na), na)
        a2 = np.tile(acts, n * na)
        legal2 = legal1[r2] & sc.action_mask(pos1)[r2, a2]
        p2 = take_rows(p1, r2)
        s2 = take_rows(s1, r2)
        pos2 = sc.apply_action(pos1[r2], a2)
        s2, inw2, ab2, abort2 = self._run(p2, s2, pos2, self.tail_periods)
        drive, _ = pt.scene_drive(p2, pos2, s2.habituation)
        steady = p2.hr_gain_bpm * drive
        in_ss = (steady >= self.low) & (steady <= self.high)
        score = (
            inw1[r2] + inw2
            - c.ceiling_weight * (ab1[r2] + ab2)
            + c.steady_weight * in_ss
            + c.intensity_weight * sc.intensity_of_positions(pos2)
            - c.abort_weight * (abort1[r2] | abort2)
        )
        score = np.where(legal2, score, -np.inf).reshape(n, na, na)
        best2 = score.max(axis=2)  # (N, A)
        first = np.argmax(best2, axis=1)
        return first.astype(np.int64), best2[np.arange(n), first]

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs, mask = self._check(observation, action_mask)
        if self.truth is None:
            raise ConfigError("the oracle is not bound to a simulation (Oracle.bind); it cannot run live")
        params, state, positions = self.truth()
        pos = np.asarray(positions, dtype=np.int64)
        if pos.shape[0] != self.n:
            raise ValueError(f"oracle: bound to {pos.shape[0]} patients, observations for {self.n}")
        ok = self.dwell_ok(obs)
        a = np.zeros(self.n, dtype=np.int64)
        score = np.full(self.n, np.nan)
        rows = np.flatnonzero(ok)
        if len(rows):
            from exposure_ctrl.sim.arrays import take_rows

            first, sc_ = self.plan(take_rows(params, rows), take_rows(state, rows), pos[rows])
            a[rows] = first
            score[rows] = sc_
        a = self._legal(a, mask)
        reasons = []
        for i in range(self.n):
            if not ok[i]:
                reasons.append("oracle: minimum dwell")
            elif a[i]:
                reasons.append(f"oracle (true model, score {score[i]:.1f}): {self._describe(a[i], pos[i])}")
            else:
                reasons.append(f"oracle (true model, score {score[i]:.1f}): hold")
        return a, reasons
