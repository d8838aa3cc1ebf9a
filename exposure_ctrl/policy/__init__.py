"""policy: what decides the next scene change (see DESIGN.md).

- :mod:`.base`: the :class:`Policy` protocol (observation + mask → actions + reasons).
- :mod:`.rules`: rule baselines (fixed schedule, habituation criterion, band PI, model greedy).
- :mod:`.qlearning`: tabular Q-learning after Mahmoudi-Nejad et al. (2025).
- :mod:`.oracle`: MPC with the true patient model (simulation only; the upper bound).
- :mod:`.learned`: SB3 MaskablePPO behind the protocol (the only place torch is imported).
- :mod:`.registry`: :func:`load_policy`, the one entry point; :mod:`.saved`: the directory format.

Importing this package imports neither torch nor SB3.
"""

from exposure_ctrl.policy.base import Decision, ObservationView, Policy, decide
from exposure_ctrl.policy.registry import (
    DEFAULT_RULE,
    LoadedPolicy,
    load_policy,
    policy_dirs,
    policy_names,
    shipped_policy_dir,
)
from exposure_ctrl.policy.spec import ObservationSpec, observation_spec

__all__ = [
    "DEFAULT_RULE",
    "Decision",
    "LoadedPolicy",
    "ObservationSpec",
    "ObservationView",
    "Policy",
    "decide",
    "load_policy",
    "observation_spec",
    "policy_dirs",
    "policy_names",
    "shipped_policy_dir",
]
