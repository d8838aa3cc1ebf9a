"""Operations on scenario states: intensity, hierarchy, actions, stepping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from exposure_ctrl.scenario import HOLD, Scenario, resolve_scenario

SCENARIOS = {sid: resolve_scenario(sid) for sid in ("spider", "public_speaking", "heights")}


@pytest.fixture(params=sorted(SCENARIOS))
def sc(request) -> Scenario:
    return SCENARIOS[request.param]


def test_models_are_frozen(sc):
    with pytest.raises(ValidationError):
        sc.id = "other"  # type: ignore[misc]


def test_intensity_is_the_normalised_weighted_sum(sc):
    for step in sc.hierarchy:
        pos = sc.positions(step.state)
        w = np.array([p.weight for p in sc.parameters])
        x = np.array([p.intensities[i] for p, i in zip(sc.parameters, pos)])
        assert sc.intensity(step.state) == pytest.approx(float((w * x).sum() / w.sum()))
    lowest = sc.state_at([0] * sc.n_parameters)
    highest = sc.state_at(list(sc.n_levels - 1))
    assert 0.0 <= sc.intensity(lowest) < sc.intensity(highest) <= 1.0


def test_hierarchy_rises_and_indexes(sc):
    hi = sc.hierarchy_intensities
    assert np.all(np.diff(hi) > 0)
    for i, step in enumerate(sc.hierarchy):
        assert sc.hierarchy_index(step.state) == i
    assert sc.hierarchy_index(sc.safe_state) == -1 or sc.intensity(sc.safe_state) >= hi[0]
    assert sc.hierarchy_index(sc.state_at(list(sc.n_levels - 1))) == len(sc.hierarchy) - 1


def test_spider_specifics():
    sc = SCENARIOS["spider"]
    d = sc.parameter("distance_m")
    assert d.levels[0] == 3.0 and d.levels[-1] == pytest.approx(0.3)  # closer = more fear
    assert sc.step(sc.start, "distance_m", "up")["distance_m"] == pytest.approx(2.7)
    with pytest.raises(ValueError, match=r"already at its least feared level"):
        sc.step(sc.safe_state, "jar", "down")
    with pytest.raises(KeyError, match=r"did you mean 'size'"):
        sc.parameter("sise")
    assert sc.describe_action(sc.action_of("size", "up"), sc.positions(sc.start)) == "size up (tiny → small)"
    assert sc.describe_action(HOLD) == "hold"


def test_action_mask_and_apply_agree_with_neighbours(sc):
    pos = sc.positions(sc.start)
    mask = sc.action_mask(pos)
    assert mask.shape == (sc.n_actions,) and mask[HOLD]
    nb = dict(sc.neighbours(sc.start))
    assert set(nb) == {a for a in range(1, sc.n_actions) if mask[a]}
    for a, state in nb.items():
        assert tuple(sc.apply_action(pos, a)) == sc.positions(state)
    # An impossible move holds.
    for a in range(1, sc.n_actions):
        if not mask[a]:
            assert tuple(sc.apply_action(pos, a)) == pos
    with pytest.raises(ValueError, match="actions must lie in"):
        sc.apply_action(pos, sc.n_actions)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_sequence_of_legal_steps_stays_legal(data):
    sc = SCENARIOS[data.draw(st.sampled_from(sorted(SCENARIOS)))]
    state = dict(sc.start)
    pos = np.asarray(sc.positions(state))
    for _ in range(data.draw(st.integers(1, 60))):
        legal = [a for a in range(sc.n_actions) if sc.action_mask(pos)[a]]
        a = data.draw(st.sampled_from(legal))
        pos = sc.apply_action(pos, a)
        state = sc.state_at(pos)
        # The state round-trips through its values and stays in range.
        assert tuple(sc.positions(state)) == tuple(pos)
        assert np.all((pos >= 0) & (pos < sc.n_levels))
        assert 0.0 <= sc.intensity(state) <= 1.0


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_batched_operations_equal_single(data):
    sc = SCENARIOS[data.draw(st.sampled_from(sorted(SCENARIOS)))]
    n = data.draw(st.integers(1, 8))
    pos = np.array(
        [[data.draw(st.integers(0, int(m) - 1)) for m in sc.n_levels] for _ in range(n)]
    )
    acts = np.array([data.draw(st.integers(0, sc.n_actions - 1)) for _ in range(n)])
    batch = sc.apply_action(pos, acts)
    masks = sc.action_mask(pos)
    inten = sc.intensity_of_positions(pos)
    for i in range(n):
        assert np.array_equal(batch[i], sc.apply_action(pos[i], acts[i]))
        assert np.array_equal(masks[i], sc.action_mask(pos[i]))
        assert inten[i] == pytest.approx(sc.intensity(sc.state_at(pos[i])))


def test_model_validation_without_the_loader_still_checks_consistency():
    sc = SCENARIOS["spider"]
    data = sc.model_dump(by_alias=True)
    data["start"] = dict(data["start"], size="lrage")
    with pytest.raises(ValidationError, match=r"start.size: 'lrage' is not a value .*did you mean 'large'"):
        Scenario.model_validate(data)


def test_with_timing_keeps_the_file_identity_and_checks_names():
    sc = SCENARIOS["spider"]
    short = sc.with_timing(baseline_s=30.0)
    assert short.timing.baseline_s == 30.0 and sc.timing.baseline_s == 180.0
    assert short.sha256 == sc.sha256 and short.source == sc.source
    with pytest.raises(ValueError, match=r"unknown timing field 'baseline' \(did you mean 'baseline_s'\?\)"):
        sc.with_timing(baseline=30.0)
