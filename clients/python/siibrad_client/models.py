"""Small frozen values for the answers of the typed helpers, in siibra's words.

Each model names the fields every user needs (``region.name``, ``region.parcellation``) and
keeps the daemon's whole answer in ``raw``; any other wire field is readable as an attribute
too (``region.ontology_ids``), so a daemon that adds fields needs no client release. Models
compare and hash by kind and ``id``. Wire lists become tuples, nested objects stay mappings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

_M = TypeVar("_M", bound="Model")


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
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
    """An atlas: a species with its reference spaces and parcellations."""

    kind: ClassVar[str] = "atlas"
    species: str | None = None
    spaces: tuple[Any, ...] = ()
    parcellations: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Space(Model):
    """A reference space (MNI 152 ICBM 2009c, BigBrain, fsaverage...)."""

    kind: ClassVar[str] = "space"
    key: str | None = None
    species: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Parcellation(Model):
    """A parcellation with its version chain; its region tree is asked for separately."""

    kind: ClassVar[str] = "parcellation"
    key: str | None = None
    species: str | None = None
    version: Any = None


@dataclass(frozen=True, slots=True, eq=False)
class Region(Model):
    """A node of a parcellation's region tree; ``parcellation`` is the parcellation's id."""

    kind: ClassVar[str] = "region"
    key: str | None = None
    parcellation: Any = None
    parent: Any = None
    children: tuple[Any, ...] = ()
    rgb: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Map(Model):
    """A map placing a parcellation's regions in a space (labelled or statistical)."""

    kind: ClassVar[str] = "map"
    space: Any = None
    parcellation: Any = None
    maptype: str | None = None
    volumes: tuple[Any, ...] = ()
