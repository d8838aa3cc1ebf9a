"""Training a learned policy: MaskablePPO (sb3-contrib) on simulated patients, with the shield
inside the environment exactly as live.

Domain randomisation: every training session meets a new patient drawn from the training split
of the cohort (physiology, sensitivities, habituation, tolerance all vary), through the batched
sessions of :class:`~exposure_ctrl.policy.vecenv.BatchVecEnv`. Invalid moves are masked.
The result is a saved policy directory (:mod:`~exposure_ctrl.policy.saved`): ``model.zip``,
``policy.json`` (scenario signature, observation names, training settings, software versions,
wall time), ``training.json`` (the learning curve) and ``checkpoints/``.

Python API::

    from exposure_ctrl.policy.train import TrainConfig, train
    result = train(TrainConfig(scenario="spider", timesteps=2_000_000, seed=1), out_dir="runs/spider")

Imports torch and SB3: import this module only where training runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.policy.saved import FORMAT, file_sha256, scenario_signature, write_policy_json
from exposure_ctrl.scenario.model import Scenario

__all__ = ["TrainConfig", "TrainResult", "train", "make_vec_env", "software_versions", "compact_save", "parse_overrides"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in ``policy.json``).

    The reward weights override the environment's defaults
    (:class:`~exposure_ctrl.sim.reward.RewardConfig`): the ceiling costs twenty times the
    window's gain (the goal allows no more time above it than the best baseline), progress earns
    one per new step (enough to climb, not enough to rush to the top and run out of
    fear-provoking scenes), changes are free (lateral moves keep a habituating patient in the
    window). PPO starts from an imitation of the band-PI rule (``warm_start``), learns at a low
    rate, and the iterate kept is the best one on validation patients (``select_*``). Every
    setting was chosen on training-split validation patients, never on the held-out ones.
    """

    scenario: str = "spider"
    cohort: str | None = None
    timesteps: int = 1_500_000
    seed: int = 0
    n_envs: int = 32
    n_steps: int = 128
    batch_size: int = 1024
    n_epochs: int = 4
    learning_rate: float = 1e-4
    gamma: float = 0.995
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (128, 128)
    sensor: str = "strap"
    suds_every_s: float | None = 60.0
    reward_window: float = 1.0
    reward_ceiling: float = 20.0
    reward_progress: float = 1.0
    reward_change: float = 0.0
    reward_blocked: float = 0.1
    reward_abort: float = 50.0
    shaping: float = 0.0  # potential-based shaping on the distance from the window (training only)
    low_edge_bonus: float = 0.0  # extra reward for window time near the window's low edge (training only)
    warm_start: str | None = "band-pi"  # a rule policy or "oracle" to imitate before PPO (behaviour cloning + value fit)
    warm_start_sessions: int = 256  # teacher sessions for the warm start (the teacher drives)
    warm_start_epochs: int = 5
    dagger_rounds: int = 0  # with the oracle as teacher: rounds where the student drives and the oracle labels (DAgger)
    dagger_sessions: int = 128  # sessions per DAgger round
    dagger_beta: float = 0.5  # round r: the teacher's action is executed with probability beta**r
    select_every: int | None = 50_000  # validate the deterministic policy every this many decisions...
    select_start: int = 300_000  # ...from here on, and keep the best (see _Selector)
    select_patients: int = 200  # validation patients: training split indices 0..n-1, seed select_seed
    select_seed: int = 1
    escalation_guard: bool = True  # never escalate while the heart rate reads above the window...
    guard_bpm: float | None = None  # ...or above this many bpm over baseline (None: the window's high edge)
    dwell_guard: bool = False  # propose nothing during the minimum dwell (but a step down above the window)
    descend_above_bpm: float | None = None  # only steps down while the heart rate reads above this (None: no such guard)
    exposure_max_s: float | None = None  # shorten the sessions (smoke tests only)
    torch_threads: int = 1
    checkpoint_every: int | None = 500_000

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise ConfigError(f"timesteps must be at least 1, found {self.timesteps}")
        if self.n_envs < 1 or self.n_steps < 1:
            raise ConfigError("n_envs and n_steps must be at least 1")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2, found {self.batch_size}")


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["reward_ceiling=200", "net_arch=64,64"]`` → typed :class:`TrainConfig` fields
    (``ConfigError`` naming the field and the expected type)."""
    import typing

    from exposure_ctrl.scenario.model import did_you_mean

    hints = typing.get_type_hints(TrainConfig)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, found {item!r}")
        if key == "scenario":
            raise ConfigError("--set: the scenario is not a setting; use --scenario")
        if key not in hints:
            raise ConfigError(f"--set: TrainConfig has no field {key!r}" + did_you_mean(key, sorted(hints)))
        hint = hints[key]
        raw = raw.strip()
        try:
            if raw.lower() in ("none", "null") and "None" in str(hint):
                value: Any = None
            elif "tuple" in str(hint):
                value = tuple(int(x) for x in raw.strip("()").split(",") if x.strip())
            elif hint is bool or str(hint).startswith("bool"):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1", "yes")
            elif "int" in str(hint) and "float" not in str(hint):
                value = int(raw)
            elif "float" in str(hint):
                value = float(raw)
            else:
                value = raw
        except ValueError:
            raise ConfigError(f"--set {key}: cannot read {raw!r} as {hint}") from None
        out[key] = value
    return out


@dataclasses.dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    wall_s: float
    timesteps: int
    curve: list[dict[str, float]]


def software_versions() -> dict[str, str]:
    import gymnasium
    import sb3_contrib
    import stable_baselines3
    import torch

    from exposure_ctrl import __version__

    return {
        "exposure_ctrl": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
        "gymnasium": gymnasium.__version__,
    }


def _scenario(cfg: TrainConfig, scenario: Scenario | None) -> Scenario:
    from exposure_ctrl.scenario import resolve_scenario

    sc = scenario if scenario is not None else resolve_scenario(cfg.scenario)
    if cfg.exposure_max_s is not None:
        sc = sc.model_copy(update={"timing": sc.timing.model_copy(update={"exposure_max_s": float(cfg.exposure_max_s)})})
    return sc


def make_vec_env(cfg: TrainConfig, scenario: Scenario | None = None) -> Any:
    """The training environment of ``cfg`` (a :class:`BatchVecEnv`)."""
    from exposure_ctrl.policy.vecenv import BatchVecEnv
    from exposure_ctrl.sim.batch import SessionOptions
    from exposure_ctrl.sim.cohorts import cohort_for
    from exposure_ctrl.sim.reward import RewardConfig

    sc = _scenario(cfg, scenario)
    reward = RewardConfig(
        window=cfg.reward_window,
        ceiling=cfg.reward_ceiling,
        progress=cfg.reward_progress,
        change=cfg.reward_change,
        blocked=cfg.reward_blocked,
        abort=cfg.reward_abort,
    )
    opts = SessionOptions(
        cohort=cohort_for(sc, cfg.cohort),
        split="train",
        sensor=cfg.sensor,
        reward=reward,
        suds_every_s=cfg.suds_every_s,
        recovery=False,
    )
    return BatchVecEnv(
        sc,
        cfg.n_envs,
        opts,
        seed=cfg.seed,
        shaping=cfg.shaping,
        gamma=cfg.gamma,
        low_edge_bonus=cfg.low_edge_bonus,
        escalation_guard_bpm=_guard_bpm(cfg, sc),
        dwell_guard=cfg.dwell_guard,
        descend_above_bpm=cfg.descend_above_bpm,
    )


def _guard_bpm(cfg: TrainConfig, sc: Scenario) -> float | None:
    if not cfg.escalation_guard:
        return None
    return float(cfg.guard_bpm) if cfg.guard_bpm is not None else float(sc.targets.arousal_window_bpm.high)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    scenario: Scenario | None = None,
    tensorboard: str | Path | None = None,
    progress_bar: bool = False,
    on_report: Callable[[dict[str, float]], None] | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train MaskablePPO per ``cfg`` and save the policy directory ``out_dir``."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback

    if tensorboard is not None:
        try:
            import tensorboard as _tb  # noqa: F401
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sc = _scenario(cfg, scenario)
    env = make_vec_env(cfg, sc)
    curve: list[dict[str, float]] = []
    t0 = time.monotonic()

    class _Report(BaseCallback):
        """Every rollout: mean return, time in window, step and aborts of the sessions finished."""

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            done = env.completed
            env.completed = []
            if not done:
                return
            row = {
                "timesteps": float(self.num_timesteps),
                "wall_s": round(time.monotonic() - t0, 1),
                "sessions": float(len(done)),
                "return": float(np.mean([d["return"] for d in done])),
                "time_in_window_pct": 100.0 * float(np.mean([d["in_window"] for d in done])),
                "highest_step": 1.0 + float(np.mean([d["highest_step"] for d in done])),
                "abort_pct": 100.0 * float(np.mean([d["aborted"] for d in done])),
            }
            curve.append(row)
            self.logger.record("exposure/time_in_window_pct", row["time_in_window_pct"])
            self.logger.record("exposure/highest_step", row["highest_step"])
            self.logger.record("exposure/abort_pct", row["abort_pct"])
            if on_report is not None:
                on_report(row)

    callbacks: list[Any] = [_Report()]
    if cfg.checkpoint_every:
        callbacks.append(
            CheckpointCallback(
                save_freq=max(1, cfg.checkpoint_every // cfg.n_envs), save_path=str(out / "checkpoints"), name_prefix="model"
            )
        )
    model = MaskablePPO(
        "MlpPolicy",
        env,
        n_steps=cfg.n_steps,
        batch_size=min(cfg.batch_size, cfg.n_envs * cfg.n_steps),
        n_epochs=cfg.n_epochs,
        learning_rate=cfg.learning_rate,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        ent_coef=cfg.ent_coef,
        clip_range=cfg.clip_range,
        policy_kwargs={"net_arch": list(cfg.net_arch)},
        seed=cfg.seed,
        device="cpu",
        verbose=0,
        tensorboard_log=str(tensorboard) if tensorboard is not None else None,
    )
    if cfg.warm_start:
        _warm_start(model, cfg, sc, env.options, env.guard)
    selector = _Selector(model, cfg, sc) if cfg.select_every else None
    if selector is not None:
        callbacks.append(selector.callback())
        if cfg.select_start <= 0:
            selector.evaluate_now(0)  # the warm-started policy is a candidate too
    model.learn(total_timesteps=int(cfg.timesteps), callback=CallbackList(callbacks), progress_bar=progress_bar)
    if selector is not None:
        selector.restore_best()
    wall = time.monotonic() - t0
    model_path = out / "model.zip"
    compact_save(model, model_path)
    versions = software_versions()
    meta = {
        "format": FORMAT,
        "id": f"ppo-{sc.id}",
        "kind": "maskable-ppo",
        "description": f"MaskablePPO trained on {cfg.timesteps:,} decisions of simulated {env.options.cohort.name} patients (seed {cfg.seed})",
        "scenario": scenario_signature(sc),
        "observation": {"names": list(env.observation_names), "scaled": True},
        "action_guard": {"no_escalation_above_bpm": _guard_bpm(cfg, sc), "hold_during_dwell": bool(cfg.dwell_guard),
                         "descend_above_bpm": cfg.descend_above_bpm},
        "model": {"file": model_path.name, "sha256": file_sha256(model_path)},
        "training": {
            "config": dataclasses.asdict(cfg),
            "cohort": env.options.cohort.name,
            "split": "train",
            "command": command,
            "wall_s": round(wall, 1),
            "timesteps": int(model.num_timesteps),
            "machine": {"cpus": _cpus(), "platform": platform.platform()},
            "versions": versions,
        },
    }
    if selector is not None:
        meta["training"]["selection"] = selector.summary()
    write_policy_json(out, meta)
    (out / "training.json").write_text(
        json.dumps({"curve": curve, "selection": selector.table if selector is not None else []}, indent=1) + "\n",
        encoding="utf-8",
    )
    log.info("trained %s in %.0f s", meta["id"], wall)
    return TrainResult(out, model_path, wall, int(model.num_timesteps), curve)


class _Selector:
    """Checkpoint selection on validation patients, with the goal's constraints.

    The deterministic policy's time in window moves by several points from one PPO update to
    the next (near-ties between actions flip the argmax), so the last iterate is a poor pick.
    Every ``select_every`` decisions from ``select_start`` on, the current policy runs one
    session of ``select_patients`` *training-split* patients (indices 0..n-1; training draws
    its patients at random among 2^31 indices, and the held-out split is never used); the best
    rule baseline on the same patients sets the bar: no more aborts, no more time above the
    ceiling, at least the same final step. Among the iterates that satisfy it, the one with the
    most time in window is kept; if none does, the most time in window among those that meet the
    most of the three constraints.
    """

    def __init__(self, model: Any, cfg: TrainConfig, sc: Scenario) -> None:
        from exposure_ctrl.policy.evaluate import evaluate
        from exposure_ctrl.policy.registry import rule_names
        from exposure_ctrl.policy.spec import observation_spec

        self.model = model
        self.cfg = cfg
        self.sc = sc
        self.spec = observation_spec(sc)
        rules = rule_names()
        ev = evaluate(sc, rules, cohort=cfg.cohort, patients=cfg.select_patients, seed=cfg.select_seed,
                      course_sessions=1, sensor=cfg.sensor, split="train")
        best = max(ev.results, key=lambda r: r.summary["time_in_window_pct"][0])
        self.reference = {"policy": best.policy, **{k: v[0] for k, v in best.summary.items()}}
        self.table: list[dict[str, Any]] = []
        self.best_state: Any = None
        self.best_key: tuple[int, float] | None = None
        self.last = -1

    def evaluate_now(self, timesteps: int) -> None:
        import copy

        from exposure_ctrl.policy.evaluate import _summarise, constraint_checks, run_policy
        from exposure_ctrl.policy.learned import LearnedPolicy
        from exposure_ctrl.policy.registry import LoadedPolicy
        from exposure_ctrl.sim.cohorts import cohort_for

        pol = LearnedPolicy(self.sc, self.model, self.spec, escalation_guard_bpm=_guard_bpm(self.cfg, self.sc),
                            dwell_guard=self.cfg.dwell_guard, descend_above_bpm=self.cfg.descend_above_bpm)
        lp = LoadedPolicy(pol, "candidate", None, "", "maskable-ppo")
        per = run_policy(self.sc, lp, cohort_for(self.sc, self.cfg.cohort), self.cfg.select_patients,
                         self.cfg.select_seed, 1, self.cfg.sensor, split="train")
        s = {k: v[0] for k, v in _summarise(per).items()}
        ref = self.reference
        met = tuple(constraint_checks(s, ref).values())
        ok = all(met)
        key = (sum(met), s["time_in_window_pct"])
        row = {"timesteps": int(timesteps), "meets_constraints": ok, "constraints_met": int(sum(met)),
               **{k: round(float(v), 3) for k, v in s.items()}}
        self.table.append(row)
        if self.best_key is None or key > self.best_key:
            self.best_key = key
            self.best_state = copy.deepcopy(self.model.policy.state_dict())
            row["best_so_far"] = True
        log.info("validation at %d: window %.1f%% (constraints %s)", timesteps, s["time_in_window_pct"], ok)

    def callback(self) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        sel = self

        class _Cb(BaseCallback):
            def _on_step(self) -> bool:
                return True

            def _on_rollout_end(self) -> None:
                t = self.num_timesteps
                if t >= sel.cfg.select_start and (sel.last < 0 or t - sel.last >= int(sel.cfg.select_every or 0)):
                    sel.last = t
                    sel.evaluate_now(t)

        return _Cb()

    def restore_best(self) -> None:
        self.evaluate_now(int(self.model.num_timesteps))
        if self.best_state is not None:
            self.model.policy.load_state_dict(self.best_state)

    def summary(self) -> dict[str, Any]:
        best = next((r for r in reversed(self.table) if r.get("best_so_far")), None)
        return {
            "validation": f"{self.cfg.select_patients} training-split patients (indices 0..{self.cfg.select_patients - 1}), seed {self.cfg.select_seed}",
            "reference": self.reference,
            "chosen": best,
            "candidates": len(self.table),
        }


def _teacher_sessions(
    sc: Scenario,
    n: int,
    options: Any,
    rng: np.random.Generator,
    teacher: Any,
    gamma: float,
    pick: Callable[[Any, np.ndarray, np.ndarray], tuple[np.ndarray, ...]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drive ``n`` whole training sessions in lockstep (so the teacher's per-session memory is
    reset exactly at each start); ``pick(batch, obs, done)`` gives per decision the mask, the
    teacher's label and the action executed. Returns observations, masks, labels and discounted
    returns of every decision taken while a session was still running."""
    from exposure_ctrl.sim.batch import SessionBatch

    b = SessionBatch(sc, n, options, rng)
    b.start(np.arange(n))
    teacher.reset(n)
    if hasattr(teacher, "bind"):  # a privileged teacher reads the simulated patients' truth
        teacher.bind(lambda b=b: (b.sim.params, b.sim.patient, b.positions))
    obs = b.observation()
    done = np.zeros(n, dtype=bool)
    o_s, m_s, a_s, r_s, live_s = [], [], [], [], []
    while not done.all():
        mask, a, drive = pick(b, obs, done)
        o_s.append(obs)
        m_s.append(mask)
        a_s.append(a)
        live_s.append(~done)
        obs, r, term, _ = b.step(drive, active=~done)
        r_s.append(np.where(done, 0.0, r))
        done |= np.asarray(term, dtype=bool)
    g = np.zeros(n)
    rets = []
    for r in reversed(r_s):
        g = r + gamma * g
        rets.append(g.copy())
    rets.reverse()
    live = np.array(live_s)
    return np.array(o_s)[live], np.array(m_s)[live], np.array(a_s)[live], np.array(rets)[live]


