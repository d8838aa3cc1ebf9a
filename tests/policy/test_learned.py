"""The learned policy: learnability smoke test, saving and loading, seeds, the shipped policies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from exposure_ctrl.errors import PolicyMismatchError
from exposure_ctrl.policy import load_policy, shipped_policy_dir
from exposure_ctrl.policy.saved import file_sha256
from exposure_ctrl.scenario import resolve_scenario

from .conftest import run_closed_loop

SHIPPED = ["spider", "public_speaking", "heights"]


def _smoke_config(**kw):
    from exposure_ctrl.policy.train import TrainConfig

    base = dict(scenario="dial", cohort="trivial", sensor="ideal", timesteps=4096, seed=0, n_envs=8, n_steps=64,
                batch_size=256, n_epochs=8, learning_rate=1e-3, net_arch=(32, 32), checkpoint_every=None,
                warm_start=None, select_every=None, escalation_guard=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained_dial(tmp_path_factory, dial) -> Path:
    from exposure_ctrl.policy.train import train

    out = tmp_path_factory.mktemp("dial-ppo")
    train(_smoke_config(), out, scenario=dial)
    return out


class RandomLegal:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, n: int = 1) -> None:
        pass

    def act(self, obs, mask):
        a = np.argmax(np.where(mask, self.rng.random(mask.shape), -1.0), axis=1)
        return a, ["random"] * len(a)


def test_ppo_learns_the_trivially_controllable_patient(trained_dial: Path, dial) -> None:
    """A few thousand decisions suffice to hold the trivial patient in the window."""
    lp = load_policy(str(trained_dial), dial)
    learned = run_closed_loop(dial, lp.policy, n=2)
    rand = run_closed_loop(dial, RandomLegal(), n=2)
    assert np.all(learned["in_window"] >= 0.7), learned["in_window"]
    assert learned["in_window"].mean() > rand["in_window"].mean() + 0.2


def test_a_saved_policy_records_what_it_fits(trained_dial: Path, dial) -> None:
    meta = json.loads((trained_dial / "policy.json").read_text())
    assert meta["kind"] == "maskable-ppo" and meta["scenario"]["id"] == "dial"
    assert meta["model"]["sha256"] == file_sha256(trained_dial / "model.zip")
    assert meta["training"]["config"]["seed"] == 0
    assert {"torch", "stable_baselines3", "sb3_contrib", "exposure_ctrl"} <= set(meta["training"]["versions"])
    curve = json.loads((trained_dial / "training.json").read_text())["curve"]
    assert curve and all("time_in_window_pct" in row for row in curve)


def test_loaded_policy_acts_with_reasons(trained_dial: Path, dial) -> None:
    lp = load_policy(str(trained_dial), dial)
    assert lp.sha256 == file_sha256(trained_dial / "model.zip") and lp.kind == "maskable-ppo"
    from .conftest import Scripted

    s = Scripted(dial)
    obs = np.vstack([s.obs((0,), hr_above_bpm=0.0), s.obs((4,), hr_above_bpm=20.0)])
    mask = np.vstack([s.mask((0,)), s.mask((4,))])
    a, reasons = lp.policy.act(obs, mask)
    assert mask[np.arange(2), a].all()
    assert all(r.startswith("learned policy:") for r in reasons)


def test_a_policy_for_the_dial_does_not_fit_the_spider(trained_dial: Path, spider) -> None:
    with pytest.raises(PolicyMismatchError, match="trained for scenario 'dial', this scenario is 'spider'"):
        load_policy(str(trained_dial), spider)


def test_same_seed_same_policy_other_seed_other_policy(tmp_path: Path, dial) -> None:
    from exposure_ctrl.policy.train import train

    def weights(seed: int, where: str) -> list[np.ndarray]:
        train(_smoke_config(timesteps=512, seed=seed), tmp_path / where, scenario=dial)
        from exposure_ctrl.policy.learned import load_sb3_model

        model = load_sb3_model("maskable-ppo", tmp_path / where / "model.zip")
        return [p.detach().numpy().copy() for p in model.policy.parameters()]

    a = weights(5, "a")
    b = weights(5, "b")
    c = weights(6, "c")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


# --- shipped policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("sid", SHIPPED)
def test_shipped_policy_loads_fits_and_acts(sid: str) -> None:
    sc = resolve_scenario(sid)
    d = shipped_policy_dir(sid)
    assert d is not None, f"no policy shipped for {sid}"
    lp = load_policy(None, sc)
    assert lp.directory == d and lp.kind == "maskable-ppo"
    assert lp.sha256 == file_sha256(d / "model.zip")
    assert (d / "model.zip").stat().st_size < 400_000  # a few hundred KB
    card = (d / "CARD.md").read_text()
    for needed in ("exposure-ctrl train", "seed", "cohort", "torch", "time in window"):
        assert needed in card, needed
    run = run_closed_loop(sc, lp.policy, cohort="trivial", sensor="ideal", n=2)
    assert run["steps"].shape[1] == 2 and run["moves"].min() > 0


def test_warm_start_selection_and_guard(tmp_path: Path, dial) -> None:
    """Imitating a rule first, keeping the best validated iterate, the guard in policy.json."""
    from exposure_ctrl.policy.train import train

    cfg = _smoke_config(timesteps=1024, warm_start="band-pi", warm_start_sessions=8, select_every=512, select_start=0,
                        select_patients=2, escalation_guard=True)
    res = train(cfg, tmp_path, scenario=dial)
    meta = json.loads((tmp_path / "policy.json").read_text())
    assert meta["action_guard"]["no_escalation_above_bpm"] == dial.targets.arousal_window_bpm.high
    sel = meta["training"]["selection"]
    assert sel["reference"]["policy"] in {"fixed-schedule", "habituation", "band-pi", "greedy-model", "q-learning"}
    assert sel["candidates"] >= 2
    table = json.loads((tmp_path / "training.json").read_text())["selection"]

    def selector_key(r: dict) -> tuple:  # the selector's key (train.py): constraints met, then time in window
        return (r["constraints_met"], r["time_in_window_pct"])

    assert selector_key(sel["chosen"]) == max(selector_key(r) for r in table)
    assert res.timesteps >= 1024
    lp = load_policy(str(tmp_path), dial)
    assert lp.policy.escalation_guard_bpm == dial.targets.arousal_window_bpm.high
    from .conftest import Scripted

    s = Scripted(dial)
    obs = s.obs((2,), hr_above_bpm=25.0)
    a, _ = lp.policy.act(obs, s.mask((2,)))
    assert not (a[0] > 0 and a[0] % 2 == 1)  # no escalation above the window


def test_guard_mask_dwell_and_descend(spider) -> None:
    """The learned policy's own guards: no escalation above the guard, nothing but a step down
    during the minimum dwell (and only above the window), only steps down above the reflex."""
    from exposure_ctrl.policy.learned import guard_mask

    from .conftest import Scripted

    s = Scripted(spider)
    pos = tuple(int(x) for x in spider.hierarchy_positions[3])
    mask = s.mask(pos)
    up, down = mask[0, 1::2].copy(), mask[0, 2::2].copy()
    assert up.any() and down.any()
    high = float(spider.targets.arousal_window_bpm.high)
    dwell = float(spider.timing.min_dwell_s)

    def g(**values: float) -> np.ndarray:
        kw = {k: values.pop(k) for k in ("above", "dwell", "descend") if k in values}
        return guard_mask(mask, s.obs(pos, **values), s.spec, kw.get("above"), dwell_s=kw.get("dwell"),
                          window_high_bpm=high, descend_above_bpm=kw.get("descend"))[0]

    # no guard: the mask unchanged
    assert np.array_equal(g(hr_above_bpm=30.0), mask[0])
    # escalation guard
    m = g(hr_above_bpm=high + 1, above=high)
    assert not m[1::2].any() and np.array_equal(m[2::2], down) and m[0]
    assert np.array_equal(g(hr_above_bpm=high - 1, above=high), mask[0])
    # dwell guard: waiting in the window → hold only; above the window → steps down allowed
    m = g(hr_above_bpm=12.0, since_scene_change_s=dwell / 2, dwell=dwell)
    assert m[0] and not m[1:].any()
    m = g(hr_above_bpm=high + 2, since_scene_change_s=dwell / 2, dwell=dwell)
    assert not m[1::2].any() and np.array_equal(m[2::2], down)
    # ...but not while the heart rate is not seen
    m = g(hr_above_bpm=high + 2, since_scene_change_s=dwell / 2, stale=1.0, dwell=dwell)
    assert m[0] and not m[1:].any()
    assert np.array_equal(g(hr_above_bpm=12.0, since_scene_change_s=dwell, dwell=dwell), mask[0])
    # descend reflex: above it, steps down only (no hold); below it, unchanged
    m = g(hr_above_bpm=22.0, descend=21.0)
    assert not m[0] and not m[1::2].any() and np.array_equal(m[2::2], down)
    assert np.array_equal(g(hr_above_bpm=20.0, descend=21.0), mask[0])
    # at the bottom (nothing can go down) the reflex holds
    bottom = tuple(0 for _ in spider.parameter_ids)
    mb = s.mask(bottom)
    m = guard_mask(mb, s.obs(bottom, hr_above_bpm=30.0), s.spec, None, descend_above_bpm=21.0)[0]
    assert m[0] and not m[1::2].any()


def test_dagger_warm_start_from_the_oracle(tmp_path: Path, dial, caplog) -> None:
    """The privileged teacher: the student imitates the oracle, then a DAgger round adds the
    oracle's labels of the states the student reached; the guards go to policy.json and back
    into the loaded policy."""
    import logging
    import re

    from exposure_ctrl.policy.train import train

    cfg = _smoke_config(timesteps=512, warm_start="oracle", warm_start_sessions=8, dagger_rounds=1, dagger_sessions=8,
                        exposure_max_s=300.0, dwell_guard=True, descend_above_bpm=25.0, select_every=256,
                        select_start=0, select_patients=2)
    with caplog.at_level(logging.INFO, logger="exposure_ctrl.policy.train"):
        train(cfg, tmp_path, scenario=dial)
    rounds = [re.search(r"warm start round (\d+): imitated oracle on (\d+) decisions", r.getMessage()) for r in caplog.records]
    decisions = {int(m[1]): int(m[2]) for m in rounds if m}
    assert sorted(decisions) == [0, 1]  # the imitation round and one DAgger round ran
    assert decisions[1] > decisions[0]  # the DAgger round's labels were added to the first's
    meta = json.loads((tmp_path / "policy.json").read_text())
    assert meta["action_guard"]["hold_during_dwell"] is True
    assert meta["action_guard"]["descend_above_bpm"] == 25.0
    assert meta["training"]["config"]["dagger_rounds"] == 1
    table = json.loads((tmp_path / "training.json").read_text())["selection"]
    assert table[0]["timesteps"] == 0  # the warm-started policy was a candidate
    lp = load_policy(str(tmp_path), dial)
    assert lp.policy.dwell_guard and lp.policy.descend_above_bpm == 25.0
    run = run_closed_loop(dial, lp.policy, n=2)
    assert run["steps"].shape[1] == 2


def test_parse_overrides_refuses_scenario() -> None:
    """``--set scenario=...`` is refused (the scenario comes from --scenario), other fields parse."""
    from exposure_ctrl.errors import ConfigError
    from exposure_ctrl.policy.train import parse_overrides

    with pytest.raises(ConfigError, match="--scenario"):
        parse_overrides(["scenario=spider"])
    assert parse_overrides(["net_arch=64,64"]) == {"net_arch": (64, 64)}
