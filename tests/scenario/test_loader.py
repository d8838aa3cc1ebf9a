"""Loading scenario files: shipped ones load; each broken file gives its pinned message."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from exposure_ctrl.errors import ConfigError, ScenarioError
from exposure_ctrl.scenario import (
    load_scenario,
    load_scenario_text,
    resolve_scenario,
    shipped_scenarios,
)

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
SHIPPED = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))

# file → (line, column, key path, message pattern): the designer's view of each mistake.
EXPECTED = {
    "misspelt_key": (5, 1, "indicaton", r"unknown key 'indicaton' \(did you mean 'indication'\?\)"),
    "misspelt_nested_key": (28, 3, "targets.celing_bpm", r"did you mean 'ceiling_bpm'\?"),
    "misspelt_value": (25, 13, r"hierarchy\[1\].state.size", r"'lrage' is not a value of parameter 'size' \(did you mean 'large'\?\)"),
    "misspelt_parameter": (20, 9, "start.sise", r"unknown parameter 'sise' \(did you mean 'size'\?\)"),
    "off_grid": (19, 27, "safe_state.distance_m", r"1.7 is not on the grid .* nearest grid point is 1.5"),
    "missing_key": (1, 1, r"\(top level\)", r"missing required key 'title'"),
    "wrong_type": (28, 3, "targets.ceiling_bpm", r'expected a number; found "high"'),
    "bad_kind": (7, 5, r"parameters\[0\]", r"unknown kind 'ordinl' \(did you mean 'ordinal'\?\)"),
    "hierarchy_falls": (25, 5, r"hierarchy\[1\].state", r"the hierarchy must rise: step 2 \('large and near'\)"),
    "window_above_ceiling": (28, 3, "targets.ceiling_bpm", r"ceiling \(15 bpm above baseline\) must lie above the window's top \(18 bpm\)"),
    "dwell_below_period": (32, 3, "timing.min_dwell_s", r"must be at least decision_period_s \(5\)"),
    "intensity_length": (10, 5, r"parameters\[0\].intensity", r"2 values, found 3 intensities"),
    "intensity_falls": (10, 5, r"parameters\[0\].intensity", r"must not fall: 'small' has 0.9"),
    "incomplete_state": (23, 5, r"hierarchy\[0\].state", r"missing: distance_m"),
    "syntax_error": (7, 3, r"\(YAML syntax\)", r"expected the node content"),
    "duplicate_key": (4, 1, r"\(YAML syntax\)", r'duplicate key "title"'),
    "window_reversed": (27, 3, "targets.arousal_window_bpm", r"low \(18\) must be below high \(8\)"),
    "not_a_mapping": (1, 1, r"\(top level\)", r"a scenario is a mapping"),
    "grid_not_whole": (16, 5, r"parameters\[1\].step", r"\(max - min\) / step must be a whole number"),
    "duplicate_parameter": (12, 5, r"parameters\[1\].id", r"parameter id 'size' is used twice"),
    "string_for_number": (14, 5, r"parameters\[1\].min", r'expected a number; found "0.5"'),
    "bool_for_value": (20, 9, "start.size", r"expected a number or a string; found true"),
    "empty_hierarchy": (1, 1, r"\(top level\)", r"missing required key 'hierarchy'"),
    "empty": (1, 1, r"\(top level\)", r"the file is empty"),
}


def test_every_broken_file_has_an_expectation():
    assert {p.stem for p in BROKEN.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path):
    sc = load_scenario(path)
    assert sc.id == path.stem
    assert 10 <= len(sc.hierarchy) <= 15
    assert sc.sha256 is not None and len(sc.sha256) == 64
    assert sc.source == str(path.resolve())
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./scenario.schema.json"


def test_the_minimal_scenario_is_valid():
    sc = load_scenario(HERE / "minimal.yaml")
    assert sc.parameter_ids == ("size", "distance_m")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_message(name):
    line, col, where, pattern = EXPECTED[name]
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, ConfigError)
    assert len(err.problems) == 1, err.problems
    full = re.escape(f"{path}:{line}:{col}: ") + where + ": .*" + pattern
    assert re.search(full, err.problems[0]), err.problems[0]
    assert str(err).startswith(f"{path}: 1 problem")


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    text = (HERE / "minimal.yaml").read_text()
    text = text.replace("indication:", "indicaton:").replace("  ceiling_bpm: 25", "  ceiling_bpm: lots")
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, source="two.yaml")
    assert len(info.value.problems) == 2
    assert "two.yaml:5:1: indicaton" in str(info.value)
    assert "two.yaml:28:3: targets.ceiling_bpm" in str(info.value)


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(ScenarioError, match=r"no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match=r"not UTF-8 text"):
        load_scenario(bad)


def test_resolve_by_id_path_and_misspelt_id(monkeypatch, tmp_path):
    assert resolve_scenario("spider").id == "spider"
    assert resolve_scenario(str(SHIPPED[0])).id == SHIPPED[0].stem
    with pytest.raises(ScenarioError, match=r"no scenario with id 'spidr' \(did you mean 'spider'\?\)"):
        resolve_scenario("spidr")
    (tmp_path / "mini.yaml").write_text((HERE / "minimal.yaml").read_text())
    monkeypatch.setenv("EXPOSURE_CTRL_SCENARIO_PATH", str(tmp_path))
    assert "mini" in shipped_scenarios()
    assert resolve_scenario("mini").id == "mini"


def test_yaml_tags_do_not_build_objects():
    # The round-trip loader is safe: a python tag is an error, not an object.
    text = (HERE / "minimal.yaml").read_text().replace("title: Minimal", "title: !!python/object/apply:os.system ['true']")
    with pytest.raises(ScenarioError):
        load_scenario_text(text)


def test_hash_changes_with_the_file(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text((HERE / "minimal.yaml").read_text())
    h1 = load_scenario(a).sha256
    a.write_text((HERE / "minimal.yaml").read_text() + "\n# a comment\n")
    assert load_scenario(a).sha256 != h1
    assert os.path.exists(a)
