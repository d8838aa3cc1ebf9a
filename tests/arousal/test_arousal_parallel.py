"""The features' block update and the tracker's tick on several threads (``chunks`` > 1): the
same numbers, bit for bit, as on one thread."""

from __future__ import annotations

import numpy as np

from exposure_ctrl.arousal import ArousalTracker
from exposure_ctrl.scenario import resolve_scenario
from exposure_ctrl.sim import Simulator, sample_patients


def _feed(tr: ArousalTracker, frames) -> np.ndarray:
    return tr.update_block(frames.t_s, frames.bpm, frames.rr_ms, frames.n_rr, frames.contact, frames.present, frames.flags)


def test_threads_give_the_same_features_and_model_as_one_thread():
    sc = resolve_scenario("spider")
    n = 257
    sim = Simulator(sc, sample_patients(sc, "spider-severe", np.arange(n)), rng=np.random.default_rng(2), sensor="strap-flaky")
    safe = np.broadcast_to(sc.positions(sc.safe_state), (n, sc.n_parameters))
    trackers = {k: ArousalTracker(sc, n=n, positions=safe, t0=0.0, chunks=k) for k in (1, 2, 5)}
    for k, tr in trackers.items():
        assert tr.chunks == k
        tr.begin_baseline(0.0)
    rng = np.random.default_rng(3)
    top = len(sc.hierarchy)
    pos = safe
    outs: dict[int, list[np.ndarray]] = {k: [] for k in trackers}
    for step in range(120):
        if step == 36:
            for tr in trackers.values():
                tr.finish_baseline(float(sim.patient.t_s[0]))
        if step >= 36 and step % 6 == 0:  # new scenes for some rows
            pos = pos.copy()
            rows = rng.random(n) < 0.3
            pos[rows] = sc.hierarchy_positions[rng.integers(0, top, size=int(rows.sum()))]
            for tr in trackers.values():
                tr.set_scene(float(sim.patient.t_s[0]), pos, mask=rows)
        f = sim.step(pos).frames
        t_end = float(sim.patient.t_s[0])
        for k, tr in trackers.items():
            outs[k].append(_feed(tr, f))
            outs[k].append(tr.tick(t_end))
    for k in (2, 5):
        for j, (a, b) in enumerate(zip(outs[k], outs[1], strict=True)):
            np.testing.assert_array_equal(a, b, err_msg=f"{k} chunks, output {j}")
        for name in ("_st", "_cnt", "rr_ring"):
            np.testing.assert_array_equal(getattr(trackers[k].features, name), getattr(trackers[1].features, name), err_msg=name)
        for name in ("_m", "_c", "_z", "n_hr_updates", "n_gated"):
            np.testing.assert_array_equal(getattr(trackers[k].model, name), getattr(trackers[1].model, name), err_msg=name)
    # the comparison covered learning and artifacts
    assert trackers[1].model.n_hr_updates.min() > 0
    flags = np.concatenate([o.ravel() for o in outs[1][0::2]])
    assert (flags != 0).any()
