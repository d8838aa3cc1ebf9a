"""DESIGN.md invariant 3: after ``kill -9`` of the writing process everything older than a second
is in the store, with no hole, and the store opens cleanly.

A real child process writes heart-rate samples as fast as it can, each carrying the system-wide
monotonic time at which it was appended (CLOCK_MONOTONIC is shared by all processes), and
reports its progress on stdout. The parent kills it with SIGKILL mid-stream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exposure_ctrl.report.html import ReviewInput, render_review
from exposure_ctrl.scenario import Scenario
from exposure_ctrl.store import Store

CHILD = r"""
import sys, time
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sensors.sample import HeartSample
from exposure_ctrl.store import Store

store = Store.open(sys.argv[1])
w = store.begin_session(patient="P-CRASH1", scenario=resolve_scenario("spider"), mode="autonomous")
w.phase(0.0, "baseline", "start")
print("ready", w.session_id, flush=True)
i = 0
while True:
    now = time.monotonic()
    w.sample(HeartSample(t=i * 0.01, bpm=60 + i % 100, source=repr(now)))
    if i % 50 == 0:
        w.suds(i * 0.01, i % 101, "therapist")
        print(i, repr(now), flush=True)
    i += 1
    time.sleep(0.0005)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("run_s", [1.3, 2.7])
def test_sigkill_loses_at_most_the_last_second(
    tmp_path: Path, spider: Scenario, run_s: float
) -> None:
    path = tmp_path / "crash.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:1] == ["ready"], proc.stderr.read() if proc.stderr else ""
        session_id = int(first[1])
        start = time.monotonic()
        last_reported = None
        while time.monotonic() - start < run_s:
            line = proc.stdout.readline()
            assert line, "the writer died on its own: " + (proc.stderr.read() if proc.stderr else "")
            last_reported = float(line.split()[1])  # it had appended everything up to this time
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    assert last_reported is not None

    with Store.open(path) as store:
        assert store.integrity_check() == "ok"
        rec = store.load_session(session_id)
        assert rec.info.outcome is None and rec.info.ended_at is None  # it never got to end
        n = len(rec.samples)
        assert n > 0
        # no hole: samples 0..n-1, in order
        assert [round(s.t * 100) for s in rec.samples] == list(range(n))
        newest_append = float(rec.samples[-1].source)
        assert newest_append >= last_reported - 1.0, (
            f"only samples appended up to {last_reported - newest_append:.2f} s before the "
            "child's last report survived the kill"
        )
        assert len(rec.suds) == (n - 1) // 50 + 1
        # a crashed session can still be reviewed, and says that it has no end
        html = render_review(ReviewInput(record=rec, scenario=spider))
        assert "No end was recorded" in html
        # and the store takes new sessions
        with store.begin_session(patient="P-CRASH1", scenario=spider, mode="manual") as w:
            w.end(1.0, "completed")
        assert len(store.list_sessions()) == 2
