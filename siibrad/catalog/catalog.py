"""The in-process catalogue API (contract A): load once, then resolve specs and walk trees.

``Catalog.load(source, extensions)`` reads a configuration (a folder, a .zip, "github:TAG":
whatever ``siibrad.store.configuration.open_configuration`` opens) plus extension folders,
builds every index, and from then on answers in microseconds: ``atlas/space/parcellation
(spec)``, ``map(parcellation, space, maptype, spec)``, ``region(parcellation, region)``,
``find_regions(spec)`` and the tree queries. Resolution follows siibra-python 1.0.1a25 (see
``concepts`` and ``region_index``); where siibra raises, this raises the structured errors of
``siibrad.errors``. Resolved specs are memoised in a bounded LRU (failures included). A
``Catalog`` is immutable after ``load`` and safe to share between threads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from siibrad.catalog import _gc
from siibrad.catalog.concepts import ConceptTable, concept_matches, parcellation_matches
from siibrad.catalog.loader import ConfigurationProblem, LoadedConfiguration, load_folders
from siibrad.catalog.memo import DEFAULT_MEMO_SIZE, BoundedMemo
from siibrad.catalog.model import Atlas, Map, MapType, Parcellation, Region, Space
from siibrad.catalog.region_index import RegionIndex, check_region_spec
from siibrad.errors import (
    AtlasNotFoundError,
    InvalidSpecError,
    MapNotFoundError,
    ParcellationNotFoundError,
    RegionNotFoundError,
    SpaceNotFoundError,
)
from siibrad.settings import Settings
from siibrad.store.configuration import ConfigurationSource, open_configuration

log = structlog.get_logger(__name__)

MAX_SPEC_CHARS = 1000
"""Longest spec accepted; longer ones raise ``InvalidSpecError`` (no region name is near it)."""


def check_spec(spec: object, kind: str, *, allow_int: bool = False) -> None:
    """Reject specs no rule can mean: non-strings, blank, or longer than ``MAX_SPEC_CHARS``."""
    if allow_int and isinstance(spec, int) and not isinstance(spec, bool):
        return
    if not isinstance(spec, str):
        raise InvalidSpecError(
            f"a {kind} spec must be a string, not {type(spec).__name__}", spec=repr(spec)[:100]
        )
    if not spec.strip():
        raise InvalidSpecError(f"empty {kind} spec", spec=spec)
    if len(spec) > MAX_SPEC_CHARS:
        raise InvalidSpecError(
            f"{kind} spec of {len(spec)} characters (the limit is {MAX_SPEC_CHARS})",
            spec=spec[:100] + "...",
        )


def _maptype(value: object) -> MapType:
    if isinstance(value, MapType):
        return value
    if isinstance(value, str):
        try:
            return MapType(value.lower())
        except ValueError:
            pass
    raise InvalidSpecError(
        f"maptype {value!r} is not one of {', '.join(m.value for m in MapType)}", spec=repr(value)
    )


class Catalog:
    """Every atlas, space, parcellation, map and region of one configuration, indexed."""

    def __init__(
        self,
        loaded: LoadedConfiguration,
        source: ConfigurationSource,
        memo_size: int = DEFAULT_MEMO_SIZE,
    ) -> None:
        with _gc.paused():
            self.source = source
            self.problems: tuple[ConfigurationProblem, ...] = loaded.problems
            self._atlases = ConceptTable(
                loaded.atlases,
                lambda a, s: concept_matches(a.name, a.key, a.id, s),
                AtlasNotFoundError,
                lambda a: (a.name,),
            )
            self._spaces = ConceptTable(
                loaded.spaces,
                lambda sp, s: concept_matches(sp.name, sp.key, sp.id, s),
                SpaceNotFoundError,
                lambda sp: (sp.name, sp.short_name),
            )
            self._parcellations = ConceptTable(
                loaded.parcellations,
                parcellation_matches,
                ParcellationNotFoundError,
                lambda p: (p.name, p.short_name),
            )
            self._maps = ConceptTable(
                loaded.maps,
                lambda m, s: concept_matches(m.name, m.key, m.id, s),
                MapNotFoundError,
                lambda m: (m.name,),
            )
            self._indexes = {p.id: RegionIndex(p) for p in loaded.parcellations}
            self._regions_by_id: dict[str, Region] = {}
            for p in loaded.parcellations:
                for r in p.regions:
                    self._regions_by_id.setdefault(r.id, r)
        self._memo = BoundedMemo(memo_size)
        _gc.settle()

    @classmethod
    def load(
        cls,
        source: str | Path,
        extensions: Sequence[str | Path] = (),
        settings: Settings | None = None,
        *,
        strict: bool = False,
        memo_size: int = DEFAULT_MEMO_SIZE,
    ) -> Catalog:
        """Read ``source`` plus ``extensions`` (siibra's ``extend_configuration``) and index it.

        Bad files are skipped and listed in ``catalog.problems``; with ``strict=True`` they
        raise ``ConfigurationError`` naming them instead.
        """
        opened = open_configuration(source, settings)
        roots = [opened.root] + [open_configuration(e, settings).root for e in extensions]
        loaded = load_folders(roots, strict=strict)
        catalog = cls(loaded, opened, memo_size)
        log.info(
            "catalog_loaded",
            source=opened.spec,
            extensions=[str(e) for e in extensions],
            files=loaded.files,
            problems=len(loaded.problems),
            **catalog.counts(),
        )
        return catalog

    # --- registries ---------------------------------------------------------------------------

    @property
    def atlases(self) -> tuple[Atlas, ...]:
        return self._atlases.items

    @property
    def spaces(self) -> tuple[Space, ...]:
        return self._spaces.items

    @property
    def parcellations(self) -> tuple[Parcellation, ...]:
        return self._parcellations.items

    @property
    def maps(self) -> tuple[Map, ...]:
        return self._maps.items

    def counts(self) -> dict[str, int]:
        """How many atlases, spaces, parcellations, maps and region nodes (roots included)."""
        return {
            "atlases": len(self.atlases),
            "spaces": len(self.spaces),
            "parcellations": len(self.parcellations),
            "maps": len(self.maps),
            "regions": sum(len(p.regions) for p in self.parcellations),
        }

    def memo_stats(self) -> dict[str, Any]:
        """Size, bound, hits and misses of the resolution memo (for daemon status)."""
        return self._memo.stats()

    # --- concept specs ------------------------------------------------------------------------

    def atlas(self, spec: str | int | Atlas) -> Atlas:
        """``siibra.atlases[spec]``: exact key, position, name words, key words; largest wins."""
        if isinstance(spec, Atlas):
            return spec
        check_spec(spec, "atlas", allow_int=True)
        return self._memo.get(("atlas", spec), lambda: self._atlases.get(spec))

    def space(self, spec: str | int | Space) -> Space:
        """``siibra.get_space(spec)``."""
        if isinstance(spec, Space):
            return spec
        check_spec(spec, "space", allow_int=True)
        return self._memo.get(("space", spec), lambda: self._spaces.get(spec))

    def parcellation(self, spec: str | int | Parcellation) -> Parcellation:
        """``siibra.get_parcellation(spec)``: newest version wins when several match."""
        if isinstance(spec, Parcellation):
            return spec
        check_spec(spec, "parcellation", allow_int=True)
        return self._memo.get(("parcellation", spec), lambda: self._parcellations.get(spec))

    def map_by_spec(self, spec: str | int) -> Map:
        """``siibra.maps[spec]``: a map by key, id or name words."""
        check_spec(spec, "map", allow_int=True)
        return self._memo.get(("map_by_spec", spec), lambda: self._maps.get(spec))

    def find_atlases(self, spec: str) -> list[Atlas]:
        """Every atlas the spec selects, siibra's winner first."""
        check_spec(spec, "atlas")
        return self._atlases.ranked(spec)

    def find_spaces(self, spec: str) -> list[Space]:
        """Every space the spec selects, siibra's winner first."""
        check_spec(spec, "space")
        return self._spaces.ranked(spec)

    def find_parcellations(self, spec: str) -> list[Parcellation]:
        """Every parcellation the spec selects, siibra's winner first."""
        check_spec(spec, "parcellation")
        return self._parcellations.ranked(spec)

    def map(
        self,
        parcellation_spec: str | Parcellation,
        space_spec: str | Space,
        maptype: str | MapType = "labelled",
        spec: str = "",
    ) -> Map:
        """``siibra.get_map``: the parcellation's maps whose space matches ``space_spec``.

        The space spec is matched against each map's space (not resolved to one space first);
        several maps are narrowed by the words of ``spec`` in their ids, then the first wins.
        """
        kind = _maptype(maptype)
        if not isinstance(spec, str) or len(spec) > MAX_SPEC_CHARS:
            raise InvalidSpecError("a map spec must be a string of at most 1000 characters")
        if not isinstance(space_spec, Space):
            check_spec(space_spec, "space")
        parcellation = self.parcellation(parcellation_spec)
        space_key = space_spec.id if isinstance(space_spec, Space) else space_spec
        return self._memo.get(
            ("map", parcellation.id, space_key, isinstance(space_spec, Space), kind, spec),
            lambda: self._get_map(parcellation, space_spec, kind, spec),
        )

    def _get_map(
        self, parcellation: Parcellation, space_spec: str | Space, kind: MapType, spec: str
    ) -> Map:
        def space_matches(space: Space | None) -> bool:
            if space is None:
                return False
            if isinstance(space_spec, Space):
                return space.id == space_spec.id
            return concept_matches(space.name, space.key, space.id, space_spec)

        candidates = [
            m
            for m in self.maps
            if m.parcellation_id == parcellation.id
            and m.maptype is kind
            and space_matches(self._spaces.by_id(m.space_id))
        ]
        label = space_spec.name if isinstance(space_spec, Space) else space_spec
        if not candidates:
            available = [
                s.name
                for m in self.maps
                if m.parcellation_id == parcellation.id and m.maptype is kind
                if (s := self._spaces.by_id(m.space_id)) is not None
            ]
            raise MapNotFoundError(
                f"no {kind.value} map of {parcellation.name} in a space matching {label!r}",
                spec=label,
                suggestions=list(dict.fromkeys(available)),
                parcellation=parcellation.name,
                maptype=kind.value,
            )
        if len(candidates) > 1:
            words = spec.split()
            narrowed = [m for m in candidates if all(w.lower() in m.id.lower() for w in words)]
            if not narrowed:
                raise MapNotFoundError(
                    f"map spec {spec!r} matches none of the {len(candidates)} {kind.value} maps "
                    f"of {parcellation.name} in {label!r}",
                    spec=spec,
                    suggestions=[m.id for m in candidates],
                )
            candidates = narrowed
        return candidates[0]

    # --- region specs -------------------------------------------------------------------------

    def region(self, parcellation_spec: str | Parcellation, region_spec: str | Region) -> Region:
        """``siibra.get_region``: exactly one region of the parcellation, or a structured error."""
        if not isinstance(region_spec, Region):
            check_spec(region_spec, "region")
            check_region_spec(region_spec)
        parcellation = self.parcellation(parcellation_spec)
        index = self._indexes[parcellation.id]
        if isinstance(region_spec, Region):
            return index.get_region(region_spec)
        return self._memo.get(
            ("region", parcellation.id, region_spec), lambda: index.get_region(region_spec)
        )

    def find_regions(
        self,
        spec: str | re.Pattern[str],
        parcellation_spec: str | Parcellation | None = None,
        *,
        filter_children: bool = True,
        find_topmost: bool = False,
    ) -> list[Region]:
        """``siibra.find_regions``: matches in every parcellation (registry order), or in one."""
        if not isinstance(spec, re.Pattern):
            check_spec(spec, "region")
            check_region_spec(spec)
        scope = (
            self.parcellations
            if parcellation_spec is None
            else (self.parcellation(parcellation_spec),)
        )
        key = (
            "find_regions",
            spec,
            None if parcellation_spec is None else scope[0].id,
            filter_children,
            find_topmost,
        )

        def compute() -> tuple[Region, ...]:
            found: list[Region] = []
            for p in scope:
                found += self._indexes[p.id].find(
                    spec, filter_children=filter_children, find_topmost=find_topmost
                )
            return tuple(found)

        return list(self._memo.get(key, compute))

    def regions(self, parcellation_spec: str | Parcellation) -> tuple[Region, ...]:
        """Every node of a parcellation's tree in pre-order, the root first."""
        return self.parcellation(parcellation_spec).regions

    # --- tree queries -------------------------------------------------------------------------

    def region_by_id(self, region_id: str) -> Region:
        """The region with siibra's id ``<PARCELLATION_KEY>_<REGION_KEY>`` (a root: its @id)."""
        check_spec(region_id, "region id")
        found = self._regions_by_id.get(region_id)
        if found is None:
            raise RegionNotFoundError(
                f"no region has the id {region_id!r}",
                spec=region_id,
                suggestions=[r.id for r in self._indexes_suggest(region_id)],
            )
        return found

    def _indexes_suggest(self, region_id: str) -> list[Region]:
        prefix = max(
            (p for p in self.parcellations if region_id.startswith(p.key + "_")),
            key=lambda p: len(p.key),
            default=None,
        )
        if prefix is None:
            return []
        names = self._indexes[prefix.id].suggester.suggest(region_id[len(prefix.key) + 1 :])
        return self._indexes[prefix.id].regions_named(names)

    def parcellation_of(self, region: Region) -> Parcellation:
        """The parcellation a region belongs to."""
        self._check_own(region)
        found = self._parcellations.by_id(region.parcellation_id)
        assert found is not None  # _check_own found it
        return found

    def parent(self, region: Region) -> Region | None:
        """The parent node, ``None`` for a parcellation's root."""
        regions = self._check_own(region)
        return None if region.parent is None else regions[region.parent]

    def children(self, region: Region) -> tuple[Region, ...]:
        """The direct children, in configuration order."""
        regions = self._check_own(region)
        return tuple(regions[i] for i in region.children)

    def ancestors(self, region: Region) -> tuple[Region, ...]:
        """Every node above ``region``, the root first (anytree's order)."""
        return self.path(region)[:-1]

    def path(self, region: Region) -> tuple[Region, ...]:
        """The nodes from the root down to ``region`` itself."""
        regions = self._check_own(region)
        chain = [region]
        while chain[-1].parent is not None:
            chain.append(regions[chain[-1].parent])
        return tuple(reversed(chain))

    def descendants(self, region: Region) -> tuple[Region, ...]:
        """Every node below ``region``, pre-order (anytree's ``descendants``)."""
        regions = self._check_own(region)
        found: list[Region] = []
        stack = list(reversed(region.children))
        while stack:
            node = regions[stack.pop()]
            found.append(node)
            stack.extend(reversed(node.children))
        return tuple(found)

    def leaves(self, region: Region) -> tuple[Region, ...]:
        """The leaf nodes under ``region`` (itself when it has no children), pre-order."""
        if not region.children:
            self._check_own(region)
            return (region,)
        return tuple(r for r in self.descendants(region) if not r.children)

    def _check_own(self, region: Region) -> tuple[Region, ...]:
        if not isinstance(region, Region):
            raise InvalidSpecError(
                f"expected a Region, not {type(region).__name__}", spec=repr(region)[:100]
            )
        parcellation = self._parcellations.by_id(region.parcellation_id)
        if (
            parcellation is None
            or region.index >= len(parcellation.regions)
            or parcellation.regions[region.index] != region
        ):
            raise RegionNotFoundError(
                f"region {region.name!r} does not belong to this catalogue", spec=region.id
            )
        return parcellation.regions
