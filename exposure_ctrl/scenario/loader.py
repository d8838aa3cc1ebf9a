"""Loading scenario YAML with errors a designer can act on.

Every problem is reported as ``file:line:col: key.path: message``, with expected vs. found and
"did you mean …?" for misspelt keys, parameter names and values. All problems of a file are
collected (structure first; the cross-field rules once the structure is sound).

YAML is read with ruamel.yaml's round-trip loader, which is safe (it builds no Python objects
from tags) and keeps the line and column of every key and item.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import json
import os
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from exposure_ctrl.errors import ScenarioError
from exposure_ctrl.scenario.model import (
    Problem,
    Scenario,
    _dotted,
    consistency_problems,
    did_you_mean,
)

__all__ = [
    "load_scenario",
    "load_scenario_text",
    "resolve_scenario",
    "shipped_scenarios",
    "scenario_dirs",
    "scenario_json_schema",
    "SCHEMA_ID",
]

SCHEMA_ID = "https://exposure-ctrl.invalid/scenario.schema.json"
_SCENARIO_ENV = "EXPOSURE_CTRL_SCENARIO_PATH"

Position = tuple[int, int]  # 0-based line and column


# --- YAML → plain data with positions --------------------------------------------------------


def _plain(node: Any, path: tuple[Any, ...], pos: dict[tuple[Any, ...], Position]) -> Any:
    """Convert ruamel's round-trip nodes into JSON-able data, recording every position."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            k = key if isinstance(key, str) else str(key)
            try:
                line, col = node.lc.key(key)
                pos[path + (k,)] = (line, col)
            except (KeyError, TypeError, AttributeError):
                pass
            out[k] = _plain(node[key], path + (k,), pos)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, item in enumerate(node):
            try:
                pos[path + (i,)] = tuple(node.lc.item(i))  # type: ignore[assignment]
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(item, path + (i,), pos))
        return items
    if isinstance(node, (_dt.date, _dt.datetime)):
        return node.isoformat()
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dict):  # pragma: no cover - the rt loader gives CommentedMap
        return {str(k): _plain(v, path + (str(k),), pos) for k, v in node.items()}
    if isinstance(node, (list, tuple)):  # pragma: no cover
        return [_plain(v, path + (i,), pos) for i, v in enumerate(node)]
    return str(node)


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Map a pydantic ``loc`` onto the document: (path that exists, remaining loc parts).

    Drops the discriminator tags pydantic inserts (``('parameters', 0, 'ordinal', 'values')``)
    and the union-member names (``('start', 'size', 'str')``).
    """
    path: list[Any] = []
    cur = data
    rest = list(loc)
    while rest:
        part = rest[0]
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
            path.append(part)
            rest.pop(0)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
            path.append(part)
            rest.pop(0)
        elif isinstance(cur, dict) and cur.get("kind") == part:
            rest.pop(0)  # discriminator tag
        elif isinstance(part, str) and part in {"str", "float", "int", "bool", "function-after"}:
            rest.pop(0)  # union member or validator wrapper
        else:
            break
    return tuple(path), tuple(rest)


def _position(path: tuple[Any, ...], pos: dict[tuple[Any, ...], Position]) -> Position:
    p = path
    while p:
        if p in pos:
            return pos[p]
        p = p[:-1]
    return (0, 0)


# --- which keys are allowed where (for "did you mean") ---------------------------------------


def _unwrap(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or (origin is not None and str(origin) == "types.UnionType"):
        out = []
        for a in get_args(tp):
            out += _unwrap(a)
        return out
    return [tp]


def _model_at(path: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The pydantic model class that describes the mapping at ``path`` (None if not a model)."""
    candidates: list[Any] = [Scenario]
    cur = data
    for part in path:
        nxt: list[Any] = []
        for tp in candidates:
            for t in _unwrap(tp):
                origin = get_origin(t)
                if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                    field = t.model_fields.get(part)
                    if field is None:
                        field = next(
                            (f for f in t.model_fields.values() if f.alias == part), None
                        )
                    if field is not None:
                        nxt.append(field.annotation)
                elif origin in (tuple, list) and isinstance(part, int):
                    nxt.append(get_args(t)[0])
                elif origin is dict and isinstance(part, str):
                    nxt.append(get_args(t)[1])
        candidates = nxt
        cur = cur[part] if isinstance(cur, (dict, list)) else None
    models = [
        t for tp in candidates for t in _unwrap(tp) if isinstance(t, type) and issubclass(t, BaseModel)
    ]
    if len(models) > 1 and isinstance(cur, dict):  # a discriminated union: pick by `kind`
        chosen = [
            m for m in models if "kind" in m.model_fields
            and cur.get("kind") in get_args(m.model_fields["kind"].annotation)
        ]
        models = chosen or models
    return models[0] if models else None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


