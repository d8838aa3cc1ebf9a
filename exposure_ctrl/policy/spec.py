"""What a policy reads: the observation layout of a scenario, by name and in the features' units.

The gym and the live controller both build observations with
:class:`~exposure_ctrl.sim.observation.ObservationLayout` in its *scaled* form (tracker columns
divided by the tracker's ``observation_scales``). Rule policies want bpm and seconds, so
:class:`ObservationSpec` keeps, for every column, the factor that turns it back into the
feature's own unit, and reads columns by name (a layout change is caught by name, never by a
silently shifted column).
"""

from __future__ import annotations

import numpy as np

from exposure_ctrl.policy.base import ObservationView
from exposure_ctrl.scenario.model import Scenario

__all__ = ["ObservationSpec", "observation_spec", "positions_of"]


class ObservationSpec(ObservationView):
    """Names of the observation columns plus the factor that turns each into its unit."""

    def __init__(self, names: tuple[str, ...], to_units: np.ndarray) -> None:
        super().__init__(names)
        self.to_units = np.asarray(to_units, dtype=np.float64)
        if self.to_units.shape != (len(self.names),):
            raise ValueError("to_units must have one factor per column")

    def unit(self, obs: np.ndarray, name: str) -> np.ndarray:
        """Column ``name`` in its feature's unit (bpm, s, ...), (N,)."""
        i = self.index(name)
        return np.asarray(obs, dtype=np.float64)[:, i] * self.to_units[i]

    def unit_columns(self, obs: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Several columns in their units, (N, len(names))."""
        idx = [self.index(n) for n in names]
        return np.asarray(obs, dtype=np.float64)[:, idx] * self.to_units[idx]


def observation_spec(scenario: Scenario) -> ObservationSpec:
    """The (scaled) observation layout of ``scenario``, as the gym and the session build it."""
    from exposure_ctrl.arousal import ArousalTracker
    from exposure_ctrl.sim.observation import ObservationLayout

    probe = ArousalTracker(scenario, n=1)
    layout = ObservationLayout(scenario, probe.observation_names, probe.observation_scales, scaled=True)
    extra = len(layout.names) - layout.tracker_size
    to_units = np.concatenate([np.asarray(probe.observation_scales, dtype=np.float64), np.ones(extra)])
    return ObservationSpec(layout.names, to_units)


def positions_of(spec: ObservationView, scenario: Scenario, obs: np.ndarray) -> np.ndarray:
    """Parameter positions (N, K) decoded from the ``pos_<parameter>`` columns."""
    cols = [spec.index(f"pos_{pid}") for pid in scenario.parameter_ids]
    frac = np.asarray(obs, dtype=np.float64)[:, cols]
    return np.rint(frac * np.maximum(scenario.n_levels - 1, 1)).astype(np.int64)
