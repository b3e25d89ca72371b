"""The method table: wire name -> handler, its params dataclass and how it runs.

Contract: a handler is ``def ns_verb(ctx, params: SomeParams) -> dict`` where ``SomeParams`` is
a frozen dataclass describing the wire params (see :mod:`siibrad.rpc.params`). Register it
with ``@table.register("ns/verb", heavy=..., before_initialize=...)``. ``heavy`` handlers run
on the worker pool (so the socket loop keeps answering short requests) and may be cancelled
cooperatively; the others run inline on the socket thread and must stay well under a
millisecond. Every registered method needs ``protocol/schema/<ns>.<verb>.json`` (a test checks).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from siibrad.rpc.params import compile_params

Handler = Callable[[Any, Any], Any]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """Everything the dispatcher needs to run one wire method."""

    name: str
    handler: Handler
    params_type: type[Any]
    build_params: Callable[[Mapping[str, Any]], Any]
    heavy: bool = False
    inline_if: Callable[[Any, Any], bool] | None = None
    """For a heavy method: ``inline_if(ctx, params)`` true means this call is cheap (e.g. a few
    points on a map already warm) and runs on the socket thread, saving the worker hand-off."""
    before_initialize: bool = False
    builtin: bool = False
    """Protocol-level methods (``initialize``, ``$/cancelRequest``) get the request scope as ctx."""
    summary: str = ""


class MethodTable:
    """A registry of wire methods; the daemon uses one, tests may build their own."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}

    def register(
        self,
        name: str,
        *,
        heavy: bool = False,
        inline_if: Callable[[Any, Any], bool] | None = None,
        before_initialize: bool = False,
        builtin: bool = False,
    ) -> Callable[[H], H]:
        """Decorator registering ``handler`` under the wire ``name``."""

        def decorate(handler: H) -> H:
            if name in self._specs:
                raise ValueError(f"method {name!r} registered twice")
            params_type = _params_type(handler)
            doc = inspect.getdoc(handler) or ""
            self._specs[name] = MethodSpec(
                name=name,
                handler=handler,
                params_type=params_type,
                build_params=compile_params(params_type),
                heavy=heavy,
                inline_if=inline_if,
                before_initialize=before_initialize,
                builtin=builtin,
                summary=doc.splitlines()[0] if doc else "",
            )
            return handler

        return decorate

    def get(self, name: str) -> MethodSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        """Every method name, sorted (what ``initialize`` announces)."""
        return sorted(self._specs)

    def __iter__(self) -> Iterator[MethodSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)


def _params_type(handler: Handler) -> type[Any]:
    hints = typing.get_type_hints(handler)
    names = [p for p in inspect.signature(handler).parameters]
    if len(names) != 2 or names[1] not in hints:
        raise TypeError(f"{handler.__qualname__} must be (ctx, params: ParamsDataclass) -> dict")
    params_type = hints[names[1]]
    if not isinstance(params_type, type):
        raise TypeError(f"{handler.__qualname__}: params annotation must be a dataclass")
    return params_type
