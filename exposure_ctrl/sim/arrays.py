"""Small helpers for frozen dataclasses of per-patient arrays (first axis = patient).

Parameters and states of the simulator are frozen dataclasses whose fields are numpy arrays with
the patient on the first axis. These helpers select, stack and overwrite rows generically, so a
vector environment can reset some patients while the others keep running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["take_rows", "put_rows", "write_rows", "stack_rows", "n_rows", "copy_rows"]

T = TypeVar("T")


def _array_fields(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj) if isinstance(getattr(obj, f.name), np.ndarray)]


def n_rows(obj: Any) -> int:
    """Number of patients in a dataclass of per-patient arrays."""
    for name in _array_fields(obj):
        return int(getattr(obj, name).shape[0])
    raise ValueError(f"{type(obj).__name__} has no array fields")


def take_rows(obj: T, rows: np.ndarray | Sequence[int] | slice) -> T:
    """A copy holding only ``rows`` (array fields sliced on their first axis; others kept)."""
    changes = {}
    for name in _array_fields(obj):
        a = getattr(obj, name)
        changes[name] = a[rows].copy() if not isinstance(rows, slice) else a[rows].copy()
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def put_rows(obj: T, rows: np.ndarray | Sequence[int], part: T) -> T:
    """A copy of ``obj`` whose ``rows`` are replaced by the rows of ``part`` (same order)."""
    new = copy_rows(obj)
    write_rows(new, rows, part)
    return new


def write_rows(obj: Any, rows: np.ndarray | Sequence[int], part: Any) -> None:
    """Overwrite ``rows`` of every array field of ``obj`` with the rows of ``part`` (same order),
    in place: for arrays their owner may change (a simulator's own state)."""
    rows = np.asarray(rows, dtype=np.int64)
    for name in _array_fields(obj):
        getattr(obj, name)[rows] = getattr(part, name)


def copy_rows(obj: T) -> T:
    """A deep copy of every array field."""
    return dataclasses.replace(obj, **{n: getattr(obj, n).copy() for n in _array_fields(obj)})  # type: ignore[type-var]


def stack_rows(parts: Sequence[T]) -> T:
    """Concatenate dataclasses of per-patient arrays along the patient axis.

    Arrays whose trailing shapes differ (e.g. level tables of different widths) are padded with
    their fill value: NaN for floats, 0 for integers and booleans.
    """
    if not parts:
        raise ValueError("nothing to stack")
    first = parts[0]
    changes = {}
    for name in _array_fields(first):
        arrays = [getattr(p, name) for p in parts]
        if len({a.shape[1:] for a in arrays}) == 1:  # the usual case: nothing to pad
            changes[name] = np.concatenate(arrays, axis=0)
            continue
        tail = tuple(max(a.shape[d] for a in arrays) for d in range(1, arrays[0].ndim))
        fill: Any = np.nan if np.issubdtype(arrays[0].dtype, np.floating) else 0
        out = np.full((sum(a.shape[0] for a in arrays),) + tail, fill, dtype=arrays[0].dtype)
        i = 0
        for a in arrays:
            out[(slice(i, i + a.shape[0]),) + tuple(slice(0, s) for s in a.shape[1:])] = a
            i += a.shape[0]
        changes[name] = out
    return dataclasses.replace(first, **changes)  # type: ignore[type-var]
