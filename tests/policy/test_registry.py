"""load_policy: names, the default, saved directories, and refusing policies that do not fit."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exposure_ctrl.errors import ConfigError, PolicyMismatchError
from exposure_ctrl.policy import LoadedPolicy, decide, load_policy, observation_spec, policy_names
from exposure_ctrl.policy.saved import FORMAT, check_fits, scenario_signature, write_policy_json
from exposure_ctrl.scenario import resolve_scenario

from .conftest import Scripted

RULES = ["fixed-schedule", "habituation", "band-pi", "greedy-model", "q-learning"]


def test_every_name_is_registered() -> None:
    assert set(RULES) | {"oracle", "ppo"} == set(policy_names())


@pytest.mark.parametrize("name", RULES)
def test_rule_policies_load_and_act(spider, scripted_spider: Scripted, name: str) -> None:
    lp = load_policy(name, spider)
    assert isinstance(lp, LoadedPolicy)
    assert lp.id == name and lp.sha256 is None and lp.description
    pos = tuple(int(x) for x in spider.hierarchy_positions[3])
    d = decide(lp.policy, scripted_spider.obs(pos, hr_above_bpm=3.0)[0], scripted_spider.mask(pos)[0])
    assert 0 <= d.action < spider.n_actions and d.reason
    assert scripted_spider.mask(pos)[0, d.action]


def test_rule_settings_are_passed_and_checked(spider) -> None:
    lp = load_policy("fixed-schedule", spider, step_every_s=90)
    assert lp.policy.step_every_s == 90
    with pytest.raises(ConfigError, match="bad setting"):
        load_policy("band-pi", spider, gain=3)


def test_unknown_names_get_a_suggestion(spider) -> None:
    with pytest.raises(ConfigError, match="did you mean 'band-pi'"):
        load_policy("band_pi", spider)
    with pytest.raises(ConfigError, match="not a file|saved policy is a directory"):
        load_policy(__file__, spider)


def test_no_shipped_policy_falls_back_to_the_habituation_rule(dial, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="exposure_ctrl.policy.registry"):
        lp = load_policy(None, dial)
    assert lp.id == "habituation"
    assert "no policy is shipped for scenario 'dial'" in caplog.text
    with pytest.raises(ConfigError, match="no trained policy is shipped for scenario 'dial'"):
        load_policy("ppo", dial)


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, exposure_ctrl.policy, exposure_ctrl.policy.rules; print('torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


# --- saved policies that do not fit -------------------------------------------------------------


def _saved(tmp_path: Path, sc, **changes) -> Path:
    meta = {
        "format": FORMAT,
        "id": "ppo-test",
        "kind": "maskable-ppo",
        "scenario": scenario_signature(sc),
        "observation": {"names": list(observation_spec(sc).names), "scaled": True},
        "model": {"file": "model.zip", "sha256": "0" * 64},
    }
    for k, v in changes.items():
        meta[k] = v
    write_policy_json(tmp_path, meta)
    return tmp_path


def test_a_policy_for_another_scenario_is_refused(tmp_path: Path, spider) -> None:
    d = _saved(tmp_path, spider)
    heights = resolve_scenario("heights")
    with pytest.raises(PolicyMismatchError, match="trained for scenario 'spider', this scenario is 'heights'") as e:
        load_policy(str(d), heights)
    msg = str(e.value)
    assert "lacks the parameters" in msg and "has parameters" in msg and "action space has 13 actions" in msg


def test_changed_levels_are_named(tmp_path: Path, spider) -> None:
    sig = copy.deepcopy(scenario_signature(spider))
    size = next(p for p in sig["parameters"] if p["id"] == "size")
    size["levels"] = size["levels"][:-1]
    d = _saved(tmp_path, spider, scenario=sig)
    with pytest.raises(PolicyMismatchError, match=r"parameter 'size' has levels \[tiny, small, medium, large, huge\], the policy was trained with \[tiny, small, medium, large\]"):
        load_policy(str(d), spider)


def test_changed_observation_is_named(tmp_path: Path, spider) -> None:
    names = list(observation_spec(spider).names)
    names.remove("rmssd_ms")
    d = _saved(tmp_path, spider, observation={"names": names + ["old_feature"], "scaled": True})
    with pytest.raises(PolicyMismatchError, match=r"observation differs \(missing \[old_feature\]; new \[rmssd_ms\]\)"):
        load_policy(str(d), spider)
    reordered = list(observation_spec(spider).names)
    reordered[0], reordered[1] = reordered[1], reordered[0]
    with pytest.raises(PolicyMismatchError, match="same columns in another order"):
        check_fits({"scenario": scenario_signature(spider), "observation": {"names": reordered}}, spider, observation_spec(spider).names, "x")


def test_a_fitting_policy_with_a_corrupt_model_is_refused(tmp_path: Path, spider) -> None:
    d = _saved(tmp_path, spider)
    (d / "model.zip").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="does not match its policy.json"):
        load_policy(str(d), spider)
    meta = json.loads((d / "policy.json").read_text())
    del meta["model"]["sha256"]
    (d / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="cannot load the model"):
        load_policy(str(d), spider)


def test_not_a_policy_directory(tmp_path: Path, spider) -> None:
    with pytest.raises(ConfigError, match="not a saved policy"):
        load_policy(str(tmp_path), spider)
    (tmp_path / "policy.json").write_text('{"format": 99}')
    with pytest.raises(ConfigError, match="unknown policy format 99"):
        load_policy(str(tmp_path), spider)


def test_positions_round_trip_through_the_observation(spider, scripted_spider: Scripted) -> None:
    from exposure_ctrl.policy.spec import positions_of

    for i in range(len(spider.hierarchy)):
        pos = spider.hierarchy_positions[i]
        assert np.array_equal(positions_of(scripted_spider.spec, spider, scripted_spider.obs(pos))[0], pos)
