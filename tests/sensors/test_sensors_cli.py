"""`exposure-ctrl devices` and `exposure-ctrl hr monitor|record`, through click's CliRunner."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from exposure_ctrl.cli import cli
from exposure_ctrl.sensors.record import read_recording


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_devices_virtual_lists_the_virtual_strap() -> None:
    result = invoke("devices", "--virtual")
    assert result.exit_code == 0, result.output
    header, row = result.output.strip().splitlines()
    assert header.split() == ["name", "address", "RSSI", "heart", "rate"]
    assert re.match(r"Virtual HRM\s+F0(:[0-9A-F]{2}){5}\s+-?\d+ dBm\s+yes$", row)


class _NoDBusScanner:
    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    async def start(self) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    async def stop(self) -> None:
        pass


def test_devices_without_bluetooth_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    import bleak

    monkeypatch.setattr(bleak, "get_platform_scanner_backend_type", lambda: (_NoDBusScanner, "fake"))
    result = CliRunner().invoke(cli, ["devices", "--timeout-s", "0.1"])
    assert result.exit_code == 1
    assert result.output.startswith("error: Bluetooth is not available on this machine")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def _hr_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " HR " in line]


def test_hr_monitor_virtual_shows_rate_rr_contact_and_battery() -> None:
    result = invoke("hr", "monitor", "--virtual", "--speed", "50", "--duration-s", "15")
    assert result.exit_code == 0, result.output
    lines = _hr_lines(result.output)
    assert len(lines) >= 8
    assert all(re.search(r"HR +\d+ bpm  RR \d+\.\d ms  contact yes  battery 87 %", x) for x in lines)
    assert "device: Virtual HRM" in result.output and "worn on the chest" in result.output


def test_hr_record_then_replay_shows_the_same_beats(tmp_path: Path) -> None:
    out = tmp_path / "P001-rest.jsonl"
    rec = invoke("hr", "record", "--virtual", "--speed", "50", "--duration-s", "15", "--out", str(out))
    assert rec.exit_code == 0, rec.output
    header, lines = read_recording(out)
    assert header["source"] == "virtual-ble"
    recorded = _hr_lines(rec.output)
    assert len(recorded) >= 8 and "wrote" in rec.output
    replay = invoke("hr", "monitor", "--replay", str(out), "--speed", "100")
    assert replay.exit_code == 0, replay.output
    strip = lambda x: x.split("s  ", 1)[1]  # noqa: E731 - drop the time column
    assert [strip(x) for x in _hr_lines(replay.output)][: len(recorded)] == [strip(x) for x in recorded]
    assert "ended: end of recording" in replay.output


@pytest.mark.parametrize(
    "args",
    [
        ["hr", "monitor", "--virtual", "--device", "AA:BB:CC:DD:EE:FF"],
        ["hr", "monitor", "--speed", "10"],
        ["hr", "record", "--virtual"],  # --out is required
    ],
)
def test_hr_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output


def test_hr_monitor_missing_recording_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["hr", "monitor", "--replay", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1
    assert "cannot read the heart-rate recording" in result.output