def _warm_start(model: Any, cfg: TrainConfig, sc: Scenario, options: Any, guard: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Behaviour cloning of a teacher (masked cross-entropy) and a Monte-Carlo fit of the value
    function, so that PPO starts from the teacher rather than from chance.

    The teacher is a rule policy or the oracle (a privileged teacher: it plans on the simulated
    patient's true model, the student sees only the observation). The teacher first drives
    ``warm_start_sessions`` whole sessions of training patients (its own generator stream), all
    rows in lockstep so its per-session memory is reset exactly at each session start. With the
    oracle, ``dagger_rounds`` rounds of DAgger follow (Ross, Gordon & Bagnell 2011): the student
    drives ``dagger_sessions`` sessions (the teacher's action executed with probability
    ``dagger_beta ** round``), the oracle labels every state the student reaches, and the
    student is refitted on all labels so far. The value head is fitted to the discounted returns
    of the sessions of the last round (those closest to the policy PPO starts from). ``guard``
    is the learned policy's own mask (escalation and dwell guards): labels it forbids become
    holds."""
    import torch

    from exposure_ctrl.policy.registry import load_policy

    teacher = load_policy(cfg.warm_start, sc, live=False).policy
    privileged = hasattr(teacher, "bind")
    if not privileged:
        _warm_start_rule(model, cfg, sc, options, teacher)  # the recipe of the band-PI warm start, unchanged
        return
    rng = np.random.default_rng(cfg.seed + 7919)
    policy = model.policy
    n = cfg.n_envs
    rounds = 1 + max(0, int(cfg.dagger_rounds))
    data: dict[str, list[np.ndarray]] = {"obs": [], "mask": [], "act": []}
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    ret_obs: np.ndarray = np.zeros((0, 1))
    ret_val: np.ndarray = np.zeros(0)
    for rnd in range(rounds):
        sessions = cfg.warm_start_sessions if rnd == 0 else cfg.dagger_sessions
        beta = 1.0 if rnd == 0 else float(cfg.dagger_beta) ** rnd
        r_obs: list[np.ndarray] = []
        r_ret: list[np.ndarray] = []
        for _ in range(max(1, sessions // n)):

            def pick(b: Any, obs: np.ndarray, done: np.ndarray, beta: float = beta) -> tuple[np.ndarray, ...]:
                mask = guard(b.action_masks(), obs)
                a, _ = teacher.act(obs, mask)  # legal under the mask (the oracle holds otherwise)
                drive = a
                if beta < 1.0:
                    with torch.no_grad():
                        dist = policy.get_distribution(torch.as_tensor(obs, dtype=torch.float32), action_masks=mask)
                        probs = dist.distribution.probs.numpy()
                    own = np.argmax(np.where(mask, probs, -1.0), axis=1)
                    drive = np.where(rng.random(n) < beta, a, own)
                return mask, a, drive

            o, mk, act, ret = _teacher_sessions(sc, n, options, rng, teacher, cfg.gamma, pick)
            data["obs"].append(o)
            data["mask"].append(mk)
            data["act"].append(act)
            r_obs.append(o)
            r_ret.append(ret)
        ret_obs, ret_val = np.concatenate(r_obs), np.concatenate(r_ret)
        obs_a = torch.as_tensor(np.concatenate(data["obs"]), dtype=torch.float32)
        mask_a = np.concatenate(data["mask"])
        act_a = torch.as_tensor(np.concatenate(data["act"]), dtype=torch.long)
        m = len(act_a)

        def nll_of(idx: np.ndarray) -> Any:
            dist = policy.get_distribution(obs_a[idx], action_masks=mask_a[idx])
            return -dist.log_prob(act_a[idx]).mean()

        nll = _minibatch_fit(rng, m, cfg.warm_start_epochs, opt, nll_of)
        log.info("warm start round %d: imitated %s on %d decisions (final NLL %.3f)", rnd, cfg.warm_start, m, float(nll.detach()))
    # the value head: discounted returns of the last round's sessions
    v_obs = torch.as_tensor(ret_obs, dtype=torch.float32)
    v_ret = torch.as_tensor(ret_val, dtype=torch.float32)

    def value_loss(idx: np.ndarray) -> Any:
        v = policy.predict_values(v_obs[idx]).flatten()
        return torch.nn.functional.mse_loss(v, v_ret[idx])

    _minibatch_fit(rng, len(v_ret), cfg.warm_start_epochs, torch.optim.Adam(policy.parameters(), lr=1e-3), value_loss)


def _warm_start_rule(model: Any, cfg: TrainConfig, sc: Scenario, options: Any, teacher: Any) -> None:
    """Behaviour cloning of a rule policy (masked cross-entropy) and a Monte-Carlo fit of the
    value function on its sessions, so that PPO starts from the teacher rather than from chance.

    The teacher runs whole sessions of training patients (its own generator stream), all rows
    in lockstep so its per-session memory is reset exactly at each session start."""
    import torch

    rng = np.random.default_rng(cfg.seed + 7919)
    n = cfg.n_envs
    obs_l: list[np.ndarray] = []
    mask_l: list[np.ndarray] = []
    act_l: list[np.ndarray] = []
    ret_l: list[np.ndarray] = []
    for _ in range(max(1, cfg.warm_start_sessions // n)):

        def pick(b: Any, obs: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, ...]:
            mask = b.action_masks()
            a, _ = teacher.act(obs, mask)
            return mask, a, a

        o, mk, act, ret = _teacher_sessions(sc, n, options, rng, teacher, cfg.gamma, pick)
        obs_l.append(o)
        mask_l.append(mk)
        act_l.append(act)
        ret_l.append(ret)
    obs_a = torch.as_tensor(np.concatenate(obs_l), dtype=torch.float32)
    mask_a = np.concatenate(mask_l)
    act_a = torch.as_tensor(np.concatenate(act_l), dtype=torch.long)
    ret_a = torch.as_tensor(np.concatenate(ret_l), dtype=torch.float32)
    policy = model.policy
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    m = len(act_a)
    last = {}

    def joint_loss(idx: np.ndarray) -> Any:
        dist = policy.get_distribution(obs_a[idx], action_masks=mask_a[idx])
        last["nll"] = -dist.log_prob(act_a[idx]).mean()
        v = policy.predict_values(obs_a[idx]).flatten()
        return last["nll"] + 0.5 * torch.nn.functional.mse_loss(v, ret_a[idx])

    _minibatch_fit(rng, m, cfg.warm_start_epochs, opt, joint_loss)
    log.info("warm start: imitated %s on %d decisions (final NLL %.3f)", cfg.warm_start, m, float(last["nll"].detach()))


def _minibatch_fit(rng: np.random.Generator, m: int, epochs: int, opt: Any, loss_of: Callable[[np.ndarray], Any]) -> Any:
    """``epochs`` passes over ``m`` examples in shuffled minibatches of 1024; the last loss."""
    loss = None
    for _ in range(epochs):
        perm = rng.permutation(m)
        for i in range(0, m, 1024):
            loss = loss_of(perm[i : i + 1024])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return loss


def compact_save(model: Any, path: Path) -> None:
    """Save ``model`` without the optimizer's moment estimates (two thirds of the file; only
    needed to resume training, which restarts them): a shipped model stays a few hundred KB."""
    model.policy.optimizer.state.clear()
    model.save(str(path))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
