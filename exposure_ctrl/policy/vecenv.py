"""An SB3 ``VecEnv`` over the batched sessions (:class:`~exposure_ctrl.sim.batch.SessionBatch`).

Training uses the very step of the Gymnasium environment (tracker, shield inside the step,
reward from ground truth) but batches all sessions into one numpy computation, which is what
makes PPO fast enough on two cores. SB3 semantics: a finished session is restarted at once with a
new training patient (drawn from the environment's generator: domain randomisation over the
cohort), the last observation goes to ``info["terminal_observation"]``, and ``info["episode"]``
carries the return and length (what SB3's ``Monitor`` would add). ``env_method("action_masks")``
serves sb3-contrib's MaskablePPO.

Imports SB3: import this module only where training runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim.batch import SessionBatch, SessionOptions

__all__ = ["BatchVecEnv"]


class BatchVecEnv(VecEnv):
    """``n_envs`` training sessions in lockstep (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        n_envs: int,
        options: SessionOptions,
        seed: int = 0,
        *,
        shaping: float = 0.0,
        gamma: float = 0.99,
        low_edge_bonus: float = 0.0,
        escalation_guard_bpm: float | None = None,
        dwell_guard: bool = False,
        descend_above_bpm: float | None = None,
    ) -> None:
        from exposure_ctrl.policy.spec import observation_spec

        self.sc = scenario
        self.escalation_guard_bpm = escalation_guard_bpm
        self.dwell_guard = bool(dwell_guard)
        self.descend_above_bpm = descend_above_bpm
        self._spec = observation_spec(scenario)
        self.low_edge_bonus = float(low_edge_bonus)
        self.shaping = float(shaping)
        self.gamma = float(gamma)
        tg = scenario.targets
        self._low = float(tg.arousal_window_bpm.low)
        self._high = float(tg.arousal_window_bpm.high)
        self.render_mode = None
        self.options = options
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        self.batch = SessionBatch(scenario, n_envs, options, self.rng)
        lay = self.batch.layout
        obs_space = spaces.Box(lay.low, lay.high, dtype=np.float32)
        super().__init__(n_envs, obs_space, spaces.Discrete(scenario.n_actions))
        self._actions = np.zeros(n_envs, dtype=np.int64)
        self._ret = np.zeros(n_envs)
        self._len = np.zeros(n_envs, dtype=np.int64)
        self._t0 = time.monotonic()
        self._started = False
        self._phi = np.zeros(n_envs)
        self.completed: list[dict[str, float]] = []  # finished sessions (for progress reports)

    @property
    def observation_names(self) -> tuple[str, ...]:
        return self.batch.layout.names

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        if seed is not None:
            self._seed = int(seed)
            self.rng = np.random.default_rng(self._seed)
            self.batch.set_rng(self.rng)
        return [self._seed] * self.num_envs

    def reset(self) -> np.ndarray:
        self.batch.set_rng(self.rng)
        self.batch.start(np.arange(self.num_envs))
        self._ret[:] = 0.0
        self._len[:] = 0
        self._started = True
        self._phi = self._potential()
        return self.batch.observation()

    def _potential(self) -> np.ndarray:
        """Shaping potential: minus the true arousal's distance from the window, in window widths."""
        if self.shaping == 0.0 or self.batch.sim is None:
            return np.zeros(self.num_envs)
        a = self.batch.sim.arousal_bpm()
        d = np.maximum(self._low - a, 0.0) + np.maximum(a - self._high, 0.0)
        return -self.shaping * d / (self._high - self._low)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if not self._started:
            self.reset()
        b = self.batch
        obs, reward, terminated, info = b.step(self._actions)
        if self.low_edge_bonus != 0.0:
            # time in the window is worth more near its low edge: the same window time with less
            # fear, hence less habituation spent (training only, from ground truth)
            a = b.sim.arousal_bpm()
            inside = np.asarray(info["reward_terms"]["in_window"])
            reward = reward + self.low_edge_bonus * inside * np.clip((self._high - a) / (self._high - self._low), 0.0, 1.0)
        if self.shaping != 0.0:
            # potential-based shaping (Ng et al. 1999): leaves the optimal policy unchanged
            phi = self._potential()
            reward = reward + np.where(terminated, 0.0, self.gamma * phi) - self._phi
            self._phi = phi
        self._ret += reward
        self._len += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done = np.asarray(terminated, dtype=bool)
        if done.any():
            rows = np.flatnonzero(done)
            for i in rows:
                ep = {"r": float(self._ret[i]), "l": int(self._len[i]), "t": round(time.monotonic() - self._t0, 3)}
                infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["episode"] = ep
                infos[i]["TimeLimit.truncated"] = False
                self.completed.append(
                    {
                        "return": ep["r"],
                        "length": ep["l"],
                        "in_window": float(b.in_window_s[i] / max(b.exposure_s[i], 1e-9)),
                        "highest_step": int(b.max_step[i]),
                        "aborted": bool(info["aborted"][i]),
                    }
                )
            b.start(rows)
            if self.shaping != 0.0:
                self._phi[rows] = self._potential()[rows]
            self._ret[rows] = 0.0
            self._len[rows] = 0
            obs = b.observation()
        return obs, np.asarray(reward, dtype=np.float32), done, infos

    def close(self) -> None:
        pass

    # --- attributes and methods (the sessions share one batch) ---------------------------------

    def action_masks(self) -> np.ndarray:
        """Legal moves, minus what the learned policy's guards forbid (as live)."""
        return self.guard(self.batch.action_masks(), self.batch.observation())

    def guard(self, mask: np.ndarray, observation: np.ndarray) -> np.ndarray:
        """``mask`` minus the escalations (and, with the dwell guard, the moves during the minimum
        dwell) the learned policy's guards forbid at ``observation``."""
        from exposure_ctrl.policy.learned import policy_guard_mask

        return policy_guard_mask(
            mask, observation, self._spec, self.sc, self.escalation_guard_bpm, self.dwell_guard, self.descend_above_bpm
        )

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        idx = list(self._get_indices(indices))
        if attr_name == "action_masks":
            return [self.action_masks] * len(idx)
        value = getattr(self, attr_name)
        return [value] * len(idx)

    def has_attr(self, attr_name: str) -> bool:
        return hasattr(self, attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * len(idx)

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))
