"""Running the console beside a session: the URLs printed, and a session that runs on without
aiohttp."""

from __future__ import annotations

import subprocess
import sys

from exposure_ctrl.console.access import AccessPolicy
from exposure_ctrl.console.serve import console_urls


class _Started:
    def __init__(self, bind: str) -> None:
        self.access = AccessPolicy(bind, 8765, "x" * 20)


def test_urls_to_print() -> None:
    assert console_urls(_Started("127.0.0.1")) == ["http://127.0.0.1:8765/?token=" + "x" * 20]
    assert console_urls(_Started("192.168.1.20")) == ["http://192.168.1.20:8765/?token=" + "x" * 20]
    every = console_urls(_Started("0.0.0.0"))
    assert len(every) >= 2 and every[-1].startswith("http://127.0.0.1:8765/")
    assert not any(u.startswith("http://0.0.0.0") for u in every)  # an address a tablet can open


def test_without_aiohttp_the_session_runs_without_its_console() -> None:
    code = (
        "import asyncio, sys\n"
        "sys.modules['aiohttp'] = None\n"
        "from exposure_ctrl.console.serve import serve_during\n"
        "async def session():\n"
        "    return 42\n"
        "print(asyncio.run(serve_during(None, session(), announce=print)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("console not available") and "pip install aiohttp" in lines[0]
    assert lines[-1] == "42"
