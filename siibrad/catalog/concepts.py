"""Atlas, space, parcellation and map specs resolved like siibra's registries (``InstanceTable``).

The rules (``siibra/commons.py`` ``InstanceTable.find/get``, ``siibra/core/concept.py``,
``siibra/core/parcellation.py``):

1. a spec equal to an object's key (case-sensitive) selects it; an ``int`` is a position;
2. otherwise every object whose *matcher* accepts the spec, in registry order:
   atlases, spaces, maps: the spec equals the key or the id, or every word (split on spaces
   and hyphens) is a substring of the lower-case cleaned name without spaces, or the whole
   spec without spaces is; parcellations: every whitespace-separated word is a substring of the
   short name, or the region rule (equal key/id/name, or word equality with the "v" rule);
3. no match: every object whose *key* contains all whitespace-separated words of the spec;
4. several matches: the largest in siibra's order wins: by name, parcellations by version
   name when both have one ("julich" gives v3.1, "waxholm" gives v4).

``ConceptTable.ranked(spec)`` returns every match with the winner first; ``get`` the winner or
``<Kind>NotFoundError`` with "did you mean" suggestions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from siibrad.catalog.model import Atlas, Map, Parcellation, Space
from siibrad.catalog.naming import concept_words, name_words, spec_words, squeezed_name
from siibrad.catalog.suggest import Suggester
from siibrad.errors import NotFoundError

T = TypeVar("T", Atlas, Space, Parcellation, Map)


def concept_matches(name: str, key: str, id_: str, spec: str) -> bool:
    """``AtlasConcept.matches`` for a string spec (atlases, spaces, maps).

    >>> concept_matches("MNI 152 ICBM 2009c Nonlinear Asymmetric", "K", "I", "icbm nonl")
    True
    """
    if spec in (key, id_):
        return True
    squeezed = squeezed_name(name)
    return all(w.lower() in squeezed for w in concept_words(spec)) or (
        spec.replace(" ", "") in squeezed
    )


def parcellation_matches(parcellation: Parcellation, spec: str) -> bool:
    """``Parcellation.matches`` for a string spec: short-name words, else the region rule."""
    short = parcellation.short_name.lower()
    if all(w in short for w in re.split(r"\s+", spec.lower())):
        return True
    q = spec.lower().strip()
    if q in (parcellation.key.lower(), parcellation.id.lower(), parcellation.name.lower()):
        return True
    words = name_words(parcellation.name)
    return all(w in words or "v" + w in words for w in spec_words(spec))


class _SiibraOrder:
    """Sort key reproducing siibra's ``__lt__`` (parcellations: version name if both have one)."""

    __slots__ = ("name", "version")

    def __init__(self, obj: Atlas | Space | Parcellation | Map) -> None:
        self.name = obj.name
        version = obj.version if isinstance(obj, Parcellation) else None
        self.version = version.name if version is not None else None

    def __lt__(self, other: _SiibraOrder) -> bool:
        if self.version is None or other.version is None:
            return self.name < other.name
        return self.version < other.version


class ConceptTable(Generic[T]):
    """One registry (atlases, spaces, parcellations or maps) with siibra's spec semantics."""

    def __init__(
        self,
        items: Sequence[T],
        matches: Callable[[T, str], bool],
        not_found: type[NotFoundError],
        suggest_names: Callable[[T], Sequence[str]],
    ) -> None:
        self.items: tuple[T, ...] = tuple(items)
        self._matches: Callable[[T, str], bool] = matches
        self._not_found = not_found
        self._by_key: dict[str, T] = {item.key: item for item in self.items}
        self._by_id: dict[str, T] = {item.id: item for item in reversed(self.items)}
        self._suggester = Suggester(n for item in self.items for n in suggest_names(item))

    def by_id(self, id_: str) -> T | None:
        """The object with this exact ``@id`` (first in registry order), else ``None``."""
        return self._by_id.get(id_)

    def ranked(self, spec: str | int) -> list[T]:
        """Every object the spec selects, the one siibra would pick first (may be empty)."""
        if isinstance(spec, int):
            return [self.items[spec]] if -len(self.items) <= spec < len(self.items) else []
        exact = self._by_key.get(spec)
        if exact is not None:
            return [exact]
        found = [item for item in self.items if self._matches(item, spec)]
        if not found:
            words = spec.split()
            found = [i for i in self.items if all(w.lower() in i.key.lower() for w in words)]
        if len(found) > 1:
            found = sorted(found, key=_SiibraOrder, reverse=True)
        return found

    def get(self, spec: str | int) -> T:
        """The object siibra's ``registry[spec]`` returns, or ``<Kind>NotFoundError``."""
        found = self.ranked(spec)
        if found:
            return found[0]
        kind = self._not_found.kind
        raise self._not_found(
            f"no {kind} matches {spec!r}",
            spec=spec,
            suggestions=self._suggester.suggest(str(spec)),
        )
