"""Cohorts (exposure_ctrl/sim/cohorts.py) and the generic scene mapping (sim/stimulus.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.scenario import load_scenario, resolve_scenario, shipped_scenarios
from exposure_ctrl.sim import patient as pt
from exposure_ctrl.sim.cohorts import COHORTS, EVAL_SIZE, SCALARS, describe_cohort, get_cohort, sample_patients
from exposure_ctrl.sim.stimulus import ResponseSpread, ScenarioExtras, sample_response

MINIMAL = Path(__file__).parents[1] / "scenario" / "minimal.yaml"


@pytest.fixture(scope="module")
def spider():
    return resolve_scenario("spider")


def _flat(p):
    return np.concatenate([np.asarray(getattr(p, f.name), dtype=float).ravel() for f in dataclasses.fields(p)])


def test_a_patient_is_a_function_of_its_identity(spider):
    a = sample_patients(spider, "spider-moderate", [3, 4])
    b = sample_patients(spider, "spider-moderate", [4])
    np.testing.assert_array_equal(_flat(dataclasses.replace(a)), _flat(sample_patients(spider, "spider-moderate", [3, 4])))
    for f in dataclasses.fields(b):
        np.testing.assert_array_equal(getattr(a, f.name)[1], getattr(b, f.name)[0])


def test_train_and_eval_patients_differ_for_every_index(spider):
    idx = range(50)
    tr = sample_patients(spider, "spider-moderate", idx, split="train")
    ev = sample_patients(spider, "spider-moderate", idx, split="eval")
    assert not np.any(tr.hr_rest_bpm == ev.hr_rest_bpm)
    assert not np.any(np.all(tr.level_drive == ev.level_drive, axis=(1, 2)))
    # different cohorts give different patients too
    sev = sample_patients(spider, "spider-severe", idx, split="train")
    assert not np.any(tr.hr_gain_bpm == sev.hr_gain_bpm)


def test_eval_indices_are_bounded_and_names_are_checked(spider):
    with pytest.raises(ConfigError, match=f"0..{EVAL_SIZE - 1}"):
        sample_patients(spider, "spider-moderate", [EVAL_SIZE], split="eval")
    with pytest.raises(ConfigError, match="did you mean 'spider-severe'"):
        get_cohort("spider-sever")
    with pytest.raises(ConfigError, match="split must be one of"):
        sample_patients(spider, "mixed", [0], split="test")  # type: ignore[arg-type]


@pytest.mark.parametrize("cohort", sorted(COHORTS))
@pytest.mark.parametrize("scenario", ["spider", "public_speaking", "heights", "minimal"])
def test_every_cohort_maps_onto_every_scenario(cohort, scenario):
    sc = load_scenario(MINIMAL) if scenario == "minimal" else resolve_scenario(scenario)
    p = sample_patients(sc, cohort, range(20))
    assert p.level_drive.shape == (20, sc.n_parameters, int(sc.n_levels.max()))
    assert np.all(np.isfinite(_flat(p)))
    for name in SCALARS:
        assert getattr(p, name).shape == (20,)
    top = np.broadcast_to(sc.hierarchy_positions[-1], (20, sc.n_parameters))
    d, _ = pt.scene_drive(p, top, np.zeros((20, sc.n_parameters)))
    np.testing.assert_allclose(d, 1.0)
    assert describe_cohort(cohort).startswith(cohort)


def test_shipped_scenarios_are_all_covered():
    for name in shipped_scenarios():
        sc = resolve_scenario(name)
        assert sample_patients(sc, "mixed", [0]).n == 1


def test_categorical_orders_soothing_responders_and_bumps(spider):
    sc = resolve_scenario("public_speaking")
    rng = np.random.default_rng(0)
    n = 2000
    t = sample_response(sc, rng, n, ResponseSpread(bump_prob=0.0))
    k_aud = sc.parameter_ids.index("audience")
    k_gender = sc.parameter_ids.index("gender_mix")
    k_sound = sc.parameter_ids.index("sound")
    # audience: the extra puts a peak at "three" for about 35 % of patients
    d = t.level_drive[:, k_aud]
    three, six, fifteen = (sc.parameter("audience").index_of(v) for v in ("three", "six", "fifteen"))
    frac = np.mean((d[:, three] > d[:, six]) & (d[:, three] > d[:, fifteen]))
    assert 0.2 < frac < 0.5
    # gender mix is categorical with equal priors: patients split in which gender they fear
    g = t.level_drive[:, k_gender]
    assert 0.3 < np.mean(g[:, 1] > g[:, 2]) < 0.7
    # soothing: calm music lowers the drive for responders, not (or barely) for the others
    gain = t.level_gain[:, k_sound, 0]
    assert 0.45 < np.mean(gain < 0.9) < 0.75
    assert np.all(gain <= 1.1) and np.all(t.level_drive[:, k_sound] == 0)
    # without the extras, no bump at "three" beyond the generic rate
    t0 = sample_response(sc, np.random.default_rng(0), n, ResponseSpread(bump_prob=0.0), ScenarioExtras())
    d0 = t0.level_drive[:, k_aud]
    assert np.mean((d0[:, three] > d0[:, six]) & (d0[:, three] > d0[:, fifteen])) < 0.05


def test_gates_and_interactions_of_the_spider_extras(spider):
    n = 500
    t = sample_response(spider, np.random.default_rng(1), n, ResponseSpread())
    k_jar = spider.parameter_ids.index("jar")
    assert np.all(t.level_gain[:, k_jar, 0] == 0.1)
    ks, kd = spider.parameter_ids.index("size"), spider.parameter_ids.index("distance_m")
    a, b = sorted((ks, kd))
    assert np.mean(t.interaction[:, a, b]) > 2.0  # size x distance: worse together
    assert np.all(np.tril(t.interaction[0]) == 0)


def test_the_packed_parameter_rows_hold_the_named_parameters():
    """The kernels read the packed parameter matrix by row constants derived from
    ``PARAM_ROWS``' names: each row of ``kernel_args()``'s matrix is that named parameter of the
    patients, and the constants point at their parameters' rows."""
    from exposure_ctrl.sim import kernels as K

    params = sample_patients(resolve_scenario("spider"), "spider-severe", np.arange(5))
    packed = params.kernel_args()[0]
    assert packed.shape == (len(K.PARAM_ROWS), 5)
    for row, name in enumerate(K.PARAM_ROWS):
        np.testing.assert_array_equal(packed[row], getattr(params, name), err_msg=name)
    assert set(K.PARAM_ROWS) | {"settle_bpm", "retention"} == set(SCALARS)
    np.testing.assert_array_equal(packed[K._HR_REST], params.hr_rest_bpm)
    np.testing.assert_array_equal(packed[K._ABORT_AFTER], params.abort_after_s)
    np.testing.assert_array_equal(packed[K._SUDS_NOISE], params.suds_noise)
