"""A picture of a simulated session for ``render_mode="rgb_array"`` (numpy only).

Stable-Baselines3's ``make_vec_env`` makes every environment with ``render_mode="rgb_array"``
(for video recorders), so the environment draws one: a strip chart of the heart rate above
baseline over the last :data:`WIDTH` - :data:`BAR` decision periods, newest on the right, with
the therapeutic window shaded and the ceiling drawn, and on the right a bar of the hierarchy:
the step shown now filled, the highest reached marked.

Layout (rows from the top, :data:`HEIGHT` rows): heart rate above baseline ``y`` bpm is row
``row_of(y)``, linear from ``ceiling + 10`` at row 0 to -10 at the bottom row, clipped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HEIGHT", "WIDTH", "BAR", "row_of", "draw"]

HEIGHT, WIDTH, BAR = 96, 240, 24

WHITE = (255, 255, 255)
WINDOW = (200, 235, 200)
CEILING = (220, 40, 40)
TRACE = (20, 40, 160)
BAR_BG = (225, 225, 225)
BAR_FILL = (90, 110, 200)
BAR_MAX = (0, 0, 0)


def row_of(y: np.ndarray | float, ceiling: float) -> np.ndarray:
    """The image row of ``y`` bpm above baseline (see the module docstring)."""
    top, bottom = ceiling + 10.0, -10.0
    frac = (top - np.asarray(y, dtype=np.float64)) / (top - bottom)
    return np.clip(np.rint(frac * (HEIGHT - 1)), 0, HEIGHT - 1).astype(np.int64)


def draw(history: np.ndarray, window: tuple[float, float], ceiling: float, step: int, max_step: int, n_steps: int) -> np.ndarray:
    """The picture, (HEIGHT, WIDTH, 3) uint8.

    ``history``: heart rate above baseline per period, oldest first (NaN: not known); only the
    last ``WIDTH - BAR`` are drawn. ``step``: the hierarchy index shown now (-1 below the
    first), ``max_step`` the highest reached, ``n_steps`` the hierarchy's length.
    """
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:] = WHITE
    chart = WIDTH - BAR
    lo_row, hi_row = row_of(window[0], ceiling), row_of(window[1], ceiling)
    img[hi_row : lo_row + 1, :chart] = WINDOW
    img[row_of(ceiling, ceiling), :chart] = CEILING
    recent = np.asarray(history, dtype=np.float64)[-chart:]
    cols = np.arange(chart - len(recent), chart)
    known = np.isfinite(recent)
    img[row_of(recent[known], ceiling), cols[known]] = TRACE
    # the hierarchy: one band per step, bottom = first step
    img[:, chart + 4 : WIDTH - 4] = BAR_BG
    if n_steps > 0:
        edges = np.rint(np.linspace(HEIGHT, 0, n_steps + 1)).astype(np.int64)  # edges[i]: bottom of step i
        if step >= 0:
            img[edges[min(step, n_steps - 1) + 1] : HEIGHT, chart + 4 : WIDTH - 4] = BAR_FILL
        if max_step >= 0:
            img[max(edges[min(max_step, n_steps - 1) + 1], 0), chart + 2 : WIDTH - 2] = BAR_MAX
    return img
