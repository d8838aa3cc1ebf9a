"""The reward of one decision period, from ground truth the simulator knows (pure, batch-first).

    reward = window   * (fraction of the period with the fear-driven heart-rate rise in the window)
           - ceiling  * (fraction of the period with it above the ceiling)
           + progress * (new hierarchy steps reached for the first time this session)
           - change   * (the policy's proposal changed the scene)
           - blocked  * (the shield refused or replaced the policy's proposal)
           - abort    * (the patient aborted: removed the headset)

The heart-rate rise is the *fear-driven* part (``hr_gain_bpm * fear``, no drift, RSA or sensor
noise) so that the reward rewards what the policy controls; the window and ceiling are the
scenario's ``targets``. Progress counts the highest hierarchy index reached so far (intensity at
or above a step's, :meth:`~exposure_ctrl.scenario.Scenario.hierarchy_index_of_intensity`); going
down and up again earns nothing. Defaults are in :class:`RewardConfig`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from exposure_ctrl.sim import kernels as K

__all__ = ["RewardConfig", "RewardTerms", "reward_terms"]


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward terms (see the module docstring)."""

    window: float = 1.0
    ceiling: float = 1.0
    progress: float = 5.0
    change: float = 0.05
    blocked: float = 0.1
    abort: float = 50.0

    @property
    def weights(self) -> np.ndarray:
        """The weights in the kernels' order: window, ceiling, progress, change, blocked, abort."""
        return np.array([self.window, self.ceiling, self.progress, self.change, self.blocked, self.abort], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class RewardTerms:
    """The unweighted terms of one period, arrays over N patients, and the weighted total."""

    in_window: np.ndarray  # fraction of the period
    above_ceiling: np.ndarray  # fraction of the period
    progress: np.ndarray  # new hierarchy steps
    changed: np.ndarray  # 0/1
    blocked: np.ndarray  # 0/1
    aborted: np.ndarray  # 0/1
    total: np.ndarray

    def row(self, i: int) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)[i]) for f in dataclasses.fields(self)}


def reward_terms(
    cfg: RewardConfig,
    arousal_bpm: np.ndarray,
    window: tuple[float, float],
    ceiling_bpm: float,
    progress: np.ndarray,
    changed: np.ndarray,
    blocked: np.ndarray,
    aborted: np.ndarray,
) -> RewardTerms:
    """Terms and total from the period's fear-driven rise sampled on its grid (S, N).

    The arithmetic is :func:`exposure_ctrl.sim.kernels.reward_of`, which the environments'
    per-step bookkeeping (:func:`~exposure_ctrl.sim.kernels.session_rows`) runs too.
    """
    a = np.ascontiguousarray(arousal_bpm, dtype=np.float64)
    n = a.shape[1]
    terms = np.empty((6, n))
    total = np.empty(n)

    def rows(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)))

    K.reward_rows(
        cfg.weights, a, float(window[0]), float(window[1]), float(ceiling_bpm),
        rows(progress), rows(changed), rows(blocked), rows(aborted), terms, total,
    )
    return RewardTerms(terms[0], terms[1], terms[2], terms[3], terms[4], terms[5], total)
