"""The simulated-patient gym: calibrated arousal dynamics, cohorts, sensors, the batched
simulator and the Gymnasium environment ``exposure_ctrl/Exposure-v0``.

Layers inside this room: pure dynamics (:mod:`.patient`, :mod:`.stimulus`, :mod:`.sensors`) <
populations (:mod:`.cohorts`) < the batched simulator (:mod:`.simulator`) < environments.
See ``docs/simulator.md`` for the model, every default and its source.
"""

from exposure_ctrl.sim.cohorts import COHORTS, CohortSpec, get_cohort, sample_patients
from exposure_ctrl.sim.patient import PatientParams, PatientState
from exposure_ctrl.sim.sensors import SENSORS, SensorFrames, frames_to_samples
from exposure_ctrl.sim.simulator import SimStep, Simulator

__all__ = [
    "COHORTS",
    "CohortSpec",
    "get_cohort",
    "sample_patients",
    "PatientParams",
    "PatientState",
    "SENSORS",
    "SensorFrames",
    "frames_to_samples",
    "SimStep",
    "Simulator",
]
