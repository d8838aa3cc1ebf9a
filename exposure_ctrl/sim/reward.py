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
down and up again earns nothing. Defaults are in :class:`RewardConfig`; the arithmetic is
:func:`exposure_ctrl.sim.kernels.reward_of`, run per step by
:func:`~exposure_ctrl.sim.kernels.session_rows`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


__all__ = ["RewardConfig"]


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
