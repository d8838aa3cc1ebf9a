"""The safety shield: pure, vectorised rules that filter every action, live and in training.

The shield sits between the policy and the scene (DESIGN.md invariant 1: therapist first, then
shield, then policy). It sees a few safety signals, the policy's proposed action and an optional
therapist command, and returns what is executed with a reason code that is recorded.

Rules, in order (the first that applies decides):

===  ===================================  ===================================================
 #   condition                            verdict (``Reason``)
===  ===================================  ===================================================
 1   therapist command, not an            executes (``THERAPIST``); a therapist "safe"
     escalation over the ceiling          command goes safe (``THERAPIST``)
 2   therapist escalation while over      hold (``THERAPIST_REFUSED_OVER_CEILING``)
     the ceiling or the hard maximum
 3   panic event; headset taken off       safe state, latched (``PANIC_SAFE``;
                                          ``REMOVED_SAFE``)
 4   heart rate ≥ hard maximum            safe state, latched (``HARD_MAX_SAFE``)
 5   blind ≥ ``blind_safe_after_s``       safe state, latched (``BLIND_SAFE``)
 6   headset lost ≥ ``blind_safe_after_s`` safe state, latched (``HEADSET_LOST_SAFE``)
 7   latched                              hold in the safe state (``LATCHED_SAFE``) until
                                          :func:`resume` (the therapist's resume)
 8   headset lost (any time)              hold: no scene changes (``HEADSET_LOST_HOLD``)
 9   above the ceiling for                step one parameter down (``CEILING_STEP_DOWN``)
     ``ceiling_sustained_s``
10   blind (≥ ``stale_after_s``) and      hold (``BLIND_NO_ESCALATION``)
     the proposal escalates
11   above the ceiling (not yet           hold (``OVER_CEILING_NO_ESCALATION``)
     sustained) and the proposal
     escalates
12   the proposal is impossible           hold (``ILLEGAL_ACTION``)
     (masked)
13   within ``min_dwell_s`` of the last   hold (``MIN_DWELL``); a step *down* while above
     change                               the window is exempt
 –   otherwise                            the proposal (``NONE``)
===  ===================================  ===================================================

Every action is one step of one parameter by construction of the action space
(``Discrete(1 + 2K)``), so "one step per decision" holds for every verdict.

"Escalate" means any *up* action (odd action index): levels are ordered by rising fear, for
soothing parameters too.

Everything is batch-first: arrays over N patients, the live controller uses N = 1.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from exposure_ctrl.scenario.model import Scenario

__all__ = [
    "Reason",
    "ShieldConfig",
    "ShieldState",
    "SafetyInputs",
    "Verdict",
    "NO_COMMAND",
    "THERAPIST_SAFE",
    "shield_step",
    "resume",
    "is_escalation",
    "step_down_action",
]

NO_COMMAND = -1
"""``therapist[i] == NO_COMMAND``: the therapist gave no command for patient i."""

THERAPIST_SAFE = -2
"""``therapist[i] == THERAPIST_SAFE``: the therapist asked for the safe scene."""


class Reason(enum.IntEnum):
    """Why the shield decided as it did. Recorded with every decision."""

    NONE = 0
    THERAPIST = 1
    THERAPIST_REFUSED_OVER_CEILING = 2
    PANIC_SAFE = 3
    HARD_MAX_SAFE = 4
    BLIND_SAFE = 5
    HEADSET_LOST_SAFE = 6
    LATCHED_SAFE = 7
    HEADSET_LOST_HOLD = 8
    CEILING_STEP_DOWN = 9
    BLIND_NO_ESCALATION = 10
    OVER_CEILING_NO_ESCALATION = 11
    ILLEGAL_ACTION = 12
    MIN_DWELL = 13
    REMOVED_SAFE = 14

    @property
    def code(self) -> str:
        """Stable text code for records, e.g. ``ceiling_step_down``."""
        return self.name.lower()

    @property
    def text(self) -> str:
        """What a therapist reads."""
        return _REASON_TEXT[self]

    @property
    def intervened(self) -> bool:
        """True when the shield changed or blocked what was asked."""
        return self not in (Reason.NONE, Reason.THERAPIST)


_REASON_TEXT = {
    Reason.NONE: "proposal passed",
    Reason.THERAPIST: "therapist command executed",
    Reason.THERAPIST_REFUSED_OVER_CEILING: "escalation refused: heart rate is over the ceiling",
    Reason.PANIC_SAFE: "patient pressed stop: safe scene",
    Reason.HARD_MAX_SAFE: "heart rate at the hard maximum: safe scene",
    Reason.BLIND_SAFE: "no usable heart rate for too long: safe scene",
    Reason.HEADSET_LOST_SAFE: "headset lost for too long: safe scene",
    Reason.LATCHED_SAFE: "holding the safe scene until the therapist resumes",
    Reason.HEADSET_LOST_HOLD: "headset lost: no scene changes",
    Reason.CEILING_STEP_DOWN: "over the ceiling for too long: stepping down",
    Reason.BLIND_NO_ESCALATION: "heart rate not seen: no escalation",
    Reason.OVER_CEILING_NO_ESCALATION: "over the ceiling: no escalation",
    Reason.ILLEGAL_ACTION: "impossible move: holding",
    Reason.MIN_DWELL: "too soon after the last change: holding",
    Reason.REMOVED_SAFE: "the patient took the headset off: safe scene",
}


@dataclasses.dataclass(frozen=True)
class ShieldConfig:
    """The shield's thresholds; normally taken from the scenario."""

    window_high_bpm: float  # above baseline
    ceiling_bpm: float  # above baseline
    ceiling_sustained_s: float
    hard_max_bpm: float  # absolute
    stale_after_s: float
    blind_safe_after_s: float
    min_dwell_s: float

    @classmethod
    def from_scenario(cls, sc: Scenario) -> "ShieldConfig":
        t = sc.targets
        return cls(
            window_high_bpm=t.arousal_window_bpm.high,
            ceiling_bpm=t.ceiling_bpm,
            ceiling_sustained_s=t.ceiling_sustained_s,
            hard_max_bpm=t.hard_max_bpm,
            stale_after_s=sc.safety.stale_after_s,
            blind_safe_after_s=sc.safety.blind_safe_after_s,
            min_dwell_s=sc.timing.min_dwell_s,
        )


