"""`exposure-ctrl run` refuses unsafe or impossible options with one clear message (exit 2)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from exposure_ctrl.cli import cli


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sensor", "ble", "--speed", "10"], r"--speed only works with a simulated or replayed heart rate"),
        (["--patient", "Jane Doe"], r"patient code 'Jane Doe' contains a space and looks like a name"),
        (["--patient", "JaneDoe"], r"looks like a person's name"),
        (["--scenario", "spidr"], r"did you mean 'spider'\?"),
        (["--sensor", "bel"], r"unknown heart-rate source 'bel'"),
        (["--device", "AA:BB"], r"--device goes with --sensor ble"),
    ],
)
def test_bad_options_exit_2_with_a_message(tmp_path, args, message):
    import re

    r = CliRunner().invoke(cli, ["run", "--store", str(tmp_path / "s.sqlite"), "--no-console", *args])
    assert r.exit_code == 2, r.output
    assert re.search(message, r.stderr + r.output), r.stderr + r.output
    assert "Traceback" not in r.stderr + r.output
    assert not (tmp_path / "s.sqlite").exists()  # nothing was recorded for a refused session
