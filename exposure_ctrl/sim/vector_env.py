"""The vectorised environment: N simulated sessions in lockstep on the batched simulator."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.sim.batch import SessionBatch, SessionOptions
from exposure_ctrl.sim.cohorts import CohortSpec, Mixture, Split, cohort_for
from exposure_ctrl.sim.env import resolve_env_scenario
from exposure_ctrl.sim.records import Recorder
from exposure_ctrl.sim.reward import RewardConfig
from exposure_ctrl.sim.sensors import SensorConfig

__all__ = ["ExposureVectorEnv"]

_RESET_OPTIONS = frozenset({"patient_index", "new_course", "reset_mask"})


class ExposureVectorEnv(VectorEnv):
    """``num_envs`` sessions of :class:`~exposure_ctrl.sim.env.ExposureEnv` computed together.

    Same description, spaces (batched: ``MultiDiscrete``, ``Box`` of shape (num_envs, D)),
    rewards, starting state and episode end as :class:`~exposure_ctrl.sim.env.ExposureEnv`;
    the arguments are the same plus ``num_envs``. Every patient, sensor, shield and tracker is
    computed as one batch (the features and the shield are batch-first), so a step costs far
    less than ``num_envs`` single steps. From 256 sessions on, the simulator's period, the
    features' update and the tracker's tick split the sessions over numba's threads
    (``NUMBA_NUM_THREADS``, default every core; set it to 1 on a machine whose cores are busy;
    a ``fork()``ed child computes on one thread; see :mod:`exposure_ctrl._threads`); the
    numbers do not depend on the number of threads.

    One generator (``np_random``) drives all sessions, like Gymnasium's own vector
    environments: sub-environment i is *not* the single environment seeded ``seed + i``.

    Autoreset: ``NEXT_STEP`` (Gymnasium's default): the step after a session ended starts a
    new one there (its action is ignored, its reward is 0); ``info["autoreset"]`` marks them.
    ``reset(options={"reset_mask": mask})`` restarts only some sessions;
    ``options={"patient_index": array}`` chooses the patients.

    ``info`` holds arrays over the sessions (keys as in the single environment);
    :meth:`action_masks` gives the legal actions, shape (num_envs, 1 + 2K).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 8,
        scenario: str | Scenario = "spider",
        cohort: str | CohortSpec | Mixture | None = None,
        *,
        split: Split = "train",
        sensor: str | SensorConfig = "strap",
        reward: RewardConfig | None = None,
        suds_every_s: float | None = 60.0,
        recovery: bool = True,
        course_sessions: int = 1,
        therapist_resume_s: float | None = 60.0,
        scaled: bool = True,
        truth_in_info: bool = False,
        recorder: Recorder | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ConfigError("the vector environment does not render; use render_mode=None")
        if int(num_envs) < 1:
            raise ConfigError(f"num_envs must be at least 1, found {num_envs}")
        self.num_envs = int(num_envs)
        self.scenario = resolve_env_scenario(scenario)
        self.render_mode = None
        self.options = SessionOptions(
            cohort=cohort_for(self.scenario, cohort),
            split=split,
            sensor=sensor,
            reward=reward if reward is not None else RewardConfig(),
            suds_every_s=suds_every_s,
            recovery=recovery,
            course_sessions=course_sessions,
            therapist_resume_s=therapist_resume_s,
            scaled=scaled,
            truth_in_info=truth_in_info,
        )
        self._batch = SessionBatch(self.scenario, self.num_envs, self.options, self.np_random)
        self._batch.recorder = recorder
        lay = self._batch.layout
        self.single_action_space = spaces.Discrete(self.scenario.n_actions)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = spaces.Box(lay.low, lay.high, dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._started = False

    @property
    def observation_names(self) -> tuple[str, ...]:
        return self._batch.layout.names

    @property
    def observation_scales(self) -> np.ndarray:
        return self._batch.layout.scales.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        opts = dict(options or {})
        unknown = set(opts) - _RESET_OPTIONS
        if unknown:
            raise ConfigError(f"unknown reset option(s) {sorted(unknown)}; expected {sorted(_RESET_OPTIONS)}")
        b = self._batch
        b.set_rng(self.np_random)
        mask = opts.get("reset_mask")
        if mask is None or not self._started:
            rows = np.arange(self.num_envs)
        else:
            rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        idx = opts.get("patient_index")
        if idx is not None:
            idx = np.broadcast_to(np.asarray(idx, dtype=np.int64), (self.num_envs,))[rows]
        b.start(rows, patient_index=idx, new_course=bool(opts.get("new_course", False)))
        self._started = True
        self._autoreset[rows] = False
        info = {
            "action_mask": b.action_masks(),
            "positions": b.positions.copy(),
            "patient_index": b.patient_index.copy(),
            "session": b.session.copy(),
            "baseline_bpm": b.baseline_bpm.copy(),
            "baseline_good": b.baseline_good.copy(),
        }
        return b.observation(), info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise ConfigError("call reset() before step()")
        b = self._batch
        restart = self._autoreset.copy()
        obs, reward, terminated, info = b.step(np.asarray(actions, dtype=np.int64), active=~restart)
        if np.count_nonzero(restart):
            rows = np.flatnonzero(restart)
            b.start(rows)
            obs = b.observation()
            reward = np.where(restart, 0.0, reward)
            terminated = terminated & ~restart
            info["action_mask"] = b.action_masks()
            info["positions"] = b.positions.copy()
        info["autoreset"] = restart
        self._autoreset = terminated.copy()
        return obs, reward, terminated, np.zeros(self.num_envs, dtype=bool), info

    def action_masks(self) -> np.ndarray:
        """Legal actions now, (num_envs, 1 + 2K)."""
        return self._batch.action_masks()

    def truth(self) -> dict[str, np.ndarray]:
        """Ground truth of every session now (see :meth:`ExposureEnv.truth`)."""
        return self._batch.truth()

    @property
    def tracker(self) -> Any:
        return self._batch.tracker
