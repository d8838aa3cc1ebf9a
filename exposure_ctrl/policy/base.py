"""What a policy is: observation and action mask in, action and a reason out.

Every policy — rule baselines, tabular Q-learning, the learned PPO policy, the simulation-only
oracle — satisfies :class:`Policy`. Policies are batch-first like the rest of the controller:
``act`` takes observations of N patients (N = 1 live) and returns N actions and N short reasons
a therapist can read ("arousal fell by half from its peak: next step"). The shield
(:mod:`exposure_ctrl.safety`) filters every action afterwards; a policy need not repeat its rules.

Observations are the environment's vector (arousal features, parameter positions, response-model
estimates). Rule policies read them by *name* through :class:`ObservationView`, so a change in the
layout is caught by name rather than silently shifting columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from exposure_ctrl.errors import PolicyMismatchError

__all__ = ["Policy", "Decision", "ObservationView", "decide"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """One patient's decision: the action index (0 = hold) and why."""

    action: int
    reason: str


@runtime_checkable
class Policy(Protocol):
    """The policy interface (SB3's ``predict`` is adapted to it by the learned policy)."""

    name: str

    def reset(self, n: int = 1) -> None:
        """Start new sessions for ``n`` patients (clears any per-session memory)."""

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Observations (N, D) and masks (N, A) → actions (N,) and N reasons."""


def decide(policy: Policy, observation: np.ndarray, action_mask: np.ndarray) -> Decision:
    """Convenience for one patient (the live controller)."""
    actions, reasons = policy.act(
        np.asarray(observation, dtype=np.float64).reshape(1, -1),
        np.asarray(action_mask, dtype=bool).reshape(1, -1),
    )
    return Decision(int(actions[0]), reasons[0])


class ObservationView:
    """Named access to the columns of an observation matrix."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._index = {n: i for i, n in enumerate(self.names)}
        if len(self._index) != len(self.names):
            raise ValueError("observation names must be unique")

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            from exposure_ctrl.scenario.model import did_you_mean

            raise PolicyMismatchError(
                f"the observation has no column {name!r}" + did_you_mean(name, self.names)
            ) from None

    def get(self, obs: np.ndarray, name: str) -> np.ndarray:
        """Column ``name`` of observations (N, D) → (N,)."""
        return np.asarray(obs)[:, self.index(name)]

    def columns(self, obs: np.ndarray, prefix: str) -> np.ndarray:
        """Every column whose name starts with ``prefix``, in order → (N, m)."""
        idx = [i for i, n in enumerate(self.names) if n.startswith(prefix)]
        return np.asarray(obs)[:, idx]

    def __len__(self) -> int:
        return len(self.names)
