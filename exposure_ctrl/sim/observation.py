"""The policies' observation: arousal features and response-model estimates (from
:class:`~exposure_ctrl.arousal.ArousalTracker`), then the scene's parameter positions and the
elapsed fraction of the exposure phase.

The same layout serves the gym and the live controller (DESIGN.md invariant 6): build it with
:meth:`ObservationLayout.build` from the tracker's observation, the positions and the time.

Columns, in order (``ObservationLayout.names``):

1. the tracker's columns: ``FEATURE_NAMES`` then the response model's ``model_*`` columns,
   divided by the tracker's ``observation_scales`` when ``scaled`` (the default);
2. ``pos_<parameter>``: each parameter's level index divided by its number of levels minus one
   (0 = least feared level, 1 = most feared);
3. ``exposure_time_frac``: exposure time elapsed over ``timing.exposure_max_s`` (0..1).

**Bounds** (``low``/``high``, in the units of the observation): fractions, 0/1 flags, the
intensity, the scaled SUDS rating, positions and the time fraction lie in [0, 1]; every other
column lies in [-100, 100] (scaled units; times the scale when not scaled). Values outside the
bounds (e.g. minutes without a heart-rate sample) are clipped to them.
"""

from __future__ import annotations

import numpy as np

from exposure_ctrl.scenario.model import Scenario
from exposure_ctrl.sim import kernels as K

__all__ = ["ObservationLayout", "UNIT_COLUMNS", "BOUND"]

BOUND = 100.0
"""Symmetric bound of the unbounded columns, in scaled units."""

UNIT_COLUMNS = frozenset(
    {
        "in_window_frac",
        "above_window_frac",
        "rmssd_valid",
        "intensity",
        "fall_from_peak_frac",
        "suds",
        "suds_known",
        "stale",
        "clean_frac",
        "baseline_known",
    }
)
"""Tracker columns that lie in [0, 1] once scaled."""


class ObservationLayout:
    """Names, scales and bounds of the observation for one scenario."""

    def __init__(self, scenario: Scenario, tracker_names: tuple[str, ...], tracker_scales: np.ndarray, *, scaled: bool = True) -> None:
        self.scenario = scenario
        self.scaled = bool(scaled)
        self.tracker_size = len(tracker_names)
        extra = tuple(f"pos_{pid}" for pid in scenario.parameter_ids) + ("exposure_time_frac",)
        self.names: tuple[str, ...] = tuple(tracker_names) + extra
        self.size = len(self.names)
        unit = np.array([n in UNIT_COLUMNS for n in tracker_names] + [True] * len(extra))
        scales = np.concatenate([np.asarray(tracker_scales, dtype=np.float64), np.ones(len(extra))])
        self.scales = scales if scaled else np.ones_like(scales)
        """Multiply an observation by these to get the features' own units."""
        lo = np.where(unit, 0.0, -BOUND)
        hi = np.where(unit, 1.0, BOUND)
        if not scaled:
            lo, hi = lo * scales, hi * scales
        self.low = lo.astype(np.float32)
        self.high = hi.astype(np.float32)
        self._levels_minus_one = np.maximum(scenario.n_levels - 1, 1).astype(np.float64)
        self._exposure_s = float(scenario.timing.exposure_max_s)
        self._ones = np.ones(self.tracker_size)
        self._divisor = np.ascontiguousarray(tracker_scales, dtype=np.float64) if scaled else self._ones

    def build(self, tracker_obs: np.ndarray, positions: np.ndarray, exposure_s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Observations (N, size), float32, clipped to the bounds, from the tracker's
        observation as it should appear (already divided by its scales when ``scaled``)."""
        return self._build(tracker_obs, self._ones, positions, exposure_s, out)

    def build_raw(self, tracker_obs: np.ndarray, positions: np.ndarray, exposure_s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`build` from the tracker's unscaled observation (divided here when ``scaled``)."""
        return self._build(tracker_obs, self._divisor, positions, exposure_s, out)

    def _build(self, tracker_obs: np.ndarray, divisor: np.ndarray, positions: np.ndarray, exposure_s: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        t = np.ascontiguousarray(tracker_obs, dtype=np.float64)
        n = t.shape[0]
        o = np.empty((n, self.size), dtype=np.float32) if out is None else out
        K.observation_rows(
            t,
            divisor,
            _rows(positions, (n, self.scenario.n_parameters)),
            self._levels_minus_one,
            _rows(exposure_s, (n,)),
            self._exposure_s,
            self.low,
            self.high,
            o,
        )
        return o


def _rows(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` as a C-ordered float64 array of ``shape`` (broadcast only when it is not already)."""
    if not (isinstance(x, np.ndarray) and x.shape == shape):
        x = np.broadcast_to(x, shape)
    return np.ascontiguousarray(x, dtype=np.float64)
