"""Scenarios: the YAML scene format, its validation, and the operations on states.

>>> from exposure_ctrl.scenario import resolve_scenario
>>> sc = resolve_scenario("spider")
>>> sc.intensity(sc.start) <= sc.hierarchy_intensities[0]
True
"""

from exposure_ctrl.scenario.loader import (
    load_scenario,
    load_scenario_text,
    resolve_scenario,
    scenario_dirs,
    scenario_json_schema,
    shipped_scenarios,
)
from exposure_ctrl.scenario.model import (
    HOLD,
    Band,
    CategoricalParameter,
    ContinuousParameter,
    HierarchyStep,
    Level,
    OrdinalParameter,
    Parameter,
    Safety,
    Scenario,
    State,
    Targets,
    Timing,
    consistency_problems,
    did_you_mean,
)

__all__ = [
    "HOLD",
    "Band",
    "CategoricalParameter",
    "ContinuousParameter",
    "HierarchyStep",
    "Level",
    "OrdinalParameter",
    "Parameter",
    "Safety",
    "Scenario",
    "State",
    "Targets",
    "Timing",
    "consistency_problems",
    "did_you_mean",
    "load_scenario",
    "load_scenario_text",
    "resolve_scenario",
    "scenario_dirs",
    "scenario_json_schema",
    "shipped_scenarios",
]
