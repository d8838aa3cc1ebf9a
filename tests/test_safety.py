"""The shield: every rule on its own, and properties over arbitrary policy outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_ctrl.safety import (
    NO_COMMAND,
    THERAPIST_SAFE,
    Reason,
    SafetyInputs,
    ShieldConfig,
    ShieldState,
    Verdict,
    is_escalation,
    resume,
    shield_step,
    shield_step_into,
    step_down_action,
)
from exposure_ctrl.scenario import resolve_scenario

SC = resolve_scenario("spider")
CFG = ShieldConfig.from_scenario(SC)
MID = tuple(int(x) for x in SC.hierarchy_positions[5])  # a state with room up and down
UP = SC.action_of("size", "up")
DOWN = SC.action_of("size", "down")


def inputs(**kw) -> SafetyInputs:
    base = dict(
        hr_bpm=85.0,
        hr_above_baseline_bpm=12.0,  # inside the 8-18 window
        blind_s=1.0,
        positions=MID,
        since_change_s=60.0,
        headset_lost_s=0.0,
        panic=False,
    )
    base.update(kw)
    return SafetyInputs.single(**base)


def run(proposed: int, state: ShieldState | None = None, therapist: int = NO_COMMAND, dt: float = 5.0, **kw):
    st_ = state if state is not None else ShieldState.initial(1)
    v, s = shield_step(CFG, SC, st_, inputs(**kw), np.array([proposed]), dt, np.array([therapist]))
    return int(v.action[0]), bool(v.go_safe[0]), Reason(int(v.reason[0])), s


def test_config_comes_from_the_scenario():
    assert CFG.ceiling_bpm == SC.targets.ceiling_bpm
    assert CFG.hard_max_bpm == SC.targets.hard_max_bpm
    assert CFG.min_dwell_s == SC.timing.min_dwell_s
    assert CFG.blind_safe_after_s == SC.safety.blind_safe_after_s


def test_a_sound_proposal_passes_unchanged():
    for a in (0, UP, DOWN):
        assert run(a)[:3] == (a, False, Reason.NONE)


def test_therapist_command_executes_even_against_the_policy_and_dwell():
    act, safe, why, _ = run(DOWN, therapist=UP, since_change_s=0.0)
    assert (act, safe, why) == (UP, False, Reason.THERAPIST)


def test_therapist_escalation_refused_over_the_ceiling_and_over_the_hard_maximum():
    assert run(0, therapist=UP, hr_above_baseline_bpm=30.0)[2] is Reason.THERAPIST_REFUSED_OVER_CEILING
    assert run(0, therapist=UP, hr_bpm=170.0)[2] is Reason.THERAPIST_REFUSED_OVER_CEILING
    # A de-escalation by the therapist over the ceiling is fine.
    assert run(0, therapist=DOWN, hr_above_baseline_bpm=30.0)[:3] == (DOWN, False, Reason.THERAPIST)


def test_therapist_safe_goes_safe_and_latches_until_resume():
    act, safe, why, s = run(UP, therapist=THERAPIST_SAFE)
    assert (act, safe, why) == (0, True, Reason.THERAPIST)
    assert s.latched[0]
    assert run(UP, state=s)[2] is Reason.LATCHED_SAFE
    assert run(UP, state=resume(s))[:3] == (UP, False, Reason.NONE)


@pytest.mark.parametrize(
    "kw, reason",
    [
        (dict(panic=True), Reason.PANIC_SAFE),
        (dict(removed=True), Reason.REMOVED_SAFE),
        (dict(hr_bpm=160.0), Reason.HARD_MAX_SAFE),
        (dict(blind_s=20.0), Reason.BLIND_SAFE),
        (dict(blind_s=float("inf")), Reason.BLIND_SAFE),
        (dict(headset_lost_s=20.0), Reason.HEADSET_LOST_SAFE),
    ],
)
def test_safe_state_rules_latch(kw, reason):
    act, safe, why, s = run(UP, **kw)
    assert (act, safe, why) == (0, True, reason)
    assert s.latched[0] and s.latch_reason[0] == reason
    # Once the cause is gone the shield still holds until the therapist resumes.
    assert run(UP, state=s)[:3] == (0, False, Reason.LATCHED_SAFE)
    assert run(UP, state=resume(s))[2] is Reason.NONE


def test_headset_lost_holds_every_change_before_the_safe_timeout():
    for a in (UP, DOWN):
        assert run(a, headset_lost_s=2.0)[:3] == (0, False, Reason.HEADSET_LOST_HOLD)


def test_sustained_overshoot_steps_down_and_transient_overshoot_only_blocks_escalation():
    # First decision above the ceiling: 5 s accumulate → with ceiling_sustained_s = 5 it steps down.
    assert CFG.ceiling_sustained_s == 5
    act, safe, why, s = run(UP, hr_above_baseline_bpm=30.0, dt=2.0)
    assert (act, why) == (0, Reason.OVER_CEILING_NO_ESCALATION)
    assert s.above_ceiling_s[0] == pytest.approx(2.0)
    act, safe, why, s = run(UP, state=s, hr_above_baseline_bpm=30.0, dt=3.0)
    assert why is Reason.CEILING_STEP_DOWN and not safe
    assert act > 0 and act % 2 == 0  # a down action
    assert s.above_ceiling_s[0] == 0.0
    # Dropping below the ceiling resets the timer.
    _, _, _, s = run(0, hr_above_baseline_bpm=30.0, dt=4.0)
    _, _, _, s = run(0, state=s, hr_above_baseline_bpm=20.0, dt=4.0)
    assert s.above_ceiling_s[0] == 0.0


def test_step_down_keeps_a_legal_down_proposal_else_removes_the_strongest_element():
    pos = np.array([MID])
    assert step_down_action(SC, pos, np.array([DOWN]))[0] == DOWN
    chosen = int(step_down_action(SC, pos, np.array([UP]))[0])
    k = (chosen - 2) // 2
    contrib = SC.intensity_table[np.arange(SC.n_parameters), pos[0]]
    assert contrib[k] == pytest.approx(contrib.max())
    # Nothing can go down from the all-lowest state.
    lowest = np.zeros((1, SC.n_parameters), dtype=np.int64)
    assert step_down_action(SC, lowest)[0] == 0


def test_blind_blocks_escalation_but_allows_stepping_down():
    assert run(UP, blind_s=6.0)[:3] == (0, False, Reason.BLIND_NO_ESCALATION)
    assert run(DOWN, blind_s=6.0)[:3] == (DOWN, False, Reason.NONE)


def test_impossible_moves_hold():
    top = tuple(int(x) for x in SC.hierarchy_positions[-1])
    jar_up = SC.action_of("jar", "up")  # jar is already 'free' at the top step
    assert run(jar_up, positions=top)[:3] == (0, False, Reason.ILLEGAL_ACTION)
    assert run(SC.n_actions + 3)[2] is Reason.ILLEGAL_ACTION
    assert run(-5)[2] is Reason.ILLEGAL_ACTION


def test_min_dwell_blocks_changes_but_not_a_step_down_above_the_window():
    assert run(UP, since_change_s=10.0)[:3] == (0, False, Reason.MIN_DWELL)
    assert run(DOWN, since_change_s=10.0)[:3] == (0, False, Reason.MIN_DWELL)
    assert run(DOWN, since_change_s=10.0, hr_above_baseline_bpm=20.0)[:3] == (DOWN, False, Reason.NONE)
    assert run(0, since_change_s=0.0)[:3] == (0, False, Reason.NONE)


def test_reason_texts_and_codes_are_complete():
    for r in Reason:
        assert r.text and r.code == r.name.lower()
    assert not Reason.NONE.intervened and not Reason.THERAPIST.intervened
    assert Reason.MIN_DWELL.intervened


# --- properties over arbitrary policy outputs, batched ------------------------------------------

N = 16
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def batch(draw):
    k = SC.n_parameters
    top = SC.n_levels
    pos = np.array(
        [[draw(st.integers(0, int(top[j]) - 1)) for j in range(k)] for _ in range(N)], dtype=np.int64
    )
    arr = lambda s: np.array([draw(s) for _ in range(N)], dtype=float)  # noqa: E731
    inp = SafetyInputs(
        hr_bpm=arr(st.floats(30, 230) | floats),
        hr_above_baseline_bpm=arr(st.floats(-20, 80) | floats),
        blind_s=arr(st.floats(0, 60) | floats),
        headset_lost_s=arr(st.sampled_from([0.0, 0.0, 1.0, 25.0, float("nan")])),
        panic=np.array([draw(st.booleans()) for _ in range(N)]),
        removed=np.array([draw(st.booleans()) for _ in range(N)]),
        since_change_s=arr(st.floats(0, 200)),
        positions=pos,
    )
    proposed = np.array([draw(st.integers(-3, SC.n_actions + 3)) for _ in range(N)])
    state = ShieldState(
        above_ceiling_s=arr(st.floats(0, 30)),
        latched=np.array([draw(st.booleans()) for _ in range(N)]),
        latch_reason=np.zeros(N, dtype=np.int64),
    )
    return inp, proposed, state


@settings(max_examples=300, deadline=None)
@given(batch())
def test_no_policy_output_escalates_over_the_ceiling_blind_lost_or_latched(b):
    inp, proposed, state = b
    v, _ = shield_step(CFG, SC, state, inp, proposed, 5.0)
    esc = is_escalation(v.action)
    with np.errstate(invalid="ignore"):
        over = inp.hr_above_baseline_bpm > CFG.ceiling_bpm
        over_hard = inp.hr_bpm >= CFG.hard_max_bpm
    blind = ~(inp.blind_s < CFG.stale_after_s)
    assert not np.any(
        esc & (over | over_hard | blind | (inp.headset_lost_s > 0) | state.latched | inp.panic | inp.removed)
    )
    # Every executed action is legal where it is, and a safe verdict carries no move.
    mask = SC.action_mask(inp.positions)
    assert np.all(mask[np.arange(N), v.action])
    assert np.all(v.action[v.go_safe] == 0)
    # Panic always goes safe (no therapist command here).
    assert np.all(v.go_safe[inp.panic & ~state.latched])


@settings(max_examples=100, deadline=None)
@given(batch())
def test_batch_equals_single_runs(b):
    inp, proposed, state = b
    v, s = shield_step(CFG, SC, state, inp, proposed, 5.0)
    for i in range(N):
        one = SafetyInputs(
            *(
                None if getattr(inp, f.name) is None else np.asarray(getattr(inp, f.name))[i : i + 1]
                for f in dataclasses.fields(inp)
            )
        )
        st1 = ShieldState(state.above_ceiling_s[i : i + 1], state.latched[i : i + 1], state.latch_reason[i : i + 1])
        v1, s1 = shield_step(CFG, SC, st1, one, proposed[i : i + 1], 5.0)
        assert (v1.action[0], v1.go_safe[0], v1.reason[0]) == (v.action[i], v.go_safe[i], v.reason[i])
        assert s1.latched[0] == s.latched[i]


# --- the compiled kernel against the plain vectorised form it replaced -----------------------------
# The reference below is the shield as first written with masked numpy operations over the batch
# (rule order by successive masks). It is kept here, in the tests only, as an independent oracle.

def _ref_is_escalation(action: np.ndarray) -> np.ndarray:
    """True for *up* actions (more fear): odd action indices."""
    a = np.asarray(action)
    return (a > 0) & (a % 2 == 1)


def _ref_step_down_action(sc: object, positions: np.ndarray, preferred: np.ndarray | None = None) -> np.ndarray:
    """The de-escalating action the shield takes, per patient (0 when nothing can go down).

    The policy's own proposal is kept when it is a legal step down; otherwise the parameter whose
    current level contributes most intensity (weighted prior) steps down, as a therapist would
    remove the strongest element first.
    """
    pos = np.asarray(positions, dtype=np.int64)
    n, k = pos.shape
    mask = sc.action_mask(pos)  # (N, 1+2K)
    down_ok = mask[:, 2::2]  # (N, K)
    contrib = sc.intensity_table[np.arange(k), pos]  # (N, K) weighted contributions
    # Prefer the level that drops intensity the most (largest contribution); ties → lower index.
    score = np.where(down_ok, contrib, -np.inf)
    best = np.argmax(score, axis=1)
    action = np.where(np.isfinite(score.max(axis=1)), 2 + 2 * best, 0)
    if preferred is not None:
        pref = np.asarray(preferred, dtype=np.int64)
        pref_ok = (pref > 0) & (pref < sc.n_actions) & (pref % 2 == 0)
        pref_ok &= mask[np.arange(n), np.clip(pref, 0, sc.n_actions - 1)]
        action = np.where(pref_ok, pref, action)
    return action.astype(np.int64)


def reference_shield_step(
    cfg: ShieldConfig,
    sc: object,
    state: ShieldState,
    inputs: SafetyInputs,
    proposed: np.ndarray,
    dt: float,
    therapist: np.ndarray | None = None,
) -> tuple[Verdict, ShieldState]:
    """Apply the rules in the module docstring; return the verdict and the new state.

    ``dt`` is the time since the previous call (one decision period). ``therapist`` holds per
    patient :data:`NO_COMMAND`, :data:`THERAPIST_SAFE` or an action index.
    """
    proposed = np.asarray(proposed, dtype=np.int64).reshape(-1)
    n = proposed.shape[0]
    pos = np.asarray(inputs.positions, dtype=np.int64).reshape(n, -1)
    cmd = (
        np.full(n, NO_COMMAND, dtype=np.int64)
        if therapist is None
        else np.asarray(therapist, dtype=np.int64).reshape(-1)
    )
    hr = np.asarray(inputs.hr_bpm, dtype=float)
    above = np.asarray(inputs.hr_above_baseline_bpm, dtype=float)
    blind_s = np.asarray(inputs.blind_s, dtype=float)
    lost_s = np.asarray(inputs.headset_lost_s, dtype=float)
    panic = np.asarray(inputs.panic, dtype=bool)
    since = np.asarray(inputs.since_change_s, dtype=float)
    removed = (
        np.zeros(n, dtype=bool) if inputs.removed is None else np.asarray(inputs.removed, dtype=bool)
    )

    blind = ~(blind_s < cfg.stale_after_s)  # NaN/inf → blind
    lost = ~(lost_s <= 0)
    over_ceiling = ~blind & (above > cfg.ceiling_bpm)  # NaN compares False
    over_hard = hr >= cfg.hard_max_bpm
    above_ceiling_s = np.where(over_ceiling, state.above_ceiling_s + dt, 0.0)
    sustained = over_ceiling & (above_ceiling_s >= cfg.ceiling_sustained_s)

    mask = sc.action_mask(pos)
    legal = (proposed >= 0) & (proposed < sc.n_actions)
    legal &= mask[np.arange(n), np.clip(proposed, 0, sc.n_actions - 1)]

    action = np.zeros(n, dtype=np.int64)
    go_safe = np.zeros(n, dtype=bool)
    reason = np.full(n, int(Reason.NONE), dtype=np.int64)
    decided = np.zeros(n, dtype=bool)
    latched = state.latched.copy()
    latch_reason = state.latch_reason.copy()

    def decide(where: np.ndarray, r: Reason, act: np.ndarray | int = 0, safe: bool = False) -> None:
        nonlocal decided
        w = where & ~decided
        action[w] = np.broadcast_to(act, (n,))[w]
        go_safe[w] = safe
        reason[w] = int(r)
        decided |= w

    # 1-2: therapist first.
    has_cmd = cmd != NO_COMMAND
    cmd_safe = cmd == THERAPIST_SAFE
    cmd_action = np.where(has_cmd & ~cmd_safe, cmd, 0)
    cmd_legal = (cmd_action >= 0) & (cmd_action < sc.n_actions)
    cmd_legal &= mask[np.arange(n), np.clip(cmd_action, 0, sc.n_actions - 1)]
    cmd_refused = has_cmd & ~cmd_safe & _ref_is_escalation(cmd_action) & (over_ceiling | over_hard)
    decide(has_cmd & cmd_safe, Reason.THERAPIST, 0, safe=True)
    decide(cmd_refused, Reason.THERAPIST_REFUSED_OVER_CEILING)
    decide(has_cmd & ~cmd_safe & ~cmd_legal, Reason.ILLEGAL_ACTION)
    decide(has_cmd & ~cmd_safe, Reason.THERAPIST, cmd_action)

    # 3-6: go safe and latch.
    for cond, r in (
        (panic, Reason.PANIC_SAFE),
        (removed, Reason.REMOVED_SAFE),
        (over_hard, Reason.HARD_MAX_SAFE),
        (~(blind_s < cfg.blind_safe_after_s), Reason.BLIND_SAFE),
        (~(lost_s < cfg.blind_safe_after_s), Reason.HEADSET_LOST_SAFE),
    ):
        newly = cond & ~decided
        decide(newly, r, 0, safe=True)
        latch_reason = np.where(newly & ~latched, int(r), latch_reason)
        latched |= newly

    # 7: latched → hold in the safe state.
    decide(latched, Reason.LATCHED_SAFE)
    # 8: headset lost → no scene changes.
    decide(lost, Reason.HEADSET_LOST_HOLD)
    # 9: sustained over the ceiling → step down.
    decide(sustained, Reason.CEILING_STEP_DOWN, _ref_step_down_action(sc, pos, proposed))
    esc = _ref_is_escalation(proposed)
    # 10-11: no escalation blind or over the ceiling.
    decide(blind & esc, Reason.BLIND_NO_ESCALATION)
    decide(over_ceiling & esc, Reason.OVER_CEILING_NO_ESCALATION)
    # 12: impossible proposals.
    decide(~legal, Reason.ILLEGAL_ACTION)
    # 13: minimum dwell (a step down above the window is exempt).
    down_exempt = (proposed > 0) & ~esc & ~blind & (above > cfg.window_high_bpm)
    decide((proposed > 0) & (since < cfg.min_dwell_s) & ~down_exempt, Reason.MIN_DWELL)
    # Otherwise: the proposal.
    decide(np.ones(n, dtype=bool), Reason.NONE, proposed)

    # A therapist's safe command latches too: the policy waits for a resume.
    latch_reason = np.where(has_cmd & cmd_safe & ~latched, int(Reason.THERAPIST), latch_reason)
    latched |= has_cmd & cmd_safe

    verdict = Verdict(action=action, go_safe=go_safe, reason=reason)
    new_state = ShieldState(
        above_ceiling_s=np.where(go_safe | (reason == int(Reason.CEILING_STEP_DOWN)), 0.0, above_ceiling_s),
        latched=latched,
        latch_reason=latch_reason,
    )
    return verdict, new_state


@st.composite
def batch_with_commands(draw):
    inp, proposed, state = draw(batch())
    therapist = np.array(
        [draw(st.sampled_from([NO_COMMAND, NO_COMMAND, THERAPIST_SAFE]) | st.integers(-3, SC.n_actions + 3)) for _ in range(N)],
        dtype=np.int64,
    )
    state = dataclasses.replace(state, latch_reason=np.where(state.latched, int(Reason.PANIC_SAFE), 0))
    return inp, proposed, state, therapist, draw(st.sampled_from([0.0, 1.0, 5.0, 30.0]))


@settings(max_examples=400, deadline=None)
@given(batch_with_commands())
def test_kernel_equals_the_vectorised_reference(b):
    inp, proposed, state, therapist, dt = b
    v, s = shield_step(CFG, SC, state, inp, proposed, dt, therapist)
    with np.errstate(invalid="ignore"):
        rv, rs = reference_shield_step(CFG, SC, state, inp, proposed, dt, therapist)
    np.testing.assert_array_equal(v.reason, rv.reason)
    np.testing.assert_array_equal(v.action, rv.action)
    np.testing.assert_array_equal(v.go_safe, rv.go_safe)
    np.testing.assert_array_equal(s.above_ceiling_s, rs.above_ceiling_s)
    np.testing.assert_array_equal(s.latched, rs.latched)
    np.testing.assert_array_equal(s.latch_reason, rs.latch_reason)


@settings(max_examples=100, deadline=None)
@given(batch_with_commands())
def test_in_place_form_equals_shield_step_and_shield_step_keeps_the_old_state(b):
    inp, proposed, state, therapist, dt = b
    before = dataclasses.replace(state, **{f.name: getattr(state, f.name).copy() for f in dataclasses.fields(state)})
    v, s = shield_step(CFG, SC, state, inp, proposed, dt, therapist)
    for f in dataclasses.fields(state):  # shield_step returns a new state, the old one is kept
        np.testing.assert_array_equal(getattr(state, f.name), getattr(before, f.name))
    f8 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    live = ShieldState(f8(state.above_ceiling_s), state.latched.copy(), state.latch_reason.astype(np.int64))
    out = Verdict(np.full(N, 99, dtype=np.int64), np.zeros(N, dtype=bool), np.full(N, 99, dtype=np.int64))
    shield_step_into(
        CFG, SC, live, f8(inp.hr_bpm), f8(inp.hr_above_baseline_bpm), f8(inp.blind_s), f8(inp.headset_lost_s),
        inp.panic.astype(bool), f8(inp.since_change_s), inp.removed.astype(bool), inp.positions.astype(np.int64),
        proposed.astype(np.int64), therapist, dt, out.action, out.go_safe, out.reason,
    )  # fmt: skip
    np.testing.assert_array_equal(out.action, v.action)
    np.testing.assert_array_equal(out.go_safe, v.go_safe)
    np.testing.assert_array_equal(out.reason, v.reason)
    for f in dataclasses.fields(s):
        np.testing.assert_array_equal(getattr(live, f.name), getattr(s, f.name))


def test_unknown_blind_or_headset_times_fail_safe():
    """NaN means unknown: treated as blind / lost for too long (never as seen / connected)."""
    assert run(UP, blind_s=float("nan"))[:3] == (0, True, Reason.BLIND_SAFE)
    assert run(UP, headset_lost_s=float("nan"))[:3] == (0, True, Reason.HEADSET_LOST_SAFE)


def test_positions_of_the_wrong_shape_are_refused():
    bad = SafetyInputs.single(hr_bpm=85.0, hr_above_baseline_bpm=12.0, blind_s=1.0, positions=MID, since_change_s=60.0)
    with pytest.raises(ValueError, match="positions must have shape"):
        shield_step(CFG, SC, ShieldState.initial(3), bad, np.array([1, 0, 0]), 5.0)
