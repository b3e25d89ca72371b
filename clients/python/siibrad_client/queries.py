"""Typed helpers in siibra's words over the wire methods (``get_region``, ``find_regions``...).

Each helper is one request whose params and result are documented in protocol/schema/; answers
become the frozen models of :mod:`siibrad_client.models`. Argument order follows siibra-python
(``siibra.get_region(parcellation, region)``, ``siibra.get_map(parcellation, space, maptype)``)
so notebooks port by changing ``siibra.`` into ``client.``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .models import Atlas, Map, Parcellation, Region, Space


def _items(result: Any, key: str) -> list[Mapping[str, Any]]:
    # List methods answer {"<kind>s": [...]} (room for paging fields beside the list).
    if isinstance(result, Mapping):
        result = result.get(key, [])
    return list(result)


def _drop_none(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class AtlasQueries:
    """The typed helpers; :class:`~siibrad_client.Client` provides ``call``."""

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        raise NotImplementedError

    # --- daemon ---------------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        """``daemon/ping``: answers at once (works before ``initialize``)."""
        return dict(self.call("daemon/ping"))

    def status(self) -> dict[str, Any]:
        """``daemon/status``: versions, uptime, configuration, memory, clients, requests."""
        return dict(self.call("daemon/status"))

    def shutdown(self) -> dict[str, Any]:
        """``daemon/shutdown``: stop the daemon for every client (it replies, then exits)."""
        return dict(self.call("daemon/shutdown"))

    # --- atlases, spaces, parcellations ----------------------------------------------------

    def atlases(self) -> list[Atlas]:
        """Every atlas of the configuration."""
        return [Atlas.from_wire(a) for a in _items(self.call("atlas/list"), "atlases")]

    def get_atlas(self, spec: str) -> Atlas:
        """The atlas matching ``spec`` (name, key, id or words, as in siibra)."""
        return Atlas.from_wire(self.call("atlas/get", {"atlas": spec}))

    def spaces(self) -> list[Space]:
        """Every reference space."""
        return [Space.from_wire(s) for s in _items(self.call("space/list"), "spaces")]

    def get_space(self, spec: str) -> Space:
        """The space matching ``spec`` (e.g. ``"mni152"``, ``"bigbrain"``)."""
        return Space.from_wire(self.call("space/get", {"space": spec}))

    def parcellations(self) -> list[Parcellation]:
        """Every parcellation, newest versions included."""
        return [
            Parcellation.from_wire(p)
            for p in _items(self.call("parcellation/list"), "parcellations")
        ]

    def get_parcellation(self, spec: str) -> Parcellation:
        """The parcellation matching ``spec`` (e.g. ``"julich 3.1"``, ``"difumo 64"``)."""
        return Parcellation.from_wire(self.call("parcellation/get", {"parcellation": spec}))

    # --- regions --------------------------------------------------------------------------

    def get_region(self, parcellation: str, region: str) -> Region:
        """The one region of ``parcellation`` matching ``region`` (siibra's get_region).

        Raises RegionNotFoundError (``.suggestions``) or AmbiguousRegionError (``.candidates``).
        """
        return Region.from_wire(
            self.call("region/resolve", {"parcellation": parcellation, "region": region})
        )

    def find_regions(self, region: str, parcellation: str | None = None) -> list[Region]:
        """Every region matching ``region``, across all parcellations unless one is given."""
        result = self.call("region/find", _drop_none(region=region, parcellation=parcellation))
        return [Region.from_wire(r) for r in _items(result, "regions")]

    def get_region_by_id(self, region_id: str) -> Region:
        """The region with this exact id."""
        return Region.from_wire(self.call("region/get", {"id": region_id}))

    def region_tree(
        self, parcellation: str, region: str | None = None, *, depth: int | None = None
    ) -> dict[str, Any]:
        """The subtree under ``region`` (the whole parcellation without it), ``depth`` levels."""
        params = _drop_none(parcellation=parcellation, region=region, depth=depth)
        return dict(self.call("region/tree", params))

    def complete_region(
        self, prefix: str, parcellation: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Ranked completions of a partly typed region name (what editors show)."""
        params = _drop_none(prefix=prefix, parcellation=parcellation, limit=limit)
        return _items(self.call("region/complete", params), "completions")  # type: ignore[return-value]

    # --- maps -----------------------------------------------------------------------------

    def maps(self, parcellation: str | None = None, space: str | None = None) -> list[Map]:
        """Map metadata, optionally only of one parcellation and/or space."""
        result = self.call("map/list", _drop_none(parcellation=parcellation, space=space))
        return [Map.from_wire(m) for m in _items(result, "maps")]

    def get_map(
        self, parcellation: str, space: str, maptype: str = "labelled", spec: str = ""
    ) -> Map:
        """Metadata of the map of ``parcellation`` in ``space`` (siibra's get_map)."""
        params = _drop_none(
            parcellation=parcellation, space=space, maptype=maptype, spec=spec or None
        )
        return Map.from_wire(self.call("map/get", params))