@dataclasses.dataclass(frozen=True)
class SafetyInputs:
    """What the shield sees, arrays over N patients.

    Attributes:
        hr_bpm: latest heart rate (absolute, bpm; NaN when none yet).
        hr_above_baseline_bpm: smoothed heart rate above the resting baseline (NaN when unknown).
        blind_s: seconds since the last clean heart-rate sample (``inf`` if none ever).
        headset_lost_s: seconds since the headset was lost; 0 while connected.
        panic: the patient pressed stop since the last decision.
        since_change_s: seconds since the last scene change.
        positions: level index of every parameter, shape (N, K).
        removed: the patient took the headset off (None: never).
    """

    hr_bpm: np.ndarray
    hr_above_baseline_bpm: np.ndarray
    blind_s: np.ndarray
    headset_lost_s: np.ndarray
    panic: np.ndarray
    since_change_s: np.ndarray
    positions: np.ndarray
    removed: np.ndarray | None = None

    @classmethod
    def single(
        cls,
        *,
        hr_bpm: float,
        hr_above_baseline_bpm: float,
        blind_s: float,
        positions: tuple[int, ...] | list[int] | np.ndarray,
        since_change_s: float,
        headset_lost_s: float = 0.0,
        panic: bool = False,
        removed: bool = False,
    ) -> "SafetyInputs":
        """Inputs for one patient (the live controller)."""
        return cls(
            hr_bpm=np.array([hr_bpm], dtype=float),
            hr_above_baseline_bpm=np.array([hr_above_baseline_bpm], dtype=float),
            blind_s=np.array([blind_s], dtype=float),
            headset_lost_s=np.array([headset_lost_s], dtype=float),
            panic=np.array([panic], dtype=bool),
            since_change_s=np.array([since_change_s], dtype=float),
            positions=np.asarray(positions, dtype=np.int64).reshape(1, -1),
            removed=np.array([removed], dtype=bool),
        )


@dataclasses.dataclass(frozen=True)
class ShieldState:
    """What the shield remembers between decisions, arrays over N patients."""

    above_ceiling_s: np.ndarray  # continuous time above the ceiling
    latched: np.ndarray  # in the safe state until the therapist resumes
    latch_reason: np.ndarray  # Reason code of the latch (0 when not latched)

    @classmethod
    def initial(cls, n: int) -> "ShieldState":
        return cls(
            above_ceiling_s=np.zeros(n),
            latched=np.zeros(n, dtype=bool),
            latch_reason=np.zeros(n, dtype=np.int64),
        )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What is executed, arrays over N patients.

    ``go_safe[i]`` means: show the scenario's ``safe_state`` now (``action[i]`` is then 0).
    Otherwise ``action[i]`` is executed (0 = hold).
    """

    action: np.ndarray
    go_safe: np.ndarray
    reason: np.ndarray

    def reasons(self) -> list[Reason]:
        return [Reason(int(r)) for r in self.reason]


def is_escalation(action: np.ndarray) -> np.ndarray:
    """True for *up* actions (more fear): odd action indices."""
    a = np.asarray(action)
    return (a > 0) & (a % 2 == 1)


def step_down_action(sc: Scenario, positions: np.ndarray, preferred: np.ndarray | None = None) -> np.ndarray:
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


def shield_step(
    cfg: ShieldConfig,
    sc: Scenario,
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
    lost = lost_s > 0
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
    cmd_refused = has_cmd & ~cmd_safe & is_escalation(cmd_action) & (over_ceiling | over_hard)
    decide(has_cmd & cmd_safe, Reason.THERAPIST, 0, safe=True)
    decide(cmd_refused, Reason.THERAPIST_REFUSED_OVER_CEILING)
    decide(has_cmd & ~cmd_safe & ~cmd_legal, Reason.ILLEGAL_ACTION)
    decide(has_cmd & ~cmd_safe, Reason.THERAPIST, cmd_action)

    # 3-6: go safe and latch.
    for cond, r in (
        (panic, Reason.PANIC_SAFE),
        (removed, Reason.REMOVED_SAFE),
        (over_hard, Reason.HARD_MAX_SAFE),
        (blind_s >= cfg.blind_safe_after_s, Reason.BLIND_SAFE),
        (lost_s >= cfg.blind_safe_after_s, Reason.HEADSET_LOST_SAFE),
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
    decide(sustained, Reason.CEILING_STEP_DOWN, step_down_action(sc, pos, proposed))
    esc = is_escalation(proposed)
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


def resume(state: ShieldState, which: np.ndarray | None = None) -> ShieldState:
    """The therapist resumes: clear the latch (for all patients, or where ``which`` is True)."""
    clear = np.ones_like(state.latched) if which is None else np.asarray(which, dtype=bool)
    return ShieldState(
        above_ceiling_s=state.above_ceiling_s.copy(),
        latched=state.latched & ~clear,
        latch_reason=np.where(clear, 0, state.latch_reason),
    )
