"""Compile (and cache) every numba kernel once, before the test suite or a first clinic session.

numba compiles a kernel on its first call and, with ``cache=True``, stores the machine code beside
the source (``__pycache__``); later processes load it in milliseconds. A fresh checkout would
otherwise pay the compilation inside whichever test or session first touches each kernel, and
tests that start the controller as a subprocess would wait for it. This script touches them all:
a single environment (the simulator, the features and response model, the shield: the same
kernels and argument types a live session uses, which also loads them itself before its clock
starts) and vector environments of 4 and 256 sessions (the batched kernels on one thread and
their multi-threaded forms). Prints how long it took.

    python scripts/warm_kernels.py
"""

from __future__ import annotations

import time


def main() -> int:
    t0 = time.monotonic()
    import gymnasium as gym
    import numpy as np

    import exposure_ctrl  # noqa: F401  (registers the env)

    env = gym.make("exposure_ctrl/Exposure-v0", scenario="spider")
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
    print(f"numba kernels compiled and cached: {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
