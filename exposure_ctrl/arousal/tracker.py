"""Features and response model of N patients behind one object: what the session and the
simulator feed, and the observation the policies read.

::

    tr = ArousalTracker(scenario, n=N)
    tr.begin_baseline(t); ...update(...)...; base = tr.finish_baseline(t)
    tr.set_scene(t, positions)            # (N, K); also at exposure start
    tr.update(t, bpm, rr, rr_count, contact, present)   # every sample slot (or update_block)
    tr.set_suds(t, suds, mask)
    obs = tr.tick(t)                      # every decision: teaches the model, returns (N, D)

The observation is ``FEATURE_NAMES`` then ``model.observation_names`` (``observation_names``).
The model learns from the smoothed heart rate above baseline at each ``tick`` when the signal
is fresh (not stale) and a baseline is known, and from every SUDS rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from exposure_ctrl.arousal.baseline import BaselineResult
from exposure_ctrl.arousal.features import (
    FEATURE_NAMES,
    FEATURE_SCALES,
    N_FEATURES,
    Feature,
    FeatureConfig,
    FeatureState,
)
from exposure_ctrl.arousal.model import ModelConfig, ResponseModel
from exposure_ctrl.sensors.sample import HeartSample, Quality

__all__ = ["ArousalTracker"]

_MODEL_SCALE_BPM = 10.0


class ArousalTracker:
    """A :class:`FeatureState` and a :class:`ResponseModel` fed together."""

    def __init__(
        self,
        scenario: Any,
        n: int = 1,
        *,
        feature_config: FeatureConfig | None = None,
        model_config: ModelConfig | None = None,
        positions: Sequence[int] | np.ndarray | None = None,
        t0: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.n = int(n)
        self.features = FeatureState(scenario, n, feature_config, t0=t0)
        self.model = ResponseModel(scenario, n, model_config, positions=positions)
        self.observation_names: tuple[str, ...] = FEATURE_NAMES + self.model.observation_names
        self.observation_size = len(self.observation_names)
        self.observation_scales = np.concatenate(
            [FEATURE_SCALES, np.full(self.model.observation_size, _MODEL_SCALE_BPM)]
        )

    # inputs
    def update(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """See :meth:`FeatureState.update`."""
        return self.features.update(*args, **kwargs)

    def update_block(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """See :meth:`FeatureState.update_block`."""
        return self.features.update_block(*args, **kwargs)

    def add(self, sample: HeartSample) -> Quality:
        """See :meth:`FeatureState.add` (N = 1)."""
        return self.features.add(sample)

    def set_scene(
        self,
        t: float | np.ndarray,
        positions: np.ndarray | Sequence[int],
        mask: np.ndarray | None = None,
    ) -> None:
        """A scene change (positions (N, K) or (K,)) for the patients in ``mask``."""
        self.features.set_scene(t, positions, mask=mask)
        self.model.set_scene(t, positions, mask)

    def set_suds(
        self, t: float | np.ndarray, suds: np.ndarray | float, mask: np.ndarray | None = None
    ) -> None:
        """A SUDS rating (0..100) for the patients in ``mask``; the model learns from it."""
        self.features.set_suds(t, suds, mask)
        valid = (
            np.ones(self.n, dtype=bool)
            if mask is None
            else np.broadcast_to(np.asarray(mask, bool), (self.n,))
        )
        self.model.observe_suds(
            t, np.broadcast_to(np.asarray(suds, dtype=np.float64), (self.n,)), valid
        )

    def begin_baseline(self, t: float) -> None:
        self.features.begin_baseline(t)

    def finish_baseline(self, t: float | None = None, *, apply: bool = True) -> BaselineResult:
        return self.features.finish_baseline(t, apply=apply)

    def set_baseline(self, bpm: np.ndarray | float, **kwargs: Any) -> None:
        self.features.set_baseline(bpm, **kwargs)

    def put_rows(self, rows: np.ndarray | Sequence[int], src: ArousalTracker) -> None:
        """Overwrite patients ``rows`` with the patients of ``src`` (a tracker of ``len(rows)``
        patients of the same scenario), e.g. when a vectorised environment replaces some."""
        self.features.put_rows(rows, src.features)
        self.model.put_rows(rows, src.model)

    # outputs
    def observe(self, t: float | np.ndarray, *, scaled: bool = False) -> np.ndarray:
        """The observation (N, observation_size) without teaching the model."""
        out = np.empty((self.n, self.observation_size))
        self.features.observe(t, out=out[:, :N_FEATURES])
        self.model.observation(out=out[:, N_FEATURES:])
        if scaled:
            out /= self.observation_scales
        return out

    def tick(self, t: float | np.ndarray, *, scaled: bool = False) -> np.ndarray:
        """A decision tick: the model learns from the current arousal; returns the observation."""
        out = np.empty((self.n, self.observation_size))
        f = self.features.observe(t, out=out[:, :N_FEATURES])
        valid = (f[:, Feature.STALE] == 0) & (f[:, Feature.BASELINE_KNOWN] == 1)
        self.model.observe_hr(t, f[:, Feature.HR_ABOVE_BPM], valid)
        self.model.observation(out=out[:, N_FEATURES:])
        if scaled:
            out /= self.observation_scales
        return out
