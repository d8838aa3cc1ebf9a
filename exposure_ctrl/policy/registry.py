"""Finding and loading policies: registered names, saved policy directories, shipped policies.

:func:`load_policy` is the one entry point the session and the evaluation use::

    lp = load_policy(None, scenario)          # the shipped policy of the scenario (or a rule)
    lp = load_policy("band-pi", scenario)     # a registered name
    lp = load_policy("runs/spider-ppo", scenario)  # a saved policy directory
    lp.policy.act(obs, mask); lp.id; lp.sha256; lp.description

Shipped policies live in ``policies/<scenario-id>/`` (searched in ``$EXPOSURE_CTRL_POLICY_PATH``
first, then the ``policies/`` folder of this checkout).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exposure_ctrl.errors import ConfigError
from exposure_ctrl.policy.base import Policy
from exposure_ctrl.policy.spec import ObservationSpec, observation_spec
from exposure_ctrl.scenario.model import Scenario, did_you_mean

__all__ = [
    "LoadedPolicy",
    "load_policy",
    "policy_names",
    "rule_names",
    "policy_dirs",
    "shipped_policy_dir",
    "DEFAULT_RULE",
    "POLICY_PATH_ENV",
]

log = logging.getLogger(__name__)

POLICY_PATH_ENV = "EXPOSURE_CTRL_POLICY_PATH"
DEFAULT_RULE = "habituation"
"""What sessions use when no policy is shipped for the scenario."""


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A policy ready to act, with what the session records about it.

    Attributes:
        policy: the :class:`Policy`.
        id: a short identifier (``habituation``, ``ppo-spider``...).
        sha256: hash of the model file (None for rule policies, which are code).
        description: one line for the therapist and the record.
        kind: ``rule``, ``online-rl``, ``oracle`` or the learned kind (``maskable-ppo``).
        directory: where a saved policy was loaded from.
        meta: the saved policy's ``policy.json`` (empty for rule policies).
    """

    policy: Policy
    id: str
    sha256: str | None
    description: str
    kind: str = "rule"
    directory: Path | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def simulation_only(self) -> bool:
        """True for the oracle (it needs the simulated patient's true model)."""
        return self.kind == "oracle"


def _rule(factory: Callable[..., Policy], description: str, kind: str = "rule") -> Callable[..., tuple[Policy, str, str]]:
    def make(sc: Scenario, spec: ObservationSpec, **kw: Any) -> tuple[Policy, str, str]:
        return factory(sc, spec=spec, **kw), description, kind

    return make


def _fixed(sc: Scenario, spec: ObservationSpec, **kw: Any) -> Policy:
    from exposure_ctrl.policy.rules import FixedSchedule, FixedScheduleConfig

    return FixedSchedule(sc, FixedScheduleConfig(**kw), spec=spec)


def _habituation(sc: Scenario, spec: ObservationSpec, **kw: Any) -> Policy:
    from exposure_ctrl.policy.rules import HabituationConfig, HabituationCriterion

    return HabituationCriterion(sc, HabituationConfig(**kw), spec=spec)


def _band(sc: Scenario, spec: ObservationSpec, **kw: Any) -> Policy:
    from exposure_ctrl.policy.rules import BandPI, BandPIConfig

    return BandPI(sc, BandPIConfig(**kw), spec=spec)


def _greedy(sc: Scenario, spec: ObservationSpec, **kw: Any) -> Policy:
    from exposure_ctrl.policy.rules import GreedyConfig, GreedyModel

    return GreedyModel(sc, GreedyConfig(**kw), spec=spec)


def _qlearning(sc: Scenario, spec: ObservationSpec, **kw: Any) -> Policy:
    from exposure_ctrl.policy.qlearning import QLearningConfig, TabularQ

    return TabularQ(sc, QLearningConfig(**kw), spec=spec)


def _oracle(sc: Scenario, spec: ObservationSpec, **kw: Any) -> Policy:
    from exposure_ctrl.policy.oracle import Oracle, OracleConfig

    return Oracle(sc, OracleConfig(**kw), spec=spec)


_REGISTRY: dict[str, tuple[Callable[..., Policy], str, str]] = {
    "fixed-schedule": (_fixed, "fixed schedule: the next hierarchy step every few minutes, whatever the patient does", "rule"),
    "habituation": (
        _habituation,
        "habituation criterion: step up when arousal has fallen by half from its peak (or after a maximum dwell), step down after overshoot",
        "rule",
    ),
    "band-pi": (_band, "band controller: PI on heart rate above baseline toward the window's middle", "rule"),
    "greedy-model": (_greedy, "model-based greedy: the neighbour state whose predicted arousal is closest to the upper-middle of the window", "rule"),
    "q-learning": (_qlearning, "tabular Q-learning on discretised anxiety, online within the session, ε = 0.05 (Mahmoudi-Nejad et al. 2025)", "online-rl"),
    "oracle": (_oracle, "oracle: model-predictive control with the true patient model (simulation only)", "oracle"),
}
_LEARNED_NAMES = ("ppo",)


def rule_names() -> list[str]:
    """The rule (and online-RL) baselines every evaluation compares against, in the order
    evaluations and reports list them (the registry's order)."""
    return [name for name, (_, _, kind) in _REGISTRY.items() if kind in ("rule", "online-rl")]


