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

A time that is unknown (NaN) counts as too long: blind or lost, never seen or connected.

Every action is one step of one parameter by construction of the action space
(``Discrete(1 + 2K)``), so "one step per decision" holds for every verdict.

"Escalate" means any *up* action (odd action index): levels are ordered by rising fear, for
soothing parameters too.

Everything is batch-first: arrays over N patients, the live controller uses N = 1.
"""

from __future__ import annotations

import dataclasses
import enum
import functools

import numba
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
    "shield_step_into",
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

# Reason codes as plain ints for the compiled kernel (numba sees module globals as constants).
NONE_, THERAPIST_, REFUSED_ = int(Reason.NONE), int(Reason.THERAPIST), int(Reason.THERAPIST_REFUSED_OVER_CEILING)
PANIC_, REMOVED_, HARD_MAX_ = int(Reason.PANIC_SAFE), int(Reason.REMOVED_SAFE), int(Reason.HARD_MAX_SAFE)
BLIND_SAFE_, LOST_SAFE_, LATCHED_ = int(Reason.BLIND_SAFE), int(Reason.HEADSET_LOST_SAFE), int(Reason.LATCHED_SAFE)
LOST_HOLD_, STEP_DOWN_, BLIND_NO_ESC_ = int(Reason.HEADSET_LOST_HOLD), int(Reason.CEILING_STEP_DOWN), int(Reason.BLIND_NO_ESCALATION)
OVER_NO_ESC_, ILLEGAL_, DWELL_ = int(Reason.OVER_CEILING_NO_ESCALATION), int(Reason.ILLEGAL_ACTION), int(Reason.MIN_DWELL)


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

    @functools.cached_property
    def limits(self) -> np.ndarray:
        """The thresholds as one float array, in the order the compiled kernel reads them."""
        return np.array(
            [
                self.window_high_bpm,
                self.ceiling_bpm,
                self.ceiling_sustained_s,
                self.hard_max_bpm,
                self.stale_after_s,
                self.blind_safe_after_s,
                self.min_dwell_s,
            ],
            dtype=np.float64,
        )

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
    remove the strongest element first (ties: the first parameter).
    """
    pos = np.ascontiguousarray(positions, dtype=np.int64)
    n = pos.shape[0]
    pref = (
        np.zeros(n, dtype=np.int64)
        if preferred is None
        else np.ascontiguousarray(np.broadcast_to(np.asarray(preferred, dtype=np.int64), (n,)))
    )
    return _step_down_batch(sc.n_levels, sc.intensity_table, pos, pref)


