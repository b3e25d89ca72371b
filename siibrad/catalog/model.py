"""Frozen value objects of the atlas model, built once from siibra-configurations.

These are the shared vocabulary of every layer: the catalogue builds them, the maps layer
reads ``Map``/``Volume``/``MapIndex``, the methods layer serialises them. Nothing here does
I/O. Trees are stored flat: a ``Region`` names its parent and children by index into its
parcellation's ``regions`` tuple, so objects stay immutable and hashable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MapType(StrEnum):
    """siibra's ``MapType``: one label per voxel, or one value map per region."""

    LABELLED = "labelled"
    STATISTICAL = "statistical"


@dataclass(frozen=True, slots=True)
class Atlas:
    id: str
    name: str
    key: str
    species: str
    space_ids: tuple[str, ...]
    parcellation_ids: tuple[str, ...]
    order: int = 0


@dataclass(frozen=True, slots=True)
class Provider:
    """One way to get a volume: a format and its URL, per fragment when the volume is split.

    ``fragment`` is ``None`` for an unfragmented source, else e.g. ``"left hemisphere"``.
    """

    format: str
    url: str
    fragment: str | None = None


@dataclass(frozen=True, slots=True)
class BoundingBox:
    space_id: str
    min_mm: tuple[float, float, float]
    max_mm: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Volume:
    """A configured volume (``siibra/volume/v0.0.1``): providers per format, maybe fragments."""

    providers: tuple[Provider, ...]
    space_id: str | None = None
    variant: str | None = None
    name: str | None = None
    boundingbox: BoundingBox | None = None

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.format for p in self.providers))

    @property
    def fragments(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.fragment for p in self.providers if p.fragment is not None))

    def providers_for(self, fmt: str) -> tuple[Provider, ...]:
        return tuple(p for p in self.providers if p.format == fmt)


@dataclass(frozen=True, slots=True)
class Space:
    id: str
    name: str
    short_name: str
    key: str
    species: str
    modality: str
    volumes: tuple[Volume, ...] = ()


@dataclass(frozen=True, slots=True)
class Version:
    """A parcellation's place in its version chain (``@version`` in the configuration)."""

    name: str
    prev_id: str | None = None
    next_id: str | None = None
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class Region:
    """One node of a parcellation's region tree (the root is the parcellation itself).

    ``name`` is siibra's cleaned name; ``configured_name`` is the name as written in the
    configuration. ``index``/``parent``/``children`` index into ``Parcellation.regions``.
    """

    id: str
    name: str
    configured_name: str
    key: str
    parcellation_id: str
    index: int
    parent: int | None
    children: tuple[int, ...]
    depth: int
    rgb: tuple[int, int, int] | None = None
    ontology_ids: tuple[tuple[str, str], ...] = ()
    granularity: str | None = None


@dataclass(frozen=True, slots=True)
class Parcellation:
    id: str
    name: str
    short_name: str
    key: str
    species: str
    modality: str
    version: Version | None
    regions: tuple[Region, ...] = field(default=(), repr=False)
    """Pre-order: ``regions[0]`` is the root node named after the parcellation."""

    @property
    def root(self) -> Region:
        return self.regions[0]


@dataclass(frozen=True, slots=True)
class MapIndex:
    """Where a region lives in a map: volume number, label (labelled maps), fragment, z (4D)."""

    volume: int = 0
    label: int | None = None
    fragment: str | None = None
    z: int | None = None


@dataclass(frozen=True, slots=True)
class Map:
    id: str
    name: str
    key: str
    space_id: str
    parcellation_id: str
    maptype: MapType
    volumes: tuple[Volume, ...]
    indices: tuple[tuple[str, tuple[MapIndex, ...]], ...]
    """Region name (as configured in the map file) → its indices, in configuration order."""
    sparse: bool = False
    """``represented_as_sparsemap``: statistical per-region volumes, served via a sparse index."""
    source_path: str | None = None

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.indices)
