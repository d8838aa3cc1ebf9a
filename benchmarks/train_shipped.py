"""Train, evaluate and ship the default policy of a scenario (``policies/<scenario-id>/``).

    python benchmarks/train_shipped.py --scenario spider --timesteps 1500000 --seed 0

1. trains exactly as ``exposure-ctrl train --scenario S --timesteps T --seed X`` (same defaults),
   into ``runs/<scenario>-seed<seed>/``, and prints the wall time;
2. evaluates every baseline, the new policy and the oracle on the same held-out patients
   (``exposure-ctrl evaluate`` defaults: 100 patients, a 4-session course), prints the table and
   the goal check;
3. with ``--ship``: copies the model and its ``policy.json`` to ``policies/<scenario>/`` with the
   evaluation (Markdown, JSON, PNG) and a card (``CARD.md``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from exposure_ctrl.policy.card import render_card
from exposure_ctrl.policy.evaluate import evaluate, goal_check, render_markdown, write_evaluation
from exposure_ctrl.policy.registry import rule_names
from exposure_ctrl.policy.train import TrainConfig, train
from exposure_ctrl.scenario import resolve_scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINES = rule_names()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="spider")
    ap.add_argument("--timesteps", type=int, default=TrainConfig.timesteps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patients", type=int, default=100)
    ap.add_argument("--course-sessions", type=int, default=4)
    ap.add_argument("--eval-seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=None, help="where to train (default runs/<scenario>-seed<seed>)")
    ap.add_argument("--skip-training", action="store_true", help="evaluate an existing --run-dir")
    ap.add_argument("--ship", action="store_true", help="copy the result into policies/<scenario>/")
    ap.add_argument("--recard", action="store_true",
                    help="only rewrite policies/<scenario>/CARD.md (e.g. new notes) from its policy.json and evaluation.md")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="training setting overrides, as exposure-ctrl train --set")
    ap.add_argument("--notes", default="", help="text for the card's Notes section")
    ap.add_argument("--notes-file", type=Path, default=None, help="read the Notes section from this file")
    args = ap.parse_args()

    sc = resolve_scenario(args.scenario)
    notes = args.notes_file.read_text() if args.notes_file else args.notes
    if args.recard:
        dest = ROOT / "policies" / sc.id
        meta = json.loads((dest / "policy.json").read_text())
        md = (dest / "evaluation.md").read_text()
        (dest / "CARD.md").write_text(render_card(meta, md, (meta.get("evaluation") or {}).get("goal"), notes))
        print(f"rewrote {dest / 'CARD.md'}")
        return 0
    run_dir = args.run_dir or ROOT / "runs" / f"{sc.id}-seed{args.seed}"
    command = f"exposure-ctrl train --scenario {sc.id} --timesteps {args.timesteps} --seed {args.seed}"
    command += "".join(f" --set {o}" for o in args.overrides)
    if not args.skip_training:
        from exposure_ctrl.policy.train import parse_overrides

        cfg = TrainConfig(scenario=sc.id, timesteps=args.timesteps, seed=args.seed, **parse_overrides(args.overrides))
        last = [0.0]

        def report(row: dict[str, float]) -> None:
            if row["timesteps"] - last[0] >= 100_000:
                last[0] = row["timesteps"]
                print(f"  {row['timesteps']:>9,.0f} decisions  {row['wall_s']:6.0f} s  training sessions: window "
                      f"{row['time_in_window_pct']:5.1f}%  step {row['highest_step']:4.1f}  aborts {row['abort_pct']:4.1f}%", flush=True)

        print(f"training: {command}", flush=True)
        res = train(cfg, run_dir, scenario=sc, on_report=report, command=command)
        print(f"training wall time: {res.wall_s:.0f} s ({res.wall_s / 60:.1f} min) for {res.timesteps:,} decisions", flush=True)

    t0 = time.monotonic()
    ev = evaluate(sc, BASELINES + [str(run_dir), "oracle"], patients=args.patients, seed=args.eval_seed,
                  course_sessions=args.course_sessions)
    print(f"evaluation wall time: {time.monotonic() - t0:.0f} s")
    md = render_markdown(ev)
    print(md)
    goal = goal_check(ev)
    write_evaluation(ev, run_dir)
    if args.ship:
        dest = ROOT / "policies" / sc.id
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("policy.json", "training.json"):
            shutil.copy2(run_dir / name, dest / name)
        # the model without optimizer moments (same weights, a third of the size)
        from exposure_ctrl.policy.learned import load_sb3_model
        from exposure_ctrl.policy.saved import file_sha256
        from exposure_ctrl.policy.train import compact_save

        compact_save(load_sb3_model("maskable-ppo", run_dir / "model.zip"), dest / "model.zip")
        meta = json.loads((dest / "policy.json").read_text())
        meta["model"]["sha256"] = file_sha256(dest / "model.zip")
        meta["training"]["command"] = command
        meta["evaluation"] = {"patients": ev.patients, "seed": ev.seed, "cohort": ev.cohort, "goal": goal}
        (dest / "policy.json").write_text(json.dumps(meta, indent=2) + "\n")
        write_evaluation(ev, dest)
        (dest / "CARD.md").write_text(render_card(meta, md, goal, notes))
        print(f"shipped to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
