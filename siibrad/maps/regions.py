"""The regions of a map: index names resolved once to catalogue regions, as flat arrays.

Contract: :func:`build_region_table` resolves every region name of a map's ``indices`` through
the map's parcellation (siibra's ``Map.get_region``: ``parcellation.get_region(name)``) once,
and returns a :class:`RegionTable` whose numpy object arrays let assignment gather names, ids
and keys for millions of rows without a Python loop. A name the catalogue cannot resolve keeps
its configured name, with ``id``/``key`` ``None``, and is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import structlog

from siibrad.catalog.model import Map, MapIndex, Parcellation, Region
from siibrad.errors import SiibradError

log = structlog.get_logger(__name__)


class RegionResolver(Protocol):
    """What the maps layer needs from the catalogue (``siibrad.catalog.Catalog`` has it)."""

    def parcellation(self, spec: str) -> Parcellation: ...

    def region(self, parcellation_spec: str, region_spec: str) -> Region: ...


@dataclass(frozen=True, slots=True)
class RegionTable:
    """Regions of one map, row ``i`` = the ``i``-th distinct name of ``map.indices``.

    ``names``/``ids``/``keys`` carry one extra trailing ``None`` so that row ``-1`` (a voxel
    label no region claims) gathers ``None`` in the same vectorised step.
    """

    configured_names: tuple[str, ...]
    names: np.ndarray[Any, np.dtype[np.object_]]
    ids: np.ndarray[Any, np.dtype[np.object_]]
    keys: np.ndarray[Any, np.dtype[np.object_]]
    entries: tuple[tuple[int, MapIndex], ...]
    """(region row, MapIndex) for every index of the map, in configuration order."""

    def __len__(self) -> int:
        return len(self.configured_names)

    def row_of(self, name: str) -> int | None:
        """The row of a configured or resolved region name, else ``None``."""
        resolved_names = self.names[: len(self.configured_names)]
        for i, (configured, resolved) in enumerate(
            zip(self.configured_names, resolved_names, strict=True)
        ):
            if name in (configured, resolved):
                return i
        return None


def build_region_table(map_: Map, resolver: RegionResolver | None) -> RegionTable:
    """Resolve each region name of ``map_`` in its parcellation (once per map)."""
    configured: list[str] = []
    names: list[str] = []
    ids: list[str | None] = []
    keys: list[str | None] = []
    entries: list[tuple[int, MapIndex]] = []
    unresolved: list[str] = []
    exact = _exact_names(map_, resolver)
    for name, indices in map_.indices:
        row = len(configured)
        configured.append(name)
        region = exact.get(name)
        if region is None and resolver is not None:
            try:
                region = resolver.region(map_.parcellation_id, name)
            except SiibradError:
                region = None
        if region is None:
            unresolved.append(name)
            names.append(name)
            ids.append(None)
            keys.append(None)
        else:
            names.append(region.name)
            ids.append(region.id)
            keys.append(region.key)
        entries.extend((row, index) for index in indices)
    if unresolved and resolver is not None:
        log.warning(
            "map_regions_unresolved", map=map_.id, count=len(unresolved), names=unresolved[:10]
        )
    return RegionTable(
        configured_names=tuple(configured),
        names=_objects(names),
        ids=_objects(ids),
        keys=_objects(keys),
        entries=tuple(entries),
    )


def _exact_names(map_: Map, resolver: RegionResolver | None) -> dict[str, Region]:
    """Regions by configured and cleaned name: a map names its regions as the parcellation
    file does, so an exact hit needs no word matching (which can be ambiguous: "LP ..." vs
    "VLP ...")."""
    if resolver is None:
        return {}
    try:
        parcellation = resolver.parcellation(map_.parcellation_id)
    except SiibradError:
        return {}
    found: dict[str, Region] = {}
    for region in parcellation.regions:
        found.setdefault(region.name, region)
    for region in parcellation.regions:
        found.setdefault(region.configured_name, region)
    return found


def _objects(values: list[Any]) -> np.ndarray[Any, np.dtype[np.object_]]:
    array = np.empty(len(values) + 1, dtype=object)
    array[: len(values)] = values
    array[len(values)] = None  # row -1 gathers None: a label that no region claims
    return array
