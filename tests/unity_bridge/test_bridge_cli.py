"""The bridge's commands in exposure_ctrl/cli.py: `keys generate` and `headset emulate`."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
import zmq
from bridge_helpers import CLOSER, make_endpoint
from click.testing import CliRunner

from exposure_ctrl.cli import cli
from unity_bridge import Bye, CurveServer, HeadsetConnected, SceneAcked


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq built without CURVE")
def test_keys_generate_writes_keys_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "generate", "--dir", str(tmp_path / "k")])
    assert out.exit_code == 0, out.output
    assert "controller public" in out.output and "allowed_headsets" in out.output
    for name in ("controller.key", "controller.key_secret", "headset.key", "headset.key_secret", "allowed_headsets/headset.key"):
        assert (tmp_path / "k" / name).is_file(), name
    CurveServer.from_dir(tmp_path / "k")  # readable by the endpoint
    again = runner.invoke(cli, ["keys", "generate", "--dir", str(tmp_path / "k")])
    assert again.exit_code == 2 and "pass --force" in again.output


def test_headset_emulate_needs_parameters_or_a_scenario() -> None:
    out = CliRunner().invoke(cli, ["headset", "emulate"])
    assert out.exit_code == 2 and "give exactly one of --scenario" in out.output


def _cli_command() -> list[str]:
    exe = shutil.which("exposure-ctrl")
    return [exe] if exe else [sys.executable, "-m", "exposure_ctrl"]


def test_headset_emulate_shows_the_scene_and_says_bye(run) -> None:
    async def body() -> None:
        async with make_endpoint() as ep:
            proc = await asyncio.create_subprocess_exec(
                *_cli_command(), "headset", "emulate", "--connect", ep.address,
                "--scenario", "spider", "--client", "terminal", "--duration", "3",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "COLUMNS": "120"},
            )
            ev = await ep.next_event(20)
            assert isinstance(ev, HeadsetConnected) and ev.client == "terminal"
            assert "hairiness" in ev.parameters  # all of the spider scenario's parameters
            await ep.send_scene(CLOSER)
            ack = await ep.next_event(10)
            assert isinstance(ack, SceneAcked)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            bye = await ep.next_event(5)
            assert isinstance(bye, Bye) and bye.reason == "operator quit"
            text = out.decode()
            assert "headset 'terminal'" in text and "medium" in text and "open" in text

    run(body(), timeout=90)
