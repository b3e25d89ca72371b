"""Typed helpers in siibra's words over the wire methods (``get_region``, ``find_regions``...).

Each helper is one request whose params and result are documented in protocol/schema/; answers
become the frozen models of :mod:`siibrad_client.models`. Argument order follows siibra-python
(``siibra.get_region(parcellation, region)``, ``siibra.get_map(parcellation, space, maptype)``)
so notebooks port by changing ``siibra.`` into ``client.``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class AtlasQueries(ABC):
    """The typed helpers; :class:`~siibrad_client.Client` provides ``call``."""

    @abstractmethod
    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result (the transport lives in the client)."""

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

    def atlases(self, species: str | None = None) -> list[Atlas]:
        """Every atlas of the configuration (optionally of one species, e.g. "human")."""
        result = self.call("atlas/list", _drop_none(species=species))
        return [Atlas.from_wire(a) for a in _items(result, "atlases")]

    def get_atlas(self, spec: str) -> Atlas:
        """The atlas matching ``spec`` (name, key, id or words, as in siibra)."""
        return Atlas.from_wire(self.call("atlas/get", {"atlas": spec}))

    def spaces(self, atlas: str | None = None) -> list[Space]:
        """Every reference space (optionally only those of one atlas)."""
        result = self.call("space/list", _drop_none(atlas=atlas))
        return [Space.from_wire(s) for s in _items(result, "spaces")]

    def get_space(self, spec: str) -> Space:
        """The space matching ``spec`` (e.g. ``"mni152"``, ``"bigbrain"``)."""
        return Space.from_wire(self.call("space/get", {"space": spec}))

    def parcellations(
        self, atlas: str | None = None, space: str | None = None, *, include_deprecated: bool = True
    ) -> list[Parcellation]:
        """Every parcellation (optionally of one atlas, or mapped in one space)."""
        params = _drop_none(
            atlas=atlas, space=space, include_deprecated=None if include_deprecated else False
        )
        result = self.call("parcellation/list", params)
        return [Parcellation.from_wire(p) for p in _items(result, "parcellations")]

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

    def find_regions(
        self, region: str, parcellation: str | None = None, *, limit: int | None = None
    ) -> list[Region]:
        """Every region matching ``region``, across all parcellations unless one is given
        (siibra's ``find_regions``); at most ``limit`` (the daemon's default: 1000)."""
        params = _drop_none(region=region, parcellation=parcellation, limit=limit)
        return [Region.from_wire(r) for r in _items(self.call("region/find", params), "regions")]

    def get_region_by_id(self, region_id: str) -> Region:
        """The region with this exact siibra id (``<PARCELLATION_KEY>_<REGION_KEY>``)."""
        return Region.from_wire(self.call("region/get", {"id": region_id}))

    def region_tree(
        self, parcellation: str, region: str | None = None, *, depth: int | None = None
    ) -> dict[str, Any]:
        """The subtree under ``region`` (the parcellation's root without it), ``depth`` levels
        deep (all without it): nested ``{"id", "name", "child_count", "children"}``."""
        params = _drop_none(parcellation=parcellation, region=region, depth=depth)
        return dict(self.call("region/tree", params)["root"])

    def complete_region(
        self, text: str, parcellation: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Ranked completions of a partly typed region name, as editors show them: each
        ``{"label", "id", "parcellation", "depth", "is_leaf", "match"}``."""
        params = _drop_none(text=text, parcellation=parcellation, limit=limit)
        return [dict(item) for item in _items(self.call("region/complete", params), "items")]

    # --- maps -----------------------------------------------------------------------------

    def maps(
        self,
        parcellation: str | None = None,
        space: str | None = None,
        maptype: str | None = None,
    ) -> list[Map]:
        """Map metadata, optionally only of one parcellation, space and/or map type."""
        params = _drop_none(parcellation=parcellation, space=space, maptype=maptype)
        result = self.call("map/list", params)
        return [Map.from_wire(m) for m in _items(result, "maps")]

    def get_map(
        self,
        parcellation: str,
        space: str,
        maptype: str = "labelled",
        spec: str = "",
        *,
        include_regions: bool = False,
    ) -> Map:
        """Metadata of the map of ``parcellation`` in ``space`` (siibra's get_map); with
        ``include_regions`` its region → (volume, label, fragment) index too."""
        params = _drop_none(
            parcellation=parcellation,
            space=space,
            maptype=maptype,
            spec=spec or None,
            include_regions=include_regions or None,
        )
        return Map.from_wire(self.call("map/get", params))
