"""Compile (and cache) every numba kernel once, before the test suite or a first clinic session.

numba compiles a kernel on its first call and, with ``cache=True``, stores the machine code beside
the source (``__pycache__``); later processes load it in milliseconds. A fresh checkout would
otherwise pay the compilation inside whichever test or session first touches each kernel, and
tests that start the controller as a subprocess would wait for it. This script touches them all:
the gym (simulator, batched features and response model, shield; one thread and several) and a short embedded live
session (the per-sample path). Prints how long it took.

    python scripts/warm_kernels.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    t0 = time.monotonic()
    import gymnasium as gym
    import numpy as np

    import exposure_ctrl  # noqa: F401  (registers the env)

    for scenario in ("spider", "public_speaking", "heights"):
        env = gym.make("exposure_ctrl/Exposure-v0", scenario=scenario)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(8):
            env.step(int(rng.integers(env.action_space.n)))
        env.close()
    # 4 sessions: the batched kernels on one thread; 256: their multi-threaded forms
    # (exposure_ctrl/_threads.py)
    for num_envs in (4, 256):
        vec = gym.make_vec("exposure_ctrl/Exposure-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", scenario="spider")
        vec.reset(seed=0)
        for _ in range(4):
            vec.step(np.zeros(num_envs, dtype=np.int64))
        vec.close()
    t1 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "exposure_ctrl", "run", "--speed", "100", "--baseline-s", "60",
            "--duration-s", "120", "--seed", "1", "--no-report", "--view", "plain", "--no-console",
            "--patient", "WARM-0001", "--store", str(Path(tmp) / "warm.sqlite"),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
    t2 = time.monotonic()
    print(f"numba kernels compiled and cached: gym {t1 - t0:.1f} s, live session {t2 - t1:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
