"""Wire methods: one module per namespace, registered on one table.

Contract for method authors (docs/protocol-dev.md has the walk-through)::

    from siibrad.methods import MethodContext, method

    @dataclass(frozen=True, slots=True)
    class MapAssignParams:          # the wire params, snake_case, validated before the call
        parcellation: str
        points: np.ndarray
        sigma_mm: float = 0.0

    @method("map/assign", heavy=True)   # heavy: runs on the worker pool, may be cancelled
    def map_assign(ctx: MethodContext, params: MapAssignParams) -> dict[str, Any]:
        ctx.check_cancelled(); ctx.progress("report", percentage=50)
        ...

then add the module name to ``METHOD_MODULES`` (if it is new) and write
``protocol/schema/map.assign.json``. Handlers only orchestrate: domain work lives in
``siibrad/catalog``, ``siibrad/maps``, ``siibrad/features``; model objects are serialised by
:mod:`siibrad.methods.model_codec` only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from siibrad.rpc.registry import MethodTable
from siibrad.rpc.session import RequestScope
from siibrad.settings import Settings

if TYPE_CHECKING:
    from siibrad.catalog import Catalog

METHOD_MODULES = ("daemon", "atlas", "space", "parcellation", "region", "map", "cache")
"""Modules of this package whose import registers methods on :data:`TABLE`."""

TABLE = MethodTable()
"""The daemon's method table."""

method = TABLE.register
"""Decorator: ``@method("ns/verb", heavy=False, before_initialize=False)``."""


class DaemonControl(Protocol):
    """What ``daemon/*`` handlers may ask of the running daemon."""

    @property
    def instance_id(self) -> str: ...

    def status(self) -> dict[str, Any]: ...

    def request_shutdown(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class MethodContext:
    """Everything a handler may use: the catalogue, settings, the daemon and its request."""

    catalog: Catalog
    settings: Settings
    daemon: DaemonControl
    request: RequestScope
    services: dict[str, Any]
    """Long-lived services other layers add (e.g. a map store), by name."""

    def check_cancelled(self) -> None:
        """Raise RequestCancelled if the client cancelled (call between chunks of work)."""
        self.request.check_cancelled()

    def progress(
        self,
        kind: str,
        *,
        title: str | None = None,
        message: str | None = None,
        percentage: int | None = None,
    ) -> None:
        """Report ``$/progress`` begin|report|end (only if the client sent work_done_token)."""
        self.request.progress(kind, title=title, message=message, percentage=percentage)


def load_methods() -> MethodTable:
    """Import every method module (idempotent) and return the table."""
    for name in METHOD_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return TABLE
