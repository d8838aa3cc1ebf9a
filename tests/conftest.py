"""Suite-wide settings: the `slow` marker, a headless plotting backend, no network."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="also run tests marked slow (training, hour-long soaks)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("EXPOSURE_CTRL_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or EXPOSURE_CTRL_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
