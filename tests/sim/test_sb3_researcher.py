"""The researcher's route of issue 4: ``gymnasium.make`` the environment and train Stable-Baselines3
on it without touching exposure-ctrl's code (plain PPO, and MaskablePPO with the env's
``action_masks``); a seed reproduces the training, another seed gives another policy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import exposure_ctrl  # noqa: F401  (registers exposure_ctrl/Exposure-v0)


def _train(algo: str, seed: int) -> tuple[np.ndarray, object]:
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    venv = make_vec_env(
        "exposure_ctrl/Exposure-v0", n_envs=2, seed=seed,
        env_kwargs={"scenario": "spider", "cohort": "spider-moderate", "recovery": False},
    )  # fmt: skip
    cls = MaskablePPO if algo == "maskable" else PPO
    model = cls("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=seed, device="cpu")
    model.learn(256)
    flat = torch.cat([p.detach().flatten() for p in model.policy.parameters()]).numpy().copy()
    return flat, model


@pytest.mark.parametrize("algo", ["ppo", "maskable"])
def test_sb3_trains_on_the_registered_env_and_seeds_reproduce(algo):
    a, model = _train(algo, 0)
    b, _ = _train(algo, 0)
    c, _ = _train(algo, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the trained policy acts in a freshly made environment (legal actions under the mask)
    env = gym.make("exposure_ctrl/Exposure-v0", scenario="spider", recovery=False)
    obs, info = env.reset(seed=5)
    for _ in range(20):
        if algo == "maskable":
            action, _ = model.predict(obs, action_masks=info["action_mask"], deterministic=True)
            assert info["action_mask"][int(action)]
        else:
            action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(int(action))
        obs, _, term, trunc, info = env.step(int(action))
        assert not (term or trunc)
