"""The shipped JSON Schema is current and accepts the shipped scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from exposure_ctrl.scenario import scenario_json_schema

ROOT = Path(__file__).parents[2]
SCHEMA_FILE = ROOT / "scenarios" / "scenario.schema.json"


def test_shipped_schema_is_up_to_date():
    shipped = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert shipped == scenario_json_schema(), (
        "scenarios/scenario.schema.json is out of date: run "
        "`exposure-ctrl scenario schema --out scenarios/scenario.schema.json`"
    )


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem)
def test_schema_accepts_shipped_scenarios(path):
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(scenario_json_schema()).validate(data)


def test_schema_rejects_unknown_keys_for_editors():
    data = YAML(typ="safe").load((ROOT / "scenarios" / "spider.yaml").read_text(encoding="utf-8"))
    data["targets"]["celing_bpm"] = 20
    with pytest.raises(jsonschema.ValidationError, match="celing_bpm"):
        jsonschema.Draft202012Validator(scenario_json_schema()).validate(data)
