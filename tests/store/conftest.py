"""Fixtures of the store tests: a fresh store file per test, the spider scenario."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_ctrl.scenario import Scenario, resolve_scenario
from exposure_ctrl.store import Store


@pytest.fixture(scope="session")
def spider() -> Scenario:
    return resolve_scenario("spider")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sessions.sqlite"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    s = Store.open(store_path)
    try:
        yield s
    finally:
        s.close()
