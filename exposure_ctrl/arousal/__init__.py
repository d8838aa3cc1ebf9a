"""arousal: heart-rate features and the online per-patient response model, batch-first.

One implementation for the live controller (N = 1) and the vectorised simulator (N patients in
numpy arrays), DESIGN.md invariant 6. docs/arousal.md gives every feature's formula and unit.

- :mod:`~exposure_ctrl.arousal.artifacts`: artifact rules (impossible values, ectopic and
  missed beats, contact loss, gaps); flagged data is excluded and counted.
- :mod:`~exposure_ctrl.arousal.baseline`: resting heart rate of the baseline phase with its
  uncertainty and a quality verdict (:class:`BaselineResult`).
- :mod:`~exposure_ctrl.arousal.features`: :class:`FeatureState`, O(1) per sample; the
  observation layout :data:`FEATURE_NAMES` / :class:`Feature`.
- :mod:`~exposure_ctrl.arousal.model`: :class:`ResponseModel`, a Kalman-filtered linear model
  of how each scene parameter moves this patient's arousal (lag, drift, SUDS).
- :mod:`~exposure_ctrl.arousal.tracker`: :class:`ArousalTracker`, both behind one object; its
  ``tick(t)`` returns the policies' observation.
"""

from exposure_ctrl.arousal.artifacts import ArtifactConfig
from exposure_ctrl.arousal.baseline import BaselineConfig, BaselineEstimator, BaselineResult
from exposure_ctrl.arousal.features import (
    FEATURE_NAMES,
    FEATURE_SCALES,
    FEATURE_UNITS,
    N_FEATURES,
    Feature,
    FeatureConfig,
    FeatureState,
    SampleBlock,
    pack_samples,
)
from exposure_ctrl.arousal.model import ModelConfig, ResponseModel, Sensitivity
from exposure_ctrl.arousal.tracker import ArousalTracker

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_SCALES",
    "FEATURE_UNITS",
    "N_FEATURES",
    "ArousalTracker",
    "ArtifactConfig",
    "BaselineConfig",
    "BaselineEstimator",
    "BaselineResult",
    "Feature",
    "FeatureConfig",
    "FeatureState",
    "ModelConfig",
    "ResponseModel",
    "SampleBlock",
    "Sensitivity",
    "pack_samples",
]
