"""Moving through a scenario's fear hierarchy one parameter step at a time (batch-first).

A hierarchy step can differ from the next in several parameters, while an action moves one
parameter one level. These helpers turn "go to that state" into the next single action, the way
a therapist changes one thing at a time: de-escalating moves first (they are always safe), then
escalating ones, the smallest intensity increase first.
"""

from __future__ import annotations

import numpy as np

from exposure_ctrl.scenario.model import Scenario

__all__ = ["action_toward", "climb_target", "descend_target", "at_state", "transit_step"]


def at_state(positions: np.ndarray, target: np.ndarray) -> np.ndarray:
    """True where ``positions`` (N, K) equal ``target`` (N, K)."""
    return np.all(np.asarray(positions) == np.asarray(target), axis=-1)


def action_toward(sc: Scenario, positions: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The single action that moves each patient one step toward its target state (0 if there).

    Moves that lower intensity come first (largest drop first); then moves that raise it
    (smallest rise first). Ties go to the lower parameter index.
    """
    pos = np.atleast_2d(np.asarray(positions, dtype=np.int64))
    tgt = np.atleast_2d(np.asarray(target, dtype=np.int64))
    n, k = pos.shape
    diff = tgt - pos  # (N, K)
    direction = np.sign(diff)
    idx = np.arange(k)
    nxt = np.clip(pos + direction, 0, sc.n_levels - 1)
    delta = sc.intensity_table[idx, nxt] - sc.intensity_table[idx, pos]  # intensity change per move
    # Score: descending moves get priority by how much they lower intensity; ascending by how
    # little they raise it. Non-moves get +inf.
    score = np.where(direction < 0, -10.0 + delta, np.where(direction > 0, delta, np.inf))
    best = np.argmin(score, axis=1)
    dir_best = direction[np.arange(n), best]
    action = np.where(dir_best > 0, 1 + 2 * best, np.where(dir_best < 0, 2 + 2 * best, 0))
    return action.astype(np.int64)


def transit_step(sc: Scenario, positions: np.ndarray) -> np.ndarray:
    """Per patient, the highest hierarchy index j such that the state lies between step j and
    step j + 1 (every parameter within the two steps' levels, not exactly on either): a move
    from j to j + 1 is under way. -1 when the state is not between two consecutive steps."""
    pos = np.atleast_2d(np.asarray(positions, dtype=np.int64))
    hp = sc.hierarchy_positions  # (H, K)
    lo = np.minimum(hp[:-1], hp[1:])  # (H-1, K)
    hi = np.maximum(hp[:-1], hp[1:])
    inside = np.all((pos[:, None, :] >= lo[None]) & (pos[:, None, :] <= hi[None]), axis=-1)  # (N, H-1)
    on_any = np.all(pos[:, None, :] == hp[None], axis=-1)  # (N, H)
    inside &= ~on_any[:, :-1] & ~on_any[:, 1:]
    j = np.arange(hp.shape[0] - 1)
    return np.max(np.where(inside, j[None, :], -1), axis=1, initial=-1)


def _on_step(sc: Scenario, pos: np.ndarray) -> np.ndarray:
    """Index of the hierarchy step the state is exactly on (the highest), -1 if none."""
    hp = sc.hierarchy_positions
    on = np.all(pos[:, None, :] == hp[None], axis=-1)
    return np.max(np.where(on, np.arange(hp.shape[0])[None, :], -1), axis=1, initial=-1)


def climb_target(sc: Scenario, positions: np.ndarray) -> np.ndarray:
    """Index of the next hierarchy step above the current state (clipped to the top), per patient.

    On a step: the step after it. Between two consecutive steps (a multi-parameter move under
    way, see :func:`transit_step`): the upper one, so the move is completed rather than undone.
    Elsewhere (e.g. after a shield step-down) the first target is the step we are at or below,
    so the patient returns to the hierarchy before climbing further.
    """
    pos = np.atleast_2d(np.asarray(positions, dtype=np.int64))
    idx = sc.hierarchy_index_of_intensity(sc.intensity_of_positions(pos))
    on = _on_step(sc, pos)
    between = transit_step(sc, pos)
    nxt = np.where(on >= 0, on + 1, np.where(between >= 0, between + 1, np.where(idx < 0, idx + 1, idx)))
    return np.clip(nxt, 0, len(sc.hierarchy) - 1)


def descend_target(sc: Scenario, positions: np.ndarray) -> np.ndarray:
    """Index of the hierarchy step below the current state (0 at the bottom), per patient.

    On a step: the step before it; between two consecutive steps: the lower one; elsewhere the
    step at or below the current intensity."""
    pos = np.atleast_2d(np.asarray(positions, dtype=np.int64))
    idx = sc.hierarchy_index_of_intensity(sc.intensity_of_positions(pos))
    on = _on_step(sc, pos)
    between = transit_step(sc, pos)
    prev = np.where(on >= 0, on - 1, np.where(between >= 0, between, idx))
    return np.clip(prev, 0, len(sc.hierarchy) - 1)
