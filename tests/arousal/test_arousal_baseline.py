"""Baseline: robust resting rate of the settled part, its uncertainty, and the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_ctrl.arousal import BaselineConfig, BaselineEstimator, Feature, FeatureState
from exposure_ctrl.scenario import resolve_scenario

SPIDER = resolve_scenario("spider")


def ar1(rng: np.random.Generator, n: int, length: int, sd: float, rho: float = 0.9) -> np.ndarray:
    """(length, n) AR(1) noise with stationary sd ``sd``: heart rate wanders slowly."""
    x = np.empty((length, n))
    x[0] = rng.normal(0, sd, n)
    e = sd * np.sqrt(1 - rho**2)
    for i in range(1, length):
        x[i] = rho * x[i - 1] + rng.normal(0, e, n)
    return x


def run_baseline(bpm: np.ndarray, contact: np.ndarray | None = None, rr: np.ndarray | None = None):
    """Feed (T, N) bpm at 1 Hz through a FeatureState's baseline phase."""
    length, n = bpm.shape
    fs = FeatureState(SPIDER, n=n)
    fs.begin_baseline(0.0)
    ts = np.arange(1, length + 1, dtype=np.float64)
    # several blocks of 5 s, as the simulator would feed them
    for i in range(0, length, 5):
        sl = slice(i, i + 5)
        fs.update_block(
            ts[sl],
            bpm[sl],
            None if rr is None else rr[sl],
            None,
            None if contact is None else contact[sl],
        )
    return fs, fs.finish_baseline(float(length))


def test_good_baseline_is_the_median_with_a_calibrated_uncertainty():
    rng = np.random.default_rng(11)
    n = 200
    true = rng.uniform(55, 85, n)
    bpm = true + ar1(rng, n, 180, 2.5)
    fs, res = run_baseline(bpm)
    assert res.good.mean() > 0.9
    # the uncertainty covers the patients' true rates about as often as it says
    z = (res.bpm - true) / res.se_bpm
    assert np.mean(np.abs(z) < 2) > 0.85
    assert np.all(np.abs(z) < 6)
    # the median of the settled part (t >= 60 s) exactly
    np.testing.assert_allclose(res.bpm, np.median(bpm[59:], axis=0))
    # and the features now use it
    assert fs.baseline_known.all()
    assert fs.observe(180.0)[:, Feature.BASELINE_KNOWN].all()
    assert res.needs_confirmation.sum() == (~res.good).sum()


def test_robust_to_artifacts_that_slip_through():
    rng = np.random.default_rng(2)
    bpm = 68 + rng.normal(0, 1.0, (180, 1))
    bpm[100:104] = 140.0  # a burst of bad readings (plausible values, so not flagged)
    _, res = run_baseline(bpm)
    assert res.bpm[0] == pytest.approx(68, abs=0.5)
    assert res.verdict(0) == "good"


@pytest.mark.parametrize(
    "case, phrase",
    [
        ("falling", "still falling"),
        ("contact", "clean"),
        ("short", "settled baseline"),
        ("fast", "outside 40-110"),
        ("restless", "varied widely"),
        ("none", "no clean heart-rate sample"),
    ],
)
def test_poor_baselines_say_why(case, phrase):
    rng = np.random.default_rng(5)
    length = 90 if case == "short" else 180
    bpm = 70 + rng.normal(0, 1.0, (length, 1))
    contact = None
    if case == "falling":
        bpm[:, 0] = np.linspace(95, 70, length) + rng.normal(0, 0.5, length)
    elif case == "contact":
        contact = np.where(rng.random((length, 1)) < 0.4, 0, 1)
    elif case == "fast":
        bpm += 55
    elif case == "restless":
        bpm += rng.normal(0, 15, (length, 1))
    elif case == "none":
        contact = np.zeros((length, 1), dtype=np.int8)
    _, res = run_baseline(bpm, contact)
    assert res.verdict(0) == "poor"
    assert res.needs_confirmation[0]
    assert phrase in res.reasons[0]
    assert phrase in res.describe(0) or case == "none"


def test_batch_equals_single_runs_and_records_are_plain():
    rng = np.random.default_rng(9)
    bpm = 60 + 20 * rng.random(3) + rng.normal(0, 2, (180, 3))
    bpm[:, 1] = np.linspace(90, 65, 180)
    _, batch = run_baseline(bpm)
    for i in range(3):
        _, one = run_baseline(bpm[:, i : i + 1])
        assert one.bpm[0] == batch.bpm[i]
        assert one.se_bpm[0] == pytest.approx(batch.se_bpm[i], rel=1e-12)  # BLAS rounding
        assert one.reasons[0] == batch.reasons[i]
    rec = batch.record(1)
    assert rec["verdict"] == "poor" and isinstance(rec["bpm"], float)


def test_baseline_rmssd_from_the_settled_part():
    rng = np.random.default_rng(4)
    rr_vals = 850 + rng.normal(0, 15, (180, 1, 1))
    bpm = 60000 / rr_vals[:, :, 0]
    _, res = run_baseline(bpm, rr=rr_vals)
    d = np.diff(rr_vals[58:, 0, 0])  # differences delivered by the samples at t >= 60 s
    assert res.rmssd_ms[0] == pytest.approx(np.sqrt(np.mean(d * d)), rel=1e-9)


def test_estimator_alone_and_its_limits():
    est = BaselineEstimator(1, 0.0, BaselineConfig(settle_s=10, min_settled_s=20))
    for i in range(1, 61):
        est.add_block(
            np.array([[float(i)]]),
            np.array([[70.0 + (i % 3)]]),
            np.array([[True]]),
            np.array([[True]]),
            np.zeros((1, 1)),
            np.zeros((1, 1)),
        )
    res = est.result(60.0)
    assert res.bpm[0] == 71.0
    assert res.settled_s[0] == 50.0


def test_block_sums_equal_the_one_hot_product_they_replaced():
    """The per-block sums behind the baseline's block means (np.add.reduceat, not a product
    with a one-hot matrix, which went through BLAS) equal that product for any block numbers:
    empty blocks, unordered ones, numbers below 0 or from nb on (counted nowhere), no samples."""
    from exposure_ctrl.arousal.baseline import _block_sums

    rng = np.random.default_rng(4)
    n, nb = 3, 8
    cases = [np.sort(rng.choice([0, 1, 2, 4, 5, 7], size=40))]  # blocks 3 and 6 empty
    cases.append(cases[0][rng.permutation(40)])  # unordered
    cases.append(np.concatenate([[-1, -2], cases[0][:20], [8, 9, 11], cases[0][20:]]))  # outside
    cases.append(rng.integers(-2, 11, size=60))
    cases.append(np.zeros(0, dtype=np.int64))
    for blk in cases:
        t = len(blk)
        values = rng.normal(70, 5, size=(n, t))
        ok = (rng.random((n, t)) < 0.8).astype(np.float64)
        onehot = (blk[None, :] == np.arange(nb)[:, None]).astype(np.float64)
        sums, counts = _block_sums(values * ok, ok, blk, nb)
        np.testing.assert_allclose(sums, (values * ok) @ onehot.T, rtol=1e-12, atol=1e-9, err_msg=str(blk))
        np.testing.assert_array_equal(counts, ok @ onehot.T, err_msg=str(blk))
    assert (sums == 0).all()  # the last case: no samples at all