# --- formatting ------------------------------------------------------------------------------


def _found(value: Any) -> str:
    if isinstance(value, (dict, list)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        return f"; found {kind}"
    text = json.dumps(value) if value is not None else "nothing (null)"
    if len(text) > 60:
        text = text[:57] + "…"
    return f"; found {text}"


_TYPE_WORDS = {
    "string_type": "a string",
    "float_type": "a number",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "tuple_type": "a list",
    "list_type": "a list",
}


def _message(err: dict[str, Any], data: Any, path: tuple[Any, ...], rest: tuple[Any, ...]) -> str:
    typ = err["type"]
    if typ == "extra_forbidden":
        key = path[-1]
        model = _model_at(path[:-1], data)
        hint = did_you_mean(str(key), _allowed_keys(model)) if model else ""
        return f"unknown key {key!r}{hint}"
    if typ == "missing":
        key = rest[0] if rest else err["loc"][-1]
        return f"missing required key {key!r}"
    if typ in ("union_tag_invalid", "union_tag_not_found"):
        tags = ["ordinal", "categorical", "continuous"]
        found = err.get("input", {}).get("kind") if isinstance(err.get("input"), dict) else None
        if found is None:
            return "a parameter needs `kind`: one of 'ordinal', 'categorical', 'continuous'"
        return f"unknown kind {found!r}" + did_you_mean(str(found), tags)
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if typ in _TYPE_WORDS:
        msg = f"expected {_TYPE_WORDS[typ]}"
    if typ.startswith(("greater", "less", "string_pattern", "string_too", "too_short", "too_long",
                       "literal_error", "float_", "int_", "string_", "bool_", "list_", "tuple_",
                       "dict_", "model_")) or typ in _TYPE_WORDS:
        if not isinstance(err.get("input"), (dict, list)) or typ in _TYPE_WORDS:
            msg += _found(err.get("input"))
    return msg


def _structure_problems(
    exc: ValidationError, data: Any, pos: dict[tuple[Any, ...], Position]
) -> list[tuple[Position, str, str]]:
    grouped: dict[tuple[Any, ...], list[tuple[dict[str, Any], tuple[Any, ...]]]] = {}
    for err in exc.errors(include_url=False):
        path, rest = _data_path(tuple(err["loc"]), data)
        if err["type"] == "missing" and rest:
            grouped.setdefault(path + (("__missing__", rest[0]),), []).append((err, rest))
        else:
            grouped.setdefault(path, []).append((err, rest))
    # A misspelt key is reported once, as unknown with its suggestion, not also as missing.
    suggested: set[tuple[Any, ...]] = set()
    for key, errs in grouped.items():
        for e, _ in errs:
            if e["type"] == "extra_forbidden":
                model = _model_at(key[:-1], data)
                if model is not None:
                    close = difflib.get_close_matches(str(key[-1]), _allowed_keys(model), n=1, cutoff=0.6)
                    suggested.update(key[:-1] + (c,) for c in close)
    out = []
    for key, errs in grouped.items():
        if key and isinstance(key[-1], tuple) and key[:-1] + (key[-1][1],) in suggested:
            continue
        path = tuple(p for p in key if not (isinstance(p, tuple) and p and p[0] == "__missing__"))
        types = {e["type"] for e, _ in errs}
        if len(errs) > 1 and types <= set(_TYPE_WORDS):  # a union: str | float
            words = " or ".join(sorted({_TYPE_WORDS[t] for t in types}))
            message = f"expected {words}" + _found(errs[0][0].get("input"))
        else:
            message = "; ".join(dict.fromkeys(_message(e, data, path, r) for e, r in errs))
        out.append((_position(path, pos), _dotted(path), message))
    return out


def _report(source: str, items: Iterable[tuple[Position, str, str]]) -> ScenarioError:
    lines = [
        f"{source}:{line + 1}:{col + 1}: {where}: {message}"
        for (line, col), where, message in sorted(items, key=lambda x: x[0])
    ]
    n = len(lines)
    head = f"{source}: {n} problem{'s' if n != 1 else ''} in this scenario"
    return ScenarioError(head + "\n" + "\n".join(lines), problems=lines)


# --- public API ------------------------------------------------------------------------------


def load_scenario_text(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate scenario YAML; ``ScenarioError`` lists every problem with its line."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        what = " ".join(x for x in (e.context, e.problem) if x) or str(e)
        raise _report(source, [((line, col), "(YAML syntax)", what.strip())]) from None
    except YAMLError as e:
        raise _report(source, [((0, 0), "(YAML syntax)", str(e).strip())]) from None
    if root is None:
        raise _report(source, [((0, 0), "(top level)", "the file is empty")])
    pos: dict[tuple[Any, ...], Position] = {(): (0, 0)}
    data = _plain(root, (), pos)
    if not isinstance(data, dict):
        raise _report(
            source, [((0, 0), "(top level)", "a scenario is a mapping (key: value) at the top level")]
        )
    try:
        scenario = Scenario.model_validate_json(
            json.dumps(data), strict=True, context={"defer_consistency": True}
        )
    except ValidationError as e:
        raise _report(source, _structure_problems(e, data, pos)) from None
    problems: list[Problem] = consistency_problems(scenario)
    if problems:
        raise _report(
            source,
            [(_position(p.path, pos), _dotted(p.path), p.message) for p in problems],
        )
    return scenario


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file.

    Returns the frozen :class:`Scenario` (with ``.source`` and ``.sha256`` set) or raises
    :class:`~exposure_ctrl.errors.ScenarioError` whose message lists every problem as
    ``file:line:col: key.path: message``.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such scenario file") from None
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read the scenario file ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{p}: the file is not UTF-8 text (byte {e.start})") from None
    scenario = load_scenario_text(text, source=str(p))
    scenario._source = str(p.resolve())
    scenario._sha256 = hashlib.sha256(raw).hexdigest()
    return scenario


def scenario_dirs() -> list[Path]:
    """Where scenario ids are looked up: ``$EXPOSURE_CTRL_SCENARIO_PATH``, then the shipped ones."""
    dirs = [Path(d) for d in os.environ.get(_SCENARIO_ENV, "").split(os.pathsep) if d]
    shipped = Path(__file__).resolve().parents[2] / "scenarios"
    dirs.append(shipped)
    return [d for d in dirs if d.is_dir()]


def shipped_scenarios() -> dict[str, Path]:
    """Scenario id → file, for every ``*.yaml`` in :func:`scenario_dirs` (first one wins)."""
    found: dict[str, Path] = {}
    for d in scenario_dirs():
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def resolve_scenario(ref: str | os.PathLike[str]) -> Scenario:
    """Load a scenario by file path or by id (``spider`` → ``scenarios/spider.yaml``)."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or p.exists() or os.sep in str(ref):
        return load_scenario(p)
    known = shipped_scenarios()
    if str(ref) in known:
        return load_scenario(known[str(ref)])
    raise ScenarioError(
        f"no scenario with id {str(ref)!r}" + did_you_mean(str(ref), sorted(known))
        + f"; give a file path or put {ref}.yaml in ${_SCENARIO_ENV}"
    )


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario format, for editors (shipped as scenarios/scenario.schema.json)."""
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
