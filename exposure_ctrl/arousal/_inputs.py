"""Cheap normalisation of the arrays the compiled kernels take (this runs on every call: at
N = 1 it is most of a call's cost). Inputs stay as they are when they already have the dtype
and number of dimensions; the kernels broadcast a single value (a length-1 axis) themselves."""

from __future__ import annotations

from typing import Any

import numpy as np

F8, I8, INT8, BOOL = (np.dtype(x) for x in (np.float64, np.int64, np.int8, bool))
ALL = np.ones(1, dtype=bool)  # "every patient": a mask of one True the kernels broadcast


def as_vector(x: Any, dtype: np.dtype, n: int, name: str) -> np.ndarray:
    """A scalar or (N,) input as a 1-D array of 1 or N values."""
    if x.__class__ is np.ndarray and x.dtype is dtype and x.ndim == 1:
        a = x
    else:
        a = np.asarray(x, dtype=dtype)
        if a.ndim != 1:
            a = a.reshape(-1)
    if a.shape[0] != n and a.shape[0] != 1:
        raise ValueError(f"{name} must be a scalar or have shape ({n},), found {np.shape(x)}")
    return a


def as_slots(x: Any, dtype: np.dtype, s_: int, n: int, name: str) -> np.ndarray:
    """An input of S sample slots as a 2-D array (S, N) or (S, 1) (one value for everyone)."""
    if x.__class__ is np.ndarray and x.dtype is dtype and x.ndim == 2:
        a = x
    else:
        a = np.asarray(x, dtype=dtype)
        if a.ndim != 2:
            a = a.reshape(s_, -1)
    sh = a.shape
    if sh[0] != s_ or (sh[1] != n and sh[1] != 1):
        raise ValueError(f"{name} must have shape ({s_}, {n}) or ({s_}, 1), found {sh}")
    return a
