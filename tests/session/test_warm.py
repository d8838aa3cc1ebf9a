"""A session compiles nothing after its clock starts (a fresh process, so nothing is loaded yet)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import numba
    from numba.core.registry import CPUDispatcher

    from exposure_ctrl.scenario import resolve_scenario
    from exposure_ctrl.session import live

    def signatures():
        out = {}
        for name, mod in list(sys.modules.items()):
            if name.startswith("exposure_ctrl"):
                for attr, obj in vars(mod).items():
                    if isinstance(obj, CPUDispatcher):
                        out[f"{obj.py_func.__module__}.{obj.py_func.__qualname__}"] = len(obj.signatures)
        return out

    seen = {}
    real_make_clock = live.make_clock

    def make_clock(opts):  # the clock starts here: record what is compiled or loaded by now
        seen.update(signatures())
        return real_make_clock(opts)

    live.make_clock = make_clock
    opts = live.RunOptions(scenario="spider", patient="W-0001", seed=3, speed=100.0, baseline_s=150.0,
                           duration_s=240.0, store=sys.argv[1], report=False)
    result = asyncio.run(live.LiveSession(opts).run())
    after = signatures()
    new = {k: (seen.get(k, 0), v) for k, v in after.items() if v > seen.get(k, 0)}
    loaded = sum(1 for v in seen.values() if v > 0)
    print(json.dumps({"outcome": result.outcome.value, "loaded_before": loaded, "new": new}))
    """
)


def test_a_session_compiles_nothing_after_its_clock_starts(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "w.sqlite")], capture_output=True, text=True, cwd=ROOT, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads(done.stdout.strip().splitlines()[-1])
    assert res["outcome"] == "completed", res  # the session got through exposure decisions
    assert res["loaded_before"] > 10  # kernels with compiled signatures before the clock started
    assert res["new"] == {}, f"compiled or loaded after the clock started: {res['new']}"
