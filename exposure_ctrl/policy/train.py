"""Training a learned policy: MaskablePPO (sb3-contrib) on simulated patients, with the shield
inside the environment exactly as live.

Domain randomisation: every training session meets a new patient drawn from the training split
of the cohort (physiology, sensitivities, habituation, tolerance all vary), through the batched
sessions of :class:`~exposure_ctrl.policy.vecenv.BatchVecEnv`. Invalid moves are masked.
The result is a saved policy directory (:mod:`~exposure_ctrl.policy.saved`): ``model.zip``,
``policy.json`` (scenario signature, observation names, training settings, software versions,
wall time), ``training.json`` (the learning curve) and ``checkpoints/``.

Python API::

    from exposure_ctrl.policy.train import TrainConfig, train
    result = train(TrainConfig(scenario="spider", timesteps=2_000_000, seed=1), out_dir="runs/spider")

Imports torch and SB3: import this module only where training runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.policy.saved import FORMAT, file_sha256, scenario_signature, write_policy_json
from exposure_ctrl.scenario.model import Scenario

__all__ = ["TrainConfig", "TrainResult", "train", "make_vec_env", "software_versions"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in ``policy.json``).

    The reward weights override the environment's defaults
    (:class:`~exposure_ctrl.sim.reward.RewardConfig`): the ceiling costs five times the window's
    gain (the goal allows no more time above it than the best baseline), progress earns one per
    new step (enough to climb, not enough to rush to the top and run out of fear-provoking
    scenes), changes are free (lateral moves to keep a habituating patient in the window).
    Settings chosen on training-split validation patients, never on the held-out ones."""

    scenario: str = "spider"
    cohort: str | None = None
    timesteps: int = 1_500_000
    seed: int = 0
    n_envs: int = 32
    n_steps: int = 128
    batch_size: int = 1024
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.995
    gae_lambda: float = 0.95
    ent_coef: float = 0.02
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (128, 128)
    sensor: str = "strap"
    suds_every_s: float | None = 60.0
    reward_window: float = 1.0
    reward_ceiling: float = 5.0
    reward_progress: float = 1.0
    reward_change: float = 0.0
    reward_blocked: float = 0.1
    reward_abort: float = 50.0
    shaping: float = 0.0  # potential-based shaping on the distance from the window (training only)
    exposure_max_s: float | None = None  # shorten the sessions (smoke tests only)
    torch_threads: int = 1
    checkpoint_every: int | None = 500_000

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise ConfigError(f"timesteps must be at least 1, found {self.timesteps}")
        if self.n_envs < 1 or self.n_steps < 1:
            raise ConfigError("n_envs and n_steps must be at least 1")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2, found {self.batch_size}")


@dataclasses.dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    wall_s: float
    timesteps: int
    curve: list[dict[str, float]]


def software_versions() -> dict[str, str]:
    import gymnasium
    import sb3_contrib
    import stable_baselines3
    import torch

    from exposure_ctrl import __version__

    return {
        "exposure_ctrl": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
        "gymnasium": gymnasium.__version__,
    }


def _scenario(cfg: TrainConfig, scenario: Scenario | None) -> Scenario:
    from exposure_ctrl.scenario import resolve_scenario

    sc = scenario if scenario is not None else resolve_scenario(cfg.scenario)
    if cfg.exposure_max_s is not None:
        sc = sc.model_copy(update={"timing": sc.timing.model_copy(update={"exposure_max_s": float(cfg.exposure_max_s)})})
    return sc


