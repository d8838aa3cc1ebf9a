"""Tabular Q-learning on discretised anxiety, after Mahmoudi-Nejad, Guzdial and Boulanger,
"Personalizing Exposure Therapy via Reinforcement Learning" (EDPCGRL; AAAI 2025 bridge
programme, arXiv 2504.14095) — the closest published system.

As in the paper: a Q-table learnt **online within the session** from the patient's own
physiological response, ε-greedy exploration with ε = 0.05, a reward in [-1, 1] that is highest
at the therapist's target arousal. The paper's state was the spider's attribute configuration
(486 states); our scenes have tens of thousands, so the state here is the *discretised anxiety*
(heart rate above baseline in six bands around the window) times the scene's intensity in five
bands (30 states), and the actions are the scenario's ``1 + 2K`` one-step moves. The table can
start from zeros (as in the paper) or from a table pre-trained on training patients
(:func:`pretrain`; the registry's ``q-learning`` uses zeros, i.e. purely online).

The update uses the action that was actually executed, inferred from the positions in the next
observation (the shield may have refused or replaced the proposal).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exposure_ctrl.policy.rules import RulePolicy
from exposure_ctrl.policy.spec import ObservationSpec
from exposure_ctrl.scenario.model import Scenario

__all__ = ["QLearningConfig", "TabularQ"]

_N_INTENSITY_BINS = 5


@dataclasses.dataclass(frozen=True)
class QLearningConfig:
    """``epsilon`` exploration (the paper's 0.05), ``alpha`` learning rate, ``gamma`` discount,
    ``seed`` of the exploration generator."""

    epsilon: float = 0.05
    alpha: float = 0.3
    gamma: float = 0.9
    seed: int = 0


class TabularQ(RulePolicy):
    """Online tabular Q-learning (see the module docstring)."""

    name = "q-learning"

    def __init__(
        self,
        scenario: Scenario,
        config: QLearningConfig | None = None,
        spec: ObservationSpec | None = None,
        initial_table: np.ndarray | None = None,
    ) -> None:
        self.config = config or QLearningConfig()
        self.rng = np.random.default_rng(self.config.seed)
        na = scenario.n_actions
        self.n_states = 6 * _N_INTENSITY_BINS
        if initial_table is not None:
            initial_table = np.asarray(initial_table, dtype=np.float64)
            if initial_table.shape != (self.n_states, na):
                raise ValueError(f"initial Q-table must have shape ({self.n_states}, {na}), found {initial_table.shape}")
        self.initial_table = initial_table
        super().__init__(scenario, spec)

    def reset(self, n: int = 1) -> None:
        super().reset(n)
        na = self.sc.n_actions
        init = np.zeros((self.n_states, na)) if self.initial_table is None else self.initial_table
        self.q = np.broadcast_to(init, (self.n, self.n_states, na)).copy()
        self.prev_state: np.ndarray | None = None
        self.prev_pos: np.ndarray | None = None

    def state_of(self, obs: np.ndarray) -> np.ndarray:
        """Discretised anxiety × intensity band, (N,) ints."""
        hr = self.f(obs, "hr_above_bpm")
        edges = np.array([0.5 * self.low, self.low, self.mid, self.high, self.ceiling])
        band = np.searchsorted(edges, hr, side="right")  # 0..5
        inten = np.clip((self.f(obs, "intensity") * _N_INTENSITY_BINS).astype(np.int64), 0, _N_INTENSITY_BINS - 1)
        return band * _N_INTENSITY_BINS + inten

    def reward_of(self, obs: np.ndarray) -> np.ndarray:
        """1 at the window's middle, 0 at its edges, down to -1 further away."""
        hr = self.f(obs, "hr_above_bpm")
        half = 0.5 * (self.high - self.low)
        return np.clip(1.0 - np.abs(hr - self.mid) / half, -1.0, 1.0)

    def _executed(self, pos: np.ndarray) -> np.ndarray:
        """The action that moved ``prev_pos`` to ``pos`` (0 if none; -1 if not one move)."""
        assert self.prev_pos is not None
        d = pos - self.prev_pos
        moved = np.count_nonzero(d, axis=1)
        k = np.argmax(np.abs(d), axis=1)
        step = d[np.arange(len(d)), k]
        a = np.where(step > 0, 1 + 2 * k, 2 + 2 * k)
        return np.where(moved == 0, 0, np.where((moved == 1) & (np.abs(step) == 1), a, -1))

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs, mask = self._check(observation, action_mask)
        c = self.config
        pos = self.positions(obs)
        s = self.state_of(obs)
        rows = np.arange(self.n)
        seen = self.seen(obs)
        if self.prev_state is not None and self.prev_pos is not None:
            a_prev = self._executed(pos)
            r = self.reward_of(obs)
            best_next = np.max(np.where(mask, self.q[rows, s], -np.inf), axis=1)
            ok = (a_prev >= 0) & seen
            ap = np.clip(a_prev, 0, None)
            old = self.q[rows, self.prev_state, ap]
            new = old + c.alpha * (r + c.gamma * best_next - old)
            self.q[rows, self.prev_state, ap] = np.where(ok, new, old)
        legal = mask.copy()
        legal[:, 1::2] &= seen[:, None]
        qs = np.where(legal, self.q[rows, s], -np.inf)
        # greedy with random tie-breaking, ε-random among legal moves
        noise = self.rng.random(qs.shape) * 1e-9
        greedy = np.argmax(qs + noise, axis=1)
        explore = self.rng.random(self.n) < c.epsilon
        rand = np.argmax(np.where(legal, self.rng.random(qs.shape), -1.0), axis=1)
        want = np.where(explore, rand, greedy)
        a = self._legal(np.where(self.dwell_ok(obs), want, 0), mask)
        self.prev_state = s
        self.prev_pos = pos
        reasons = []
        for i in range(self.n):
            tag = "exploring" if explore[i] else f"Q={qs[i, want[i]]:+.2f}"
            if a[i]:
                reasons.append(f"Q-learning ({tag}): {self._describe(a[i], pos[i])}")
            elif want[i]:
                reasons.append(f"Q-learning ({tag}): waiting for the minimum dwell")
            else:
                reasons.append(f"Q-learning ({tag}): hold")
        return a, reasons
