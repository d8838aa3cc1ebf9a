"""A policy learnt with Stable-Baselines3 (MaskablePPO from sb3-contrib), behind the
:class:`~exposure_ctrl.policy.base.Policy` interface.

This module is the only place that imports torch and SB3, and only inside functions: importing
:mod:`exposure_ctrl.policy` stays light for the live controller's start-up and for rule policies.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.policy.spec import ObservationSpec, positions_of
from exposure_ctrl.scenario.model import Scenario

__all__ = ["LearnedPolicy", "load_sb3_model", "KINDS", "guard_mask", "policy_guard_mask"]

log = logging.getLogger(__name__)

KINDS = ("maskable-ppo",)


def _import_sb3() -> Any:
    try:
        import sb3_contrib  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:  # pragma: no cover - both are dependencies
        raise ConfigError(
            f"loading a learned policy needs torch and sb3-contrib ({e}); install them with "
            "`pip install torch sb3-contrib` (CPU: add --index-url https://download.pytorch.org/whl/cpu)"
        ) from None
    from sb3_contrib import MaskablePPO

    return MaskablePPO


def load_sb3_model(kind: str, path: Path) -> Any:
    """Load a saved SB3 model of ``kind`` from ``path`` on the CPU."""
    if kind not in KINDS:
        raise ConfigError(f"unknown learned-policy kind {kind!r}; known: {', '.join(KINDS)}")
    cls = _import_sb3()
    try:
        return cls.load(str(path), device="cpu")
    except FileNotFoundError:
        raise ConfigError(f"{path}: the model file is missing") from None
    except Exception as e:  # SB3 raises many kinds on a corrupt file
        raise ConfigError(f"{path}: cannot load the model ({type(e).__name__}: {e})") from e


def guard_mask(
    mask: np.ndarray,
    observation: np.ndarray,
    spec: ObservationSpec,
    above_bpm: float | None,
    *,
    dwell_s: float | None = None,
    window_high_bpm: float | None = None,
    descend_above_bpm: float | None = None,
) -> np.ndarray:
    """The action mask with every escalation removed where the heart rate above baseline reads
    more than ``above_bpm`` (the learned policy's own guard, applied in training and live alike;
    the shield's rules come on top). ``None``: no such guard.

    ``dwell_s``: also hold while the minimum dwell since the last scene change runs (the shield
    would refuse any move then), except a step down while the heart rate, seen, reads above
    ``window_high_bpm`` (the shield's exemption).

    ``descend_above_bpm``: where the heart rate, seen, reads above it, only steps down are
    allowed (hold where none is possible): a reflex that acts before the ceiling.
    Hold is always allowed otherwise."""
    out = np.array(mask, dtype=bool, copy=True)
    if above_bpm is None and dwell_s is None and descend_above_bpm is None:
        out[:, 0] = True
        return out
    hr = spec.unit(observation, "hr_above_bpm")  # each column read once (hot path)
    seen = spec.unit(observation, "stale") < 0.5 if (dwell_s is not None or descend_above_bpm is not None) else None
    if above_bpm is not None:
        out[:, 1::2] &= ~(hr > above_bpm)[:, None]
    if dwell_s is not None:
        since = spec.unit(observation, "since_scene_change_s")
        waiting = since < float(dwell_s) - 1e-6
        high = np.inf if window_high_bpm is None else float(window_high_bpm)
        down_ok = seen & (hr > high)
        out[:, 1::2] &= ~waiting[:, None]
        out[:, 2::2] &= ~(waiting & ~down_ok)[:, None]
    out[:, 0] = True
    if descend_above_bpm is not None:
        hot = seen & (hr > float(descend_above_bpm))
        out[:, 1::2] &= ~hot[:, None]
        can_down = out[:, 2::2].any(axis=1)
        out[:, 0] &= ~(hot & can_down)
    return out



def policy_guard_mask(
    mask: np.ndarray,
    observation: np.ndarray,
    spec: Any,
    sc: Any,
    escalation_guard_bpm: float | None,
    dwell_guard: bool,
    descend_above_bpm: float | None,
) -> np.ndarray:
    """:func:`guard_mask` with a learned policy's guard settings as ``policy.json`` stores them
    (``dwell_guard`` holds for the scenario's minimum dwell, with the step-down exemption above
    its window): the one mapping training and the live policy share."""
    return guard_mask(
        np.asarray(mask, dtype=bool), observation, spec, escalation_guard_bpm,
        dwell_s=float(sc.timing.min_dwell_s) if dwell_guard else None,
        window_high_bpm=float(sc.targets.arousal_window_bpm.high), descend_above_bpm=descend_above_bpm,
    )

class LearnedPolicy:
    """An SB3 model (``predict`` with action masks) as a batch-first :class:`Policy`.

    ``deterministic`` picks the most probable legal action (the default, live and in
    evaluation). The reason names the move and the model's probability for it.
    """

    def __init__(
        self,
        scenario: Scenario,
        model: Any,
        spec: ObservationSpec,
        *,
        name: str = "ppo",
        deterministic: bool = True,
        escalation_guard_bpm: float | None = None,
        dwell_guard: bool = False,
        descend_above_bpm: float | None = None,
    ) -> None:
        self.sc = scenario
        self.escalation_guard_bpm = escalation_guard_bpm
        self.dwell_guard = bool(dwell_guard)
        self.descend_above_bpm = descend_above_bpm
        self.model = model
        self.spec = spec
        self.name = name
        self.deterministic = deterministic
        shape = getattr(getattr(model, "observation_space", None), "shape", None)
        if shape is not None and tuple(shape) != (len(spec),):
            from exposure_ctrl.errors import PolicyMismatchError

            raise PolicyMismatchError(f"the model reads {shape[0]} observation columns, the scenario gives {len(spec)}")

    def reset(self, n: int = 1) -> None:
        """Feed-forward: no per-session memory."""

    def guarded(self, observation: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        """``action_mask`` minus what the policy's own guards forbid (:func:`policy_guard_mask`)."""
        return policy_guard_mask(
            action_mask, observation, self.spec, self.sc, self.escalation_guard_bpm, self.dwell_guard,
            self.descend_above_bpm,
        )

    def probabilities(self, observation: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        """The policy's action probabilities under the mask, (N, A)."""
        import torch

        obs_t, _ = self.model.policy.obs_to_tensor(np.asarray(observation, dtype=np.float32))
        with torch.no_grad():
            dist = self.model.policy.get_distribution(obs_t, action_masks=np.asarray(action_mask, dtype=bool))
            return dist.distribution.probs.cpu().numpy()

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
        obs = np.asarray(observation, dtype=np.float32)
        mask = self.guarded(obs, action_mask)
        probs = self.probabilities(obs, mask)
        if self.deterministic:
            actions = np.argmax(np.where(mask, probs, -1.0), axis=1)
        else:
            rng = np.random.default_rng()
            cum = np.cumsum(np.where(mask, probs, 0.0), axis=1)
            u = rng.random(len(obs)) * cum[:, -1]
            actions = (cum < u[:, None]).sum(axis=1)
        actions = actions.astype(np.int64)
        pos = positions_of(self.spec, self.sc, obs)
        hr = obs[:, self.spec.index("hr_above_bpm")] * self.spec.to_units[self.spec.index("hr_above_bpm")]
        reasons = []
        for i, a in enumerate(actions):
            what = "hold" if a == 0 else self.sc.describe_action(int(a), tuple(int(x) for x in pos[i]))
            reasons.append(f"learned policy: {what} (p={probs[i, a]:.2f}; arousal {hr[i]:.0f} bpm)")
        return actions, reasons
