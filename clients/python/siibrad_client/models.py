"""Small frozen values for the answers of the typed helpers, in siibra's words.

Each model names the fields every user needs (``region.name``, ``region.parcellation``) and
keeps the daemon's whole answer in ``raw``; any other wire field is readable as an attribute
too (``region.ontology_ids``), so a daemon that adds fields needs no client release. Models
compare and hash by kind and ``id``. Wire lists become tuples; a reference to another object
(``{"id", "name"}``, e.g. ``region.parcellation``, ``region.parent``) becomes a :class:`Ref`;
other nested objects stay mappings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

_M = TypeVar("_M", bound="Model")


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another object: its ``id`` and ``name`` (``str(ref)`` is the name)."""

    id: str
    name: str

    def __str__(self) -> str:
        return self.name


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict) and value.keys() == {"id", "name"}:
        return Ref(str(value["id"]), str(value["name"]))
    return value


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    """Base of the answer models: typed fields plus the full wire mapping in ``raw``."""

    kind: ClassVar[str] = "object"
    id: str
    name: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_wire(cls: type[_M], wire: Mapping[str, Any]) -> _M:
        """The model for one wire object; unknown fields stay reachable through ``raw``."""
        known = {f.name for f in fields(cls)} - {"raw"}
        values = {k: _freeze(v) for k, v in wire.items() if k in known}
        return cls(**values, raw=wire)

    def __getattr__(self, name: str) -> Any:
        # Reached only for names that are not fields: fall back to the wire answer.
        raw = object.__getattribute__(self, "raw")
        if name in raw:
            return _freeze(raw[name])
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash((self.kind, self.id))

    def __getitem__(self, name: str) -> Any:
        return self.raw[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """The daemon's answer as a plain dict (e.g. for JSON or pandas)."""
        return dict(self.raw)


@dataclass(frozen=True, slots=True, eq=False)
class Atlas(Model):
    """An atlas: a species with its reference spaces and parcellations (as :class:`Ref`)."""

    kind: ClassVar[str] = "atlas"
    key: str | None = None
    species: str | None = None
    spaces: tuple[Ref, ...] = ()
    parcellations: tuple[Ref, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Space(Model):
    """A reference space (MNI 152 ICBM 2009c, BigBrain, fsaverage...)."""

    kind: ClassVar[str] = "space"
    key: str | None = None
    short_name: str | None = None
    species: str | None = None
    modality: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Parcellation(Model):
    """A parcellation; ``version`` holds its chain (``prev``, ``next``, ``deprecated``)."""

    kind: ClassVar[str] = "parcellation"
    key: str | None = None
    short_name: str | None = None
    species: str | None = None
    modality: str | None = None
    version: Mapping[str, Any] | None = None
    region_count: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Region(Model):
    """A node of a parcellation's region tree, with references to its relatives."""

    kind: ClassVar[str] = "region"
    key: str | None = None
    parcellation: Ref | None = None
    parent: Ref | None = None
    children: tuple[Ref, ...] = ()
    depth: int | None = None
    is_leaf: bool | None = None
    rgb: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Map(Model):
    """A map placing a parcellation's regions in a space (labelled or statistical)."""

    kind: ClassVar[str] = "map"
    key: str | None = None
    space: Ref | None = None
    parcellation: Ref | None = None
    maptype: str | None = None
    region_count: int | None = None
    volumes: tuple[Any, ...] = ()
