"""Shared pieces of the policy tests: scenarios, scripted observations, closed-loop runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exposure_ctrl.policy.spec import ObservationSpec, observation_spec
from exposure_ctrl.scenario import Scenario, load_scenario, resolve_scenario

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def spider() -> Scenario:
    return resolve_scenario("spider")


@pytest.fixture(scope="session")
def dial() -> Scenario:
    """One parameter, five levels: with the trivial patient, levels l2 and l3 are in the window."""
    return load_scenario(HERE / "dial.yaml")


class Scripted:
    """Builds observations of a scripted patient by feature name, in the features' units.

    Defaults describe a patient seen clearly with a known baseline, the scene just changed
    long enough ago for any move, arousal at zero.
    """

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.spec: ObservationSpec = observation_spec(sc)
        self.defaults: dict[str, float] = {
            "stale": 0.0,
            "baseline_known": 1.0,
            "since_scene_change_s": 600.0,
            "at_intensity_s": 600.0,
            "clean_frac": 1.0,
        }

    def obs(self, positions: Any, **values: float) -> np.ndarray:
        """One observation row (1, D): ``values`` by name in units; positions (K,)."""
        o = np.zeros((1, len(self.spec)), dtype=np.float64)
        vals = {**self.defaults, **values}
        for name, v in vals.items():
            i = self.spec.index(name)
            o[0, i] = v / self.spec.to_units[i]
        pos = np.asarray(positions, dtype=np.float64)
        for k, pid in enumerate(self.sc.parameter_ids):
            o[0, self.spec.index(f"pos_{pid}")] = pos[k] / max(self.sc.n_levels[k] - 1, 1)
        o[0, self.spec.index("intensity")] = float(self.sc.intensity_of_positions(np.asarray(positions)[None])[0])
        return o

    def mask(self, positions: Any) -> np.ndarray:
        return self.sc.action_mask(np.asarray(positions, dtype=np.int64)[None])


def step_positions(sc: Scenario, i: int) -> tuple[int, ...]:
    return tuple(int(x) for x in sc.hierarchy_positions[i])


def run_closed_loop(sc: Scenario, policy: Any, *, cohort: str = "trivial", sensor: str = "ideal", n: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """One session of ``n`` simulated patients with ``policy`` in charge (the shield inside)."""
    from exposure_ctrl.sim.batch import SessionBatch, SessionOptions
    from exposure_ctrl.sim.cohorts import get_cohort

    b = SessionBatch(sc, n, SessionOptions(cohort=get_cohort(cohort), sensor=sensor, recovery=False, split="eval"), np.random.default_rng(seed))
    b.start(np.arange(n), patient_index=np.arange(n))
    if hasattr(policy, "bind"):
        policy.bind(lambda: (b.sim.params, b.sim.patient, b.positions))
    policy.reset(n)
    obs = b.observation()
    done = np.zeros(n, dtype=bool)
    steps: list[np.ndarray] = []
    arousal: list[np.ndarray] = []
    moves = np.zeros(n)
    while not done.all():
        a, reasons = policy.act(obs, b.action_masks())
        assert len(reasons) == n and all(isinstance(r, str) and r for r in reasons)
        obs, _, term, info = b.step(a, active=~done)
        moves += (np.asarray(info["executed_action"]) != 0) & ~done
        steps.append(np.asarray(info["hierarchy_index"]).copy())
        arousal.append(b.sim.arousal_bpm().copy())
        done |= np.asarray(term, dtype=bool)
    return {
        "in_window": b.in_window_s / b.exposure_s,
        "max_step": b.max_step.copy(),
        "steps": np.array(steps),
        "arousal": np.array(arousal),
        "moves": moves,
    }


@pytest.fixture
def scripted_spider(spider: Scenario) -> Scripted:
    return Scripted(spider)
