"""Fixtures of the report tests: stores holding synthetic sessions written through the writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exposure_ctrl.scenario import Scenario, resolve_scenario
from exposure_ctrl.store import Store
from exposure_ctrl.store.synthetic import SyntheticPlan, write_synthetic_session


@pytest.fixture(scope="session")
def spider() -> Scenario:
    return resolve_scenario("spider")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "sessions.sqlite")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, spider: Scenario) -> Iterator[tuple[Store, int]]:
    """A store with two synthetic sessions of patient P-0001 (ids 1, 2) and a crashed one (3)."""
    path = tmp_path_factory.mktemp("demo") / "sessions.sqlite"
    s = Store.open(path)
    write_synthetic_session(s, spider, patient="P-0001", seed=1)
    write_synthetic_session(s, spider, patient="P-0001", seed=2,
                            plan=SyntheticPlan(exposure_s=1200, reactivity_bpm=45))
    write_synthetic_session(s, spider, patient="P-0002", seed=3,
                            plan=SyntheticPlan(end=False, sensor_gap=None))
    try:
        yield s, 1
    finally:
        s.close()
