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

import math
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from exposure_ctrl._threads import parallel_ok
from exposure_ctrl.arousal.baseline import BaselineResult
from exposure_ctrl.arousal.features import (
    _NO_SCALES,
    FEATURE_NAMES,
    FEATURE_SCALES,
    N_FEATURES,
    Feature,
    FeatureConfig,
    FeatureState,
    _observe_one,
)
from exposure_ctrl.arousal.model import (
    ModelConfig,
    ResponseModel,
    _advance_one,
    _kalman_one,
    _observation_one,
    _time_ok,
)
from exposure_ctrl.sensors.sample import HeartSample, Quality

__all__ = ["ArousalTracker", "warm_up"]

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
        chunks: int | None = None,
        _warm: bool = True,
    ) -> None:
        if _warm:
            warm_up(scenario)
        self.scenario = scenario
        self.n = int(n)
        self.features = FeatureState(scenario, n, feature_config, t0=t0, chunks=chunks)
        self.model = ResponseModel(scenario, n, model_config, positions=positions)
        self.observation_names: tuple[str, ...] = FEATURE_NAMES + self.model.observation_names
        self.observation_size = len(self.observation_names)
        self.observation_scales = np.concatenate(
            [FEATURE_SCALES, np.full(self.model.observation_size, _MODEL_SCALE_BPM)]
        )

    @property
    def chunks(self) -> int:
        """Contiguous ranges of patients :meth:`tick` and :meth:`update_block` compute at once
        on numba's threads (exposure_ctrl/_threads.py); the results do not depend on it."""
        return self.features.chunks

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
        self.model.observe_suds(t, suds, mask)

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
        """The observation (N, observation_size) without teaching the model (nor moving its
        clock)."""
        return self._run(t, scaled, False)

    def tick(self, t: float | np.ndarray, *, scaled: bool = False) -> np.ndarray:
        """A decision tick: the model learns from the current arousal; returns the observation."""
        return self._run(t, scaled, True)

    def _run(self, t: float | np.ndarray, scaled: bool, learn: bool) -> np.ndarray:
        fs, md = self.features, self.model
        out = np.empty((self.n, self.observation_size))
        args = (
            fs._st, fs.bins.sums, fs.bins.index, fs._cfg, md._time(t),
            self.observation_scales if scaled else _NO_SCALES, learn,
            md._q_per_s, md._lag, md.config.hr_noise_bpm, md._gate, md.t, md._z, md._phi,
            md._m, md._c, md.n_hr_updates, md.n_gated, md.positions, md._lmax,
            md._step_index, md._step_value, md._sens_index, md._sens_value, out,
        )  # fmt: skip
        if self.chunks > 1 and parallel_ok():
            ok = _tick_kernel_parallel(*args, self.chunks)
        else:
            ok = _tick_kernel(*args, 0, self.n, True)
        if not ok:
            raise ValueError("the response model's time cannot go backwards")
        return out


def warm_up(sc: Any) -> None:
    """Compile (or load from numba's cache) every kernel of the package for the argument types
    the package itself passes, on a throw-away tracker of scenario ``sc``, once per process:
    ~0.3 s from the cache, ~13-15 s on an empty one (``benchmarks/bench_arousal.py``).
    :class:`ArousalTracker` calls it when the first one is built, so that a live session or an
    environment does not pay it at its first sample (the kernels' types do not depend on N or
    the scenario)."""
    global _warm
    if _warm:
        return
    _warm = True
    n, k = 1, sc.n_parameters
    tr = ArousalTracker(sc, n=n, _warm=False)
    tr.begin_baseline(0.0)
    tr.add(HeartSample(1.0, 70.0, (850.0,), contact=True))
    tr.update_block(
        np.array([2.0, 3.0]), np.full((2, n), 70.0), np.full((2, n, 1), 850.0),
        np.ones((2, n), dtype=np.int64), np.ones((2, n), dtype=np.int8),
        np.ones((2, n), dtype=bool), np.zeros((2, n), dtype=np.int64),
    )  # fmt: skip
    tr.finish_baseline(3.0)
    tr.add(HeartSample(4.0, 70.0, (850.0,), contact=True))
    tr.update_block(np.array([5.0]), np.full((1, n), 70.0))
    tr.set_scene(5.0, np.zeros((n, k), dtype=np.int64), np.ones(n, bool))
    tr.set_scene(5.0, np.zeros(k, dtype=np.int64))
    tr.set_suds(5.0, np.full(n, 40.0), np.ones(n, bool))
    tr.set_suds(5.0, 40.0)
    tr.tick(6.0)
    tr.observe(6.0, scaled=True)
    tr.features.observe(6.0)
    m = tr.model
    m.observe_hr(6.0, np.zeros(n))
    m.observe_hr(6.0, np.zeros(n), np.ones(n, bool))
    m.predict_now()
    m.predict_next()
    m.action_effects()
    m.sensitivity_arrays()
    m.observation()


