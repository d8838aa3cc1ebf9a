"""The on-disk format of a saved policy: a directory with ``policy.json``, the model file and a
card (``CARD.md``), and the check that a saved policy fits a scenario.

``policy.json`` (``format`` 1)::

    {
      "format": 1,
      "id": "ppo-spider",                    # what sessions record
      "kind": "maskable-ppo",                # how to load the model (see learned.py)
      "description": "...",
      "scenario": {"id": "spider", "version": 1, "sha256": "...",
                   "parameters": [{"id": "jar", "levels": ["covered", ...]}, ...],
                   "n_actions": 15},
      "observation": {"names": [...], "scaled": true},
      "model": {"file": "model.zip", "sha256": "..."},
      "training": {...}, "evaluation": {...}
    }

:func:`check_fits` compares the scenario part and the observation names with a scenario and
raises :class:`~exposure_ctrl.errors.PolicyMismatchError` listing every difference. A changed
scenario file whose parameters, levels and actions are unchanged (e.g. new comments or another
window) only logs a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from exposure_ctrl.errors import ConfigError, PolicyMismatchError
from exposure_ctrl.scenario.model import Scenario

__all__ = ["FORMAT", "POLICY_FILE", "scenario_signature", "check_fits", "read_policy_json", "write_policy_json", "file_sha256"]

log = logging.getLogger(__name__)

FORMAT = 1
POLICY_FILE = "policy.json"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scenario_signature(sc: Scenario) -> dict[str, Any]:
    """What a policy depends on in a scenario."""
    return {
        "id": sc.id,
        "version": sc.version,
        "sha256": sc.sha256,
        "parameters": [
            {"id": p.id, "levels": [p.label(i) for i in range(p.n_levels)]} for p in sc.parameters
        ],
        "n_actions": int(sc.n_actions),
    }


def _fmt(xs: list[Any], limit: int = 8) -> str:
    s = ", ".join(map(str, xs[:limit]))
    return f"[{s}{', ...' if len(xs) > limit else ''}]"


def check_fits(meta: dict[str, Any], sc: Scenario, observation_names: tuple[str, ...], where: str) -> None:
    """Raise :class:`PolicyMismatchError` unless the saved policy ``meta`` fits ``sc``."""
    problems: list[str] = []
    want = meta.get("scenario") or {}
    have = scenario_signature(sc)
    if want.get("id") != have["id"]:
        problems.append(f"it was trained for scenario {want.get('id')!r}, this scenario is {have['id']!r}")
    w_par = {p["id"]: p["levels"] for p in want.get("parameters", [])}
    h_par = {p["id"]: p["levels"] for p in have["parameters"]}
    missing = [p for p in w_par if p not in h_par]
    extra = [p for p in h_par if p not in w_par]
    if missing:
        problems.append(f"the scenario lacks the parameters {_fmt(missing)} the policy was trained with")
    if extra:
        problems.append(f"the scenario has parameters {_fmt(extra)} the policy does not know")
    if not missing and not extra and list(w_par) != list(h_par):
        problems.append(f"the parameters are in another order: policy {_fmt(list(w_par))}, scenario {_fmt(list(h_par))}")
    for pid in w_par:
        if pid in h_par and w_par[pid] != h_par[pid]:
            problems.append(f"parameter {pid!r} has levels {_fmt(h_par[pid])}, the policy was trained with {_fmt(w_par[pid])}")
    if want.get("n_actions") != have["n_actions"]:
        problems.append(f"the action space has {have['n_actions']} actions, the policy expects {want.get('n_actions')}")
    w_obs = list((meta.get("observation") or {}).get("names", []))
    h_obs = list(observation_names)
    if w_obs != h_obs:
        miss = [n for n in w_obs if n not in h_obs]
        add = [n for n in h_obs if n not in w_obs]
        if miss or add:
            detail = []
            if miss:
                detail.append(f"missing {_fmt(miss)}")
            if add:
                detail.append(f"new {_fmt(add)}")
            problems.append(f"the observation differs ({'; '.join(detail)}): {len(h_obs)} columns here, {len(w_obs)} in the policy")
        else:
            problems.append("the observation has the same columns in another order")
    if problems:
        raise PolicyMismatchError(
            f"policy {where} does not fit scenario {sc.id!r}: " + "; ".join(problems)
            + ". Train a policy for this scenario (exposure-ctrl train) or pick a rule policy (e.g. --policy habituation)."
        )
    if want.get("sha256") and have["sha256"] and want.get("sha256") != have["sha256"]:
        log.warning(
            "policy %s was trained on another version of scenario %r (file hash differs); "
            "parameters, levels and actions match, so it is used",
            where,
            sc.id,
        )


def read_policy_json(directory: Path) -> dict[str, Any]:
    path = Path(directory) / POLICY_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{directory}: not a saved policy (no {POLICY_FILE})") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the policy description ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"{path}: unknown policy format {meta.get('format') if isinstance(meta, dict) else meta!r} (expected {FORMAT})")
    return meta


def write_policy_json(directory: Path, meta: dict[str, Any]) -> Path:
    path = Path(directory) / POLICY_FILE
    path.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
