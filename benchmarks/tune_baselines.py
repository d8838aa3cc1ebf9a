"""Tune the rule baselines on TRAINING patients (never the held-out ones), so that the learned
policy is compared with baselines at their best, not at arbitrary settings.

    python benchmarks/tune_baselines.py [--scenario spider] [--patients 40]

Prints, per baseline, every setting tried with its time in window, final step and aborts on
the training split, and the best setting (highest time in window among those with no more
aborts and no more time above the ceiling than the registry's default).
"""

from __future__ import annotations

import argparse
import itertools
import time

from exposure_ctrl.policy import load_policy
from exposure_ctrl.policy.evaluate import evaluate
from exposure_ctrl.policy.registry import LoadedPolicy
from exposure_ctrl.scenario import resolve_scenario

GRIDS: dict[str, dict[str, list]] = {
    "fixed-schedule": {"step_every_s": [60.0, 90.0, 120.0, 150.0, 180.0]},
    "habituation": {"fall_frac": [0.3, 0.5], "max_dwell_s": [120.0, 180.0, 300.0], "min_at_level_s": [30.0, 60.0]},
    "band-pi": {"kp": [0.06, 0.12, 0.25], "ki": [0.002, 0.004, 0.008], "setpoint_frac": [0.5, 0.65]},
    "greedy-model": {"target_frac": [0.5, 0.65, 0.8, 1.0], "hysteresis_bpm": [0.0, 1.0]},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="spider")
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default=None, help="comma-separated baselines")
    args = ap.parse_args()
    sc = resolve_scenario(args.scenario)
    names = args.only.split(",") if args.only else list(GRIDS)
    for name in names:
        grid = GRIDS[name]
        keys = list(grid)
        loaded = []
        for values in itertools.product(*(grid[k] for k in keys)):
            kw = dict(zip(keys, values))
            lp = load_policy(name, sc, **kw)
            tag = name + " " + " ".join(f"{k}={v:g}" for k, v in kw.items())
            loaded.append((kw, LoadedPolicy(lp.policy, tag, None, lp.description, lp.kind)))
        default = load_policy(name, sc)
        t0 = time.monotonic()
        ev = evaluate(sc, [default] + [lp for _, lp in loaded], patients=args.patients, seed=args.seed,
                      course_sessions=1, split="train")
        base = ev.results[0].summary
        print(f"\n{name} on {args.patients} training patients of {ev.cohort} ({time.monotonic() - t0:.0f} s)")
        best = None
        for (kw, _), r in zip([({}, default)] + loaded, ev.results):
            s = r.summary
            ok = s["abort_pct"][0] <= base["abort_pct"][0] + 1e-9 and s["above_ceiling_pct"][0] <= base["above_ceiling_pct"][0] + 1e-9
            print(f"  {r.policy:60s} window {s['time_in_window_pct'][0]:5.1f}%  step {s['final_step'][0]:4.1f}  "
                  f"aborts {s['abort_pct'][0]:4.1f}%  above ceiling {s['above_ceiling_pct'][0]:.2f}%{'' if ok else '  (excluded)'}")
            if ok and (best is None or s["time_in_window_pct"][0] > best[1].summary["time_in_window_pct"][0]):
                best = (kw, r)
        assert best is not None
        print(f"  best: {best[1].policy}  ({best[1].summary['time_in_window_pct'][0]:.1f}% in window)")


if __name__ == "__main__":
    main()
