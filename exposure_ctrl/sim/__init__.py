"""The simulated-patient gym: calibrated arousal dynamics, cohorts, sensors, the batched
simulator and the Gymnasium environment ``exposure_ctrl/Exposure-v0``.

Layers inside this room: pure dynamics (:mod:`.patient`, :mod:`.stimulus`, :mod:`.sensors`) <
populations (:mod:`.cohorts`) < the batched simulator (:mod:`.simulator`) < sessions
(:mod:`.batch`) < environments (:mod:`.env`, :mod:`.vector_env`); :mod:`.strap` is the
simulated strap for the live loop. See ``docs/simulator.md`` for the model, every default
and its source.

Names are imported lazily (``import exposure_ctrl`` registers the environment and must stay
cheap)::

    >>> import gymnasium as gym, exposure_ctrl
    >>> env = gym.make("exposure_ctrl/Exposure-v0", scenario="spider", cohort="spider-moderate")
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "COHORTS": "exposure_ctrl.sim.cohorts",
    "CohortSpec": "exposure_ctrl.sim.cohorts",
    "get_cohort": "exposure_ctrl.sim.cohorts",
    "sample_patients": "exposure_ctrl.sim.cohorts",
    "PatientParams": "exposure_ctrl.sim.patient",
    "PatientState": "exposure_ctrl.sim.patient",
    "SENSORS": "exposure_ctrl.sim.sensors",
    "SensorFrames": "exposure_ctrl.sim.sensors",
    "frames_to_samples": "exposure_ctrl.sim.sensors",
    "SimStep": "exposure_ctrl.sim.simulator",
    "Simulator": "exposure_ctrl.sim.simulator",
    "RewardConfig": "exposure_ctrl.sim.reward",
    "ExposureEnv": "exposure_ctrl.sim.env",
    "ExposureVectorEnv": "exposure_ctrl.sim.vector_env",
    "ListRecorder": "exposure_ctrl.sim.records",
    "ENV_ID": "exposure_ctrl.sim.registration",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'exposure_ctrl.sim' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
