"""Moving through a scenario's fear hierarchy one parameter step at a time (batch-first).

A hierarchy step can differ from the next in several parameters, while an action moves one
parameter one level. These helpers turn "go to that state" into the next single action, the way
a therapist changes one thing at a time: de-escalating moves first (they are always safe), then
escalating ones, the smallest intensity increase first.
"""

from __future__ import annotations

import numpy as np

from exposure_ctrl.scenario.model import Scenario

__all__ = ["action_toward", "climb_target", "descend_target", "at_state"]


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


def climb_target(sc: Scenario, positions: np.ndarray) -> np.ndarray:
    """Index of the next hierarchy step above the current state (clipped to the top), per patient."""
    pos = np.atleast_2d(np.asarray(positions, dtype=np.int64))
    idx = sc.hierarchy_index_of_intensity(sc.intensity_of_positions(pos))
    on_step = at_state(pos, sc.hierarchy_positions[np.clip(idx, 0, None)])
    # Off the path (e.g. after a shield step-down) the first target is the step we are at or
    # below, so the patient returns to the hierarchy before climbing further.
    nxt = np.where(on_step | (idx < 0), idx + 1, idx)
    return np.clip(nxt, 0, len(sc.hierarchy) - 1)


def descend_target(sc: Scenario, positions: np.ndarray) -> np.ndarray:
    """Index of the hierarchy step below the current state (0 at the bottom), per patient."""
    pos = np.atleast_2d(np.asarray(positions, dtype=np.int64))
    idx = sc.hierarchy_index_of_intensity(sc.intensity_of_positions(pos))
    on_step = at_state(pos, sc.hierarchy_positions[np.clip(idx, 0, None)])
    prev = np.where(on_step, idx - 1, idx)
    return np.clip(prev, 0, len(sc.hierarchy) - 1)
