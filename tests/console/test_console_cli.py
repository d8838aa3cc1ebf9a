"""`exposure-ctrl console` as a real process, and the console served by `exposure-ctrl run`."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from exposure_ctrl.cli import cli

URL = re.compile(r"console: (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))")


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "EXPOSURE_CTRL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}


def test_console_command_prints_its_url_serves_it_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exposure_ctrl", "console", "--port", "0", "--store", str(tmp_path / "s.sqlite")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = URL.search(line)
        assert m, line
        url, port = m.group(1), int(m.group(2))
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with browser.open(url, timeout=10) as r:  # keeps the cookie, follows the redirect to /setup
            assert r.status == 200 and "New session" in r.read().decode()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/setup", timeout=10).close()
            raise AssertionError("served without the token")
        except urllib.error.HTTPError as e:
            assert e.code == 403
            e.close()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_console_command_refuses_a_taken_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = CliRunner().invoke(cli, ["console", "--port", str(port), "--store", str(tmp_path / "s.sqlite")])
    assert r.exit_code == 2 and f"port {port} on 127.0.0.1 is taken" in r.stderr


def test_run_serves_the_console_and_prints_its_url(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "exposure_ctrl", "run", "--view", "none", "--seed", "1", "--speed", "600",
         "--duration-s", "60", "--console-port", "0", "--store", str(tmp_path / "s.sqlite"), "--no-report"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert URL.search(r.stderr), r.stderr
    assert "session 1:" in r.stdout
    r2 = CliRunner().invoke(cli, ["run", "--help"])
    assert "--no-console" in r2.output and "--console-bind" in r2.output and "--console-port" in r2.output


def test_run_without_console_prints_no_url(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "exposure_ctrl", "run", "--view", "none", "--seed", "1", "--speed", "600",
         "--duration-s", "60", "--no-console", "--store", str(tmp_path / "s.sqlite"), "--no-report"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "console:" not in r.stderr