def make_vec_env(cfg: TrainConfig, scenario: Scenario | None = None) -> Any:
    """The training environment of ``cfg`` (a :class:`BatchVecEnv`)."""
    from exposure_ctrl.policy.vecenv import BatchVecEnv
    from exposure_ctrl.sim.batch import SessionOptions
    from exposure_ctrl.sim.cohorts import cohort_for
    from exposure_ctrl.sim.reward import RewardConfig

    sc = _scenario(cfg, scenario)
    reward = RewardConfig(
        window=cfg.reward_window,
        ceiling=cfg.reward_ceiling,
        progress=cfg.reward_progress,
        change=cfg.reward_change,
        blocked=cfg.reward_blocked,
        abort=cfg.reward_abort,
    )
    opts = SessionOptions(
        cohort=cohort_for(sc, cfg.cohort),
        split="train",
        sensor=cfg.sensor,
        reward=reward,
        suds_every_s=cfg.suds_every_s,
        recovery=False,
    )
    return BatchVecEnv(sc, cfg.n_envs, opts, seed=cfg.seed, shaping=cfg.shaping, gamma=cfg.gamma)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    scenario: Scenario | None = None,
    tensorboard: str | Path | None = None,
    progress_bar: bool = False,
    on_report: Callable[[dict[str, float]], None] | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train MaskablePPO per ``cfg`` and save the policy directory ``out_dir``."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback

    if tensorboard is not None:
        try:
            import tensorboard as _tb  # noqa: F401
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sc = _scenario(cfg, scenario)
    env = make_vec_env(cfg, sc)
    curve: list[dict[str, float]] = []
    t0 = time.monotonic()

    class _Report(BaseCallback):
        """Every rollout: mean return, time in window, step and aborts of the sessions finished."""

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            done = env.completed
            env.completed = []
            if not done:
                return
            row = {
                "timesteps": float(self.num_timesteps),
                "wall_s": round(time.monotonic() - t0, 1),
                "sessions": float(len(done)),
                "return": float(np.mean([d["return"] for d in done])),
                "time_in_window_pct": 100.0 * float(np.mean([d["in_window"] for d in done])),
                "highest_step": 1.0 + float(np.mean([d["highest_step"] for d in done])),
                "abort_pct": 100.0 * float(np.mean([d["aborted"] for d in done])),
            }
            curve.append(row)
            self.logger.record("exposure/time_in_window_pct", row["time_in_window_pct"])
            self.logger.record("exposure/highest_step", row["highest_step"])
            self.logger.record("exposure/abort_pct", row["abort_pct"])
            if on_report is not None:
                on_report(row)

    callbacks: list[Any] = [_Report()]
    if cfg.checkpoint_every:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(1, cfg.checkpoint_every // cfg.n_envs), save_path=str(out / "checkpoints"), name_prefix="model"
            )
        )
    model = MaskablePPO(
        "MlpPolicy",
        env,
        n_steps=cfg.n_steps,
        batch_size=min(cfg.batch_size, cfg.n_envs * cfg.n_steps),
        n_epochs=cfg.n_epochs,
        learning_rate=cfg.learning_rate,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        ent_coef=cfg.ent_coef,
        clip_range=cfg.clip_range,
        policy_kwargs={"net_arch": list(cfg.net_arch)},
        seed=cfg.seed,
        device="cpu",
        verbose=0,
        tensorboard_log=str(tensorboard) if tensorboard is not None else None,
    )
    model.learn(total_timesteps=int(cfg.timesteps), callback=CallbackList(callbacks), progress_bar=progress_bar)
    wall = time.monotonic() - t0
    model_path = out / "model.zip"
    model.save(str(model_path))
    versions = software_versions()
    meta = {
        "format": FORMAT,
        "id": f"ppo-{sc.id}",
        "kind": "maskable-ppo",
        "description": f"MaskablePPO trained on {cfg.timesteps:,} decisions of simulated {env.options.cohort.name} patients (seed {cfg.seed})",
        "scenario": scenario_signature(sc),
        "observation": {"names": list(env.observation_names), "scaled": True},
        "model": {"file": model_path.name, "sha256": file_sha256(model_path)},
        "training": {
            "config": dataclasses.asdict(cfg),
            "cohort": env.options.cohort.name,
            "split": "train",
            "command": command,
            "wall_s": round(wall, 1),
            "timesteps": int(model.num_timesteps),
            "machine": {"cpus": _cpus(), "platform": platform.platform()},
            "versions": versions,
        },
    }
    write_policy_json(out, meta)
    (out / "training.json").write_text(json.dumps({"curve": curve}, indent=1) + "\n", encoding="utf-8")
    log.info("trained %s in %.0f s", meta["id"], wall)
    return TrainResult(out, model_path, wall, int(model.num_timesteps), curve)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