@numba.njit(cache=True, nogil=True)
def _legal(n_levels: np.ndarray, pos: np.ndarray, a: int) -> bool:
    """Is action ``a`` possible at positions ``pos`` (one patient)? Hold always is."""
    if a == 0:
        return True
    if a < 0 or a >= 1 + 2 * n_levels.shape[0]:
        return False
    if a % 2 == 1:
        return pos[(a - 1) // 2] < n_levels[(a - 1) // 2] - 1
    return pos[(a - 2) // 2] > 0


@numba.njit(cache=True, nogil=True)
def _escalates(a: int) -> bool:
    return a > 0 and a % 2 == 1


@numba.njit(cache=True, nogil=True)
def _step_down_one(n_levels: np.ndarray, table: np.ndarray, pos: np.ndarray, preferred: int) -> int:
    if preferred > 0 and preferred % 2 == 0 and _legal(n_levels, pos, preferred):
        return preferred
    best, best_contrib = -1, -np.inf
    for j in range(pos.shape[0]):
        if pos[j] > 0 and (best < 0 or table[j, pos[j]] > best_contrib):
            best, best_contrib = j, table[j, pos[j]]
    return 0 if best < 0 else 2 + 2 * best


@numba.njit(cache=True, nogil=True)
def _step_down_batch(n_levels: np.ndarray, table: np.ndarray, pos: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    out = np.zeros(pos.shape[0], dtype=np.int64)
    for i in range(pos.shape[0]):
        out[i] = _step_down_one(n_levels, table, pos[i], preferred[i])
    return out


@numba.njit(cache=True, nogil=True)
def _shield_kernel(
    limits: np.ndarray,  # window_high, ceiling, ceiling_sustained_s, hard_max, stale_after_s, blind_safe_after_s, min_dwell_s
    n_levels: np.ndarray,
    table: np.ndarray,
    above_ceiling_s: np.ndarray,
    latched: np.ndarray,
    latch_reason: np.ndarray,
    hr: np.ndarray,
    above: np.ndarray,
    blind_s: np.ndarray,
    lost_s: np.ndarray,
    panic: np.ndarray,
    since: np.ndarray,
    removed: np.ndarray,
    pos: np.ndarray,
    proposed: np.ndarray,
    cmd: np.ndarray,
    dt: float,
    out_action: np.ndarray,
    out_go_safe: np.ndarray,
    out_reason: np.ndarray,
) -> None:
    """The rules of the module docstring for each patient, in order; the first that applies
    decides. The shield state (``above_ceiling_s``, ``latched``, ``latch_reason``) is updated in
    place: patient i's is read before it is written."""
    window_high, ceiling, sustained_s, hard_max = limits[0], limits[1], limits[2], limits[3]
    stale_after, blind_safe_after, min_dwell = limits[4], limits[5], limits[6]
    for i in range(proposed.shape[0]):
        p = proposed[i]
        c = cmd[i]
        blind = not (blind_s[i] < stale_after)  # NaN or inf: blind
        lost = not (lost_s[i] <= 0)  # NaN (unknown): lost
        over_ceiling = (not blind) and above[i] > ceiling  # NaN compares False
        over_hard = hr[i] >= hard_max
        acs = above_ceiling_s[i] + dt if over_ceiling else 0.0
        is_latched = latched[i]
        lr = latch_reason[i]
        action, safe, reason = 0, False, -1
        # 1-2: therapist first.
        if c == THERAPIST_SAFE:
            safe, reason = True, THERAPIST_
        elif c != NO_COMMAND:
            if _escalates(c) and (over_ceiling or over_hard):
                reason = REFUSED_
            elif not _legal(n_levels, pos[i], c):
                reason = ILLEGAL_
            else:
                action, reason = c, THERAPIST_
        # 3-6: go safe and latch.
        if reason < 0:
            if panic[i]:
                reason = PANIC_
            elif removed[i]:
                reason = REMOVED_
            elif over_hard:
                reason = HARD_MAX_
            elif not (blind_s[i] < blind_safe_after):  # NaN (unknown): too long
                reason = BLIND_SAFE_
            elif not (lost_s[i] < blind_safe_after):  # NaN (unknown): too long
                reason = LOST_SAFE_
            if reason >= 0:
                safe = True
                if not is_latched:
                    is_latched, lr = True, reason
        if reason < 0:
            esc = _escalates(p)
            if is_latched:  # 7
                reason = LATCHED_
            elif lost:  # 8
                reason = LOST_HOLD_
            elif over_ceiling and acs >= sustained_s:  # 9
                action, reason = _step_down_one(n_levels, table, pos[i], p), STEP_DOWN_
            elif blind and esc:  # 10
                reason = BLIND_NO_ESC_
            elif over_ceiling and esc:  # 11
                reason = OVER_NO_ESC_
            elif not _legal(n_levels, pos[i], p):  # 12
                reason = ILLEGAL_
            elif p > 0 and since[i] < min_dwell and not ((not esc) and (not blind) and above[i] > window_high):
                reason = DWELL_  # 13 (a step down above the window is exempt)
            else:
                action, reason = p, NONE_
        # A therapist's safe command latches too: the policy waits for a resume.
        if c == THERAPIST_SAFE and not is_latched:
            is_latched, lr = True, THERAPIST_
        out_action[i] = action
        out_go_safe[i] = safe
        out_reason[i] = reason
        above_ceiling_s[i] = 0.0 if (safe or reason == STEP_DOWN_) else acs
        latched[i] = is_latched
        latch_reason[i] = lr


def _as(x: object, n: int, dtype: type) -> np.ndarray:
    """``x`` as a contiguous, writable array of shape (n,) and this dtype (no copy when it already
    is one; a read-only array would make numba compile the kernel once more)."""
    if isinstance(x, np.ndarray) and x.dtype == dtype and x.shape == (n,) and x.flags.c_contiguous:
        return x
    out = np.empty(n, dtype=dtype)
    out[...] = np.asarray(x, dtype=dtype)
    return out


def _floats(x: object, n: int) -> np.ndarray:
    return _as(x, n, np.float64)


def _bools(x: object, n: int) -> np.ndarray:
    return _as(x, n, np.bool_)


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
    patient :data:`NO_COMMAND`, :data:`THERAPIST_SAFE` or an action index. One compiled kernel
    serves one patient (live) and a batch (the simulator); ``state`` is left as it is (see
    :func:`shield_step_into` for the in-place form without conversions).
    """
    proposed = np.ascontiguousarray(proposed, dtype=np.int64).reshape(-1)
    n = proposed.shape[0]
    pos = inputs.positions
    if not (isinstance(pos, np.ndarray) and pos.dtype == np.int64 and pos.ndim == 2 and pos.flags.c_contiguous):
        pos = np.ascontiguousarray(pos, dtype=np.int64).reshape(n, -1)
    cmd = np.full(n, NO_COMMAND, dtype=np.int64) if therapist is None else _as(therapist, n, np.int64)
    removed = np.zeros(n, dtype=bool) if inputs.removed is None else _bools(inputs.removed, n)
    new_state = ShieldState(
        above_ceiling_s=np.array(_floats(state.above_ceiling_s, n)),
        latched=np.array(_bools(state.latched, n)),
        latch_reason=np.array(_as(state.latch_reason, n, np.int64)),
    )
    verdict = Verdict(action=np.empty(n, dtype=np.int64), go_safe=np.empty(n, dtype=bool), reason=np.empty(n, dtype=np.int64))
    shield_step_into(
        cfg,
        sc,
        new_state,
        _floats(inputs.hr_bpm, n),
        _floats(inputs.hr_above_baseline_bpm, n),
        _floats(inputs.blind_s, n),
        _floats(inputs.headset_lost_s, n),
        _bools(inputs.panic, n),
        _floats(inputs.since_change_s, n),
        removed,
        pos,
        proposed,
        cmd,
        dt,
        verdict.action,
        verdict.go_safe,
        verdict.reason,
    )
    return verdict, new_state


def shield_step_into(
    cfg: ShieldConfig,
    sc: Scenario,
    state: ShieldState,
    hr_bpm: np.ndarray,
    hr_above_baseline_bpm: np.ndarray,
    blind_s: np.ndarray,
    headset_lost_s: np.ndarray,
    panic: np.ndarray,
    since_change_s: np.ndarray,
    removed: np.ndarray,
    positions: np.ndarray,
    proposed: np.ndarray,
    therapist: np.ndarray,
    dt: float,
    action: np.ndarray,
    go_safe: np.ndarray,
    reason: np.ndarray,
) -> None:
    """:func:`shield_step` without conversions or allocations, for callers that keep their
    arrays in the right form (the simulator's sessions): the same rules, the same kernel.

    The inputs are the fields of :class:`SafetyInputs` (``removed`` and ``therapist`` not
    optional) and the proposals, each a C-contiguous array of shape (N,) (``positions`` (N, K))
    of the dtype :func:`shield_step` converts to: float64, bool for ``panic`` and ``removed``,
    int64 for ``positions``, ``proposed`` and ``therapist``. ``state`` is updated in place (its
    arrays: float64, bool, int64); the verdict (the fields of :class:`Verdict`) is written into
    ``action`` (int64), ``go_safe`` (bool) and ``reason`` (int64), each (N,). Nothing is
    checked but the shape of ``positions`` (the kernel does not check bounds): wrong dtypes make
    numba compile another version of the kernel or fail.
    """
    if positions.shape != (proposed.shape[0], sc.n_levels.shape[0]):
        raise ValueError(f"positions must have shape ({proposed.shape[0]}, {sc.n_levels.shape[0]}), found {positions.shape}")
    _shield_kernel(
        cfg.limits,
        sc.n_levels,
        sc.intensity_table,
        state.above_ceiling_s,
        state.latched,
        state.latch_reason,
        hr_bpm,
        hr_above_baseline_bpm,
        blind_s,
        headset_lost_s,
        panic,
        since_change_s,
        removed,
        positions,
        proposed,
        therapist,
        float(dt),
        action,
        go_safe,
        reason,
    )


def resume(state: ShieldState, which: np.ndarray | None = None) -> ShieldState:
    """The therapist resumes: clear the latch (for all patients, or where ``which`` is True)."""
    clear = np.ones_like(state.latched) if which is None else np.asarray(which, dtype=bool)
    return ShieldState(
        above_ceiling_s=state.above_ceiling_s.copy(),
        latched=state.latched & ~clear,
        latch_reason=np.where(clear, 0, state.latch_reason),
    )