def policy_names() -> list[str]:
    """Every registered name (``ppo`` means the shipped learned policy of the scenario)."""
    return sorted([*_REGISTRY, *_LEARNED_NAMES])


def policy_dirs() -> list[Path]:
    """Where shipped policies are looked up: ``$EXPOSURE_CTRL_POLICY_PATH``, then ``policies/``."""
    dirs = [Path(d) for d in os.environ.get(POLICY_PATH_ENV, "").split(os.pathsep) if d]
    dirs.append(Path(__file__).resolve().parents[2] / "policies")
    return [d for d in dirs if d.is_dir()]


def shipped_policy_dir(scenario_id: str) -> Path | None:
    """``<policies>/<scenario_id>/`` holding a ``policy.json``, or None."""
    from exposure_ctrl.policy.saved import POLICY_FILE

    for d in policy_dirs():
        cand = d / scenario_id
        if (cand / POLICY_FILE).is_file():
            return cand
    return None


def load_policy(
    ref: str | os.PathLike[str] | None,
    scenario: Scenario,
    *,
    live: bool = True,
    **settings: Any,
) -> LoadedPolicy:
    """Load the policy ``ref`` for ``scenario`` (see the module docstring).

    Args:
        ref: None (the shipped policy of the scenario, else the habituation rule with a logged
            warning), a registered name (:func:`policy_names`) or a saved policy directory.
        scenario: the scenario the policy must fit.
        live: a real session (the oracle is refused: it needs the simulated patient).
        settings: overrides of a rule policy's configuration (e.g. ``step_every_s=120``).

    Raises:
        PolicyMismatchError: a saved policy does not fit the scenario (the message says what differs).
        ConfigError: unknown name, missing directory, the oracle in a live session.
    """
    spec = observation_spec(scenario)
    if ref is None:
        shipped = shipped_policy_dir(scenario.id)
        if shipped is not None:
            return load_policy_dir(shipped, scenario, spec)
        log.warning(
            "no policy is shipped for scenario %r (policies/%s/); using the %s rule",
            scenario.id,
            scenario.id,
            DEFAULT_RULE,
        )
        ref = DEFAULT_RULE
    name = os.fspath(ref)
    if name in _REGISTRY:
        factory, description, kind = _REGISTRY[name]
        if kind == "oracle" and live:
            raise ConfigError(
                "the oracle policy needs the true patient model and exists only in simulation; "
                "pick another policy for a live session (e.g. --policy ppo or --policy habituation)"
            )
        try:
            policy = factory(scenario, spec, **settings)
        except TypeError as e:
            raise ConfigError(f"policy {name!r}: bad setting ({e})") from None
        return LoadedPolicy(policy=policy, id=name, sha256=None, description=description, kind=kind)
    if name in _LEARNED_NAMES:
        shipped = shipped_policy_dir(scenario.id)
        if shipped is None:
            raise ConfigError(
                f"no trained policy is shipped for scenario {scenario.id!r} (looked for policies/{scenario.id}/policy.json); "
                f"train one with `exposure-ctrl train --scenario {scenario.id} --out DIR` and pass --policy DIR"
            )
        return load_policy_dir(shipped, scenario, spec)
    path = Path(name)
    if path.is_dir():
        return load_policy_dir(path, scenario, spec)
    if path.exists():
        raise ConfigError(f"{path}: a saved policy is a directory (with policy.json), not a file")
    raise ConfigError(
        f"unknown policy {name!r}" + did_you_mean(name, policy_names())
        + f"; known names: {', '.join(policy_names())}, or a saved policy directory"
    )


def load_policy_dir(directory: Path, scenario: Scenario, spec: ObservationSpec | None = None) -> LoadedPolicy:
    """Load a saved policy directory after checking that it fits ``scenario``."""
    from exposure_ctrl.policy.saved import check_fits, file_sha256, read_policy_json

    spec = spec or observation_spec(scenario)
    directory = Path(directory)
    meta = read_policy_json(directory)
    check_fits(meta, scenario, spec.names, str(directory))
    kind = str(meta.get("kind", ""))
    model_meta = meta.get("model") or {}
    model_path = directory / str(model_meta.get("file", "model.zip"))
    if not model_path.is_file():
        raise ConfigError(f"{directory}: the model file {model_path.name} is missing")
    sha = file_sha256(model_path)
    want_sha = model_meta.get("sha256")
    if want_sha and want_sha != sha:
        raise ConfigError(
            f"{model_path}: the model file does not match its policy.json (sha256 {sha[:12]}…, expected {str(want_sha)[:12]}…); "
            "it was changed or copied incompletely"
        )
    from exposure_ctrl.policy.learned import LearnedPolicy, load_sb3_model

    model = load_sb3_model(kind, model_path)
    pid = str(meta.get("id") or f"{kind}-{scenario.id}")
    guards = meta.get("action_guard") or {}
    guard = guards.get("no_escalation_above_bpm")
    policy = LearnedPolicy(scenario, model, spec, name=pid, escalation_guard_bpm=None if guard is None else float(guard),
                           dwell_guard=bool(guards.get("hold_during_dwell", False)),
                           descend_above_bpm=guards.get("descend_above_bpm"))
    return LoadedPolicy(
        policy=policy,
        id=pid,
        sha256=sha,
        description=str(meta.get("description") or f"{kind} policy for {scenario.id}"),
        kind=kind,
        directory=directory,
        meta=meta,
    )