_warm = False


@numba.njit(cache=True, nogil=True, parallel=True)
def _tick_kernel_parallel(
    st, bsum, bidx, fcfg, t, scales, learn, q, lag, noise, gate_sigma, mt, z, phi, m, c,
    n_hr_updates, n_gated, positions, lmax, step_index, step_value, sens_index, sens_value,
    out, chunks,
):  # fmt: skip
    """:func:`_tick_kernel` of all patients split into ``chunks`` contiguous ranges computed
    at once on numba's threads; the same numbers bit for bit."""
    if learn and not _time_ok(t, mt):
        return False
    n = st.shape[0]
    for k in numba.prange(chunks):
        _tick_kernel(
            st, bsum, bidx, fcfg, t, scales, learn, q, lag, noise, gate_sigma, mt, z, phi, m, c,
            n_hr_updates, n_gated, positions, lmax, step_index, step_value, sens_index,
            sens_value, out, k * n // chunks, (k + 1) * n // chunks, False,
        )  # fmt: skip
    return True


@numba.njit(cache=True, nogil=True)
def _tick_kernel(
    st: np.ndarray, bsum: np.ndarray, bidx: np.ndarray, fcfg: np.ndarray, t: np.ndarray,
    scales: np.ndarray, learn: bool, q: np.ndarray, lag: float, noise: float, gate_sigma: float,
    mt: np.ndarray, z: np.ndarray, phi: np.ndarray, m: np.ndarray, c: np.ndarray,
    n_hr_updates: np.ndarray, n_gated: np.ndarray, positions: np.ndarray, lmax: int,
    step_index: np.ndarray, step_value: np.ndarray, sens_index: np.ndarray,
    sens_value: np.ndarray, out: np.ndarray, lo: int, hi: int, check_time: bool,
) -> bool:  # fmt: skip
    """:meth:`ArousalTracker.tick` of patients ``lo`` .. ``hi - 1``, patient by patient (each
    touches its own rows only): the features at ``t``; (``learn``) the model moves to ``t``
    and learns the smoothed heart rate above baseline when the signal is fresh and a baseline
    is known; then the model's observation. Divided by ``scales`` unless empty. With
    ``check_time``: False (and nothing changed) if any patient's model time would go
    backwards (the parallel form checks once, before its ranges)."""
    if check_time and learn and not _time_ok(t, mt):
        return False
    pz = np.empty(m.shape[1])
    pphi = np.empty(m.shape[1])
    for i in range(lo, hi):
        tt = t[i if t.shape[0] > 1 else 0]
        _observe_one(st, bsum, bidx, fcfg, i, tt, _NO_SCALES, out)
        if learn:
            _advance_one(i, tt, q, lag, mt, z, phi, c)
            y = out[i, Feature.HR_ABOVE_BPM]
            fresh = out[i, Feature.STALE] == 0 and out[i, Feature.BASELINE_KNOWN] == 1
            if fresh and math.isfinite(y):
                _kalman_one(i, y, noise, gate_sigma, z, m, c, n_hr_updates, n_gated, pz)
        _observation_one(
            m, c, z, phi, positions, i, lmax, step_index, step_value, sens_index, sens_value,
            pz, pphi, out, N_FEATURES,
        )  # fmt: skip
        if scales.shape[0]:
            for j in range(scales.shape[0]):
                out[i, j] /= scales[j]
    return True
