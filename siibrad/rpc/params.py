"""Fast params validation compiled once from a frozen params dataclass.

Contract: :func:`compile_params` reads the dataclass' fields and type hints and returns a
function ``dict -> instance`` that raises one :class:`~siibrad.errors.InvalidParams` listing
every bad field as ``{"field", "problem"}`` (unknown, missing, wrong type). JSON Schema
validation is for tests; this runs on the hot path, so each check is a closure, not a walk.

Supported annotations: ``str``, ``int``, ``float`` (ints accepted), ``bool``, ``Any``,
``dict[str, Any]``, ``list[T]`` of those, ``Literal[...]`` of strings, ``np.ndarray`` (an array,
or nested lists converted with ``numpy.asarray``) and ``T | None``. A field with a default is
optional; an explicit ``null`` is accepted only when the annotation allows ``None``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import numpy as np

from siibrad.errors import InvalidParams

T = TypeVar("T")
Check = Callable[[Any], tuple[bool, Any]]
"""A field check: ``(ok, converted value)``; on failure the value is the problem text."""

_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}


def _scalar_check(tp: type) -> Check:
    word = _TYPE_WORDS[tp]
    if tp is float:

        def check_float(v: Any) -> tuple[bool, Any]:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return True, float(v)
            return False, f"must be {word}"

        return check_float
    if tp is int:

        def check_int(v: Any) -> tuple[bool, Any]:
            if isinstance(v, int) and not isinstance(v, bool):
                return True, v
            return False, f"must be {word}"

        return check_int

    def check_exact(v: Any) -> tuple[bool, Any]:
        return (True, v) if isinstance(v, tp) else (False, f"must be {word}")

    return check_exact


def _array_check(v: Any) -> tuple[bool, Any]:
    if isinstance(v, np.ndarray):
        return True, v
    if isinstance(v, list):
        try:
            array = np.asarray(v)
        except ValueError:
            return False, "must be a rectangular array"
        if array.dtype.kind in "biuf":
            return True, array
    return False, "must be an ndarray (descriptor) or nested lists of numbers"


def _check_for(tp: Any) -> Check:
    origin = typing.get_origin(tp)
    if tp is Any:
        return lambda v: (True, v)
    if tp in _TYPE_WORDS:
        return _scalar_check(tp)
    if tp is np.ndarray or origin is np.ndarray:
        return _array_check
    if origin in (types.UnionType, typing.Union):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _check_for(members[0]) if len(members) == 1 else _check_for(Any)
        allows_none = len(members) < len(typing.get_args(tp))

        def check_optional(v: Any) -> tuple[bool, Any]:
            if v is None and allows_none:
                return True, None
            return inner(v)

        return check_optional
    if origin is Literal:
        choices = typing.get_args(tp)
        shown = ", ".join(repr(c) for c in choices)

        def check_literal(v: Any) -> tuple[bool, Any]:
            if isinstance(v, str) and v in choices:
                return True, v
            return False, f"must be one of {shown}"

        return check_literal
    if origin is list or origin is tuple:
        args = typing.get_args(tp)
        item = _check_for(args[0]) if args else _check_for(Any)
        as_tuple = origin is tuple

        def check_list(v: Any) -> tuple[bool, Any]:
            if not isinstance(v, list):
                return False, "must be an array"
            out = []
            for i, x in enumerate(v):
                ok, got = item(x)
                if not ok:
                    return False, f"item {i} {got}"
                out.append(got)
            return True, tuple(out) if as_tuple else out

        return check_list
    if origin is dict or tp is dict:

        def check_dict(v: Any) -> tuple[bool, Any]:
            return (True, v) if isinstance(v, dict) else (False, "must be an object")

        return check_dict
    raise TypeError(f"unsupported params annotation {tp!r}")


def compile_params(cls: type[T]) -> Callable[[Mapping[str, Any]], T]:
    """A validator building ``cls`` from wire params (``cls`` must be a dataclass)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    checks: dict[str, Check] = {f.name: _check_for(hints[f.name]) for f in fields}
    required = frozenset(
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    known = frozenset(checks)

    def build(params: Mapping[str, Any]) -> T:
        values: dict[str, Any] = {}
        problems: list[dict[str, str]] = []
        for name, raw in params.items():
            check = checks.get(name)
            if check is None:
                problems.append({"field": str(name), "problem": "unknown field"})
                continue
            ok, got = check(raw)
            if ok:
                values[name] = got
            else:
                problems.append({"field": name, "problem": got})
        if not required.issubset(params):
            problems.extend(
                {"field": name, "problem": "missing"} for name in sorted(required - params.keys())
            )
        if problems:
            summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
            allowed = ", ".join(sorted(known)) or "none"
            raise InvalidParams(
                f"invalid params ({summary}); accepted fields: {allowed}", fields=problems
            )
        return cls(**values)

    return build


def params_fields(cls: type[Any]) -> dict[str, bool]:
    """Field name -> required, for documentation and schema cross-checks."""
    return {
        f.name: f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(cls)
        if f.init
    }
