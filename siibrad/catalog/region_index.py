"""Region specs of one parcellation resolved with siibra's exact semantics, from prebuilt indexes.

siibra answers ``Parcellation.get_region(spec)`` by calling ``Region.matches`` on every node of
the tree. ``RegionIndex`` gives the same answers from dictionaries built once: exact
name/key/id (lower-cased), an inverted index word → node indices (so a word spec is a set
intersection, not a scan), and the parcellation's short name for its root node. Regex specs
(``/pattern/flags``) are the one thing that still scans the tree.

The rules, as siibra applies them (``siibra/core/region.py``, ``parcellation.py``):

* a node matches a string spec if the lower-cased, stripped spec equals its key, id or name,
  or if every word of the cleaned spec equals a word of the cleaned name, or "v" + the word
  does ("1" finds "v1"); the root also matches when every whitespace-separated word of the spec
  is a substring of the parcellation's short name;
* ``find`` keeps, with ``filter_children``, a matched node whose matched parent does not
  already cover it, and with ``find_topmost`` replaces children by a parent all of whose
  children matched; results are ordered by depth, then by difflib similarity to the spec
  (ties, which siibra leaves in hash order, keep pre-order here: deterministic);
* ``get_region`` tries an exact (case-sensitive) name or key first, splits legacy
  "Group: a, b" specs, then ``find``; several candidates of which exactly one has all its name
  words in the spec resolve to that one; otherwise several raise ``AmbiguousRegionError``
  (candidates ranked as ``find`` ranks them) and none ``RegionNotFoundError`` (with
  "did you mean" suggestions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from difflib import SequenceMatcher

from siibrad.catalog.model import Parcellation, Region
from siibrad.catalog.naming import name_words, spec_words
from siibrad.catalog.suggest import Suggester
from siibrad.errors import AmbiguousRegionError, InvalidSpecError, RegionNotFoundError

_REGEX_SPEC = re.compile(r"^/(?P<expression>.+)/(?P<flags>[a-zA-Z]*)$")
_REGEX_FLAGS = "aiLmsux"

RANK_LIMIT = 24
"""Ambiguity errors with more candidates than this list them in tree order, not by similarity."""

RegionSpec = str | Region | re.Pattern[str]
"""What a region spec may be in process: a string, a compiled regex, or a Region."""


def compile_regex_spec(spec: str) -> re.Pattern[str] | None:
    """The compiled pattern of a ``/pattern/flags`` spec, ``None`` for a plain string spec.

    >>> compile_regex_spec("/^Area 4[ap]/i").pattern
    '(?i)^Area 4[ap]'
    >>> compile_regex_spec("hoc1 left") is None
    True
    """
    found = _REGEX_SPEC.match(spec)
    if found is None:
        return None
    flags, expression = found.group("flags"), found.group("expression")
    bad = sorted({f for f in flags if f not in _REGEX_FLAGS})
    if bad:
        raise InvalidSpecError(
            f"regex spec {spec!r}: flag(s) {''.join(bad)!r} not allowed, use only {_REGEX_FLAGS!r}",
            spec=spec,
        )
    try:
        return re.compile((f"(?{flags})" if flags else "") + expression)
    except re.error as exc:
        raise InvalidSpecError(
            f"regex spec {spec!r} is not a valid regex: {exc}", spec=spec
        ) from exc


def check_region_spec(spec: str) -> None:
    """Reject a string spec with nothing to match: no word left after siibra's cleaning.

    siibra lets such a spec ("hemisphere", "both", "()") match every node: the whole
    parcellation, or an error listing hundreds of regions. That is never what was meant.
    """
    if _REGEX_SPEC.match(spec) is None and not spec_words(spec):
        raise InvalidSpecError(
            f"region spec {spec!r} has no word to match: names and specs are split on "
            "characters other than letters, digits, '.' and '-', and the words 'hemisphere' "
            "and 'both' are removed",
            spec=spec,
        )


def region_summary(region: Region) -> dict[str, str]:
    """How a candidate appears in an ambiguity error: name, id, key (and its parcellation)."""
    return {
        "name": region.name,
        "id": region.id,
        "key": region.key,
        "parcellation_id": region.parcellation_id,
    }


class RegionIndex:
    """Everything needed to resolve region specs in one parcellation, built once."""

    def __init__(self, parcellation: Parcellation) -> None:
        self.parcellation = parcellation
        regions = parcellation.regions
        self._ids = [r.id for r in regions]
        self._exact: dict[str, set[int]] = {}
        self._first_cased: dict[str, int] = {}
        self._words: dict[str, set[int]] = {}
        self._aliases: dict[str, set[int]] = {}
        for r in regions:
            for text in (r.key, r.id, r.name):
                self._exact.setdefault(text.lower().strip(), set()).add(r.index)
            for text in (r.name, r.key):
                self._first_cased.setdefault(text, r.index)
        # A region's name exactly as configured also wins outright (after cleaned names and
        # keys): siibra cleans the spec's words and may then also match a longer name, e.g.
        # "LP (...) - right hemisphere" vs "VLP (...) right" (docs/compatibility.md).
        for r in regions:
            self._first_cased.setdefault(r.configured_name, r.index)
        for r in regions:
            for word in name_words(r.name):
                self._words.setdefault(word, set()).add(r.index)
            for alias in (r.name, r.key, r.id, *(value for _, value in r.ontology_ids)):
                self._aliases.setdefault(alias, set()).add(r.index)
        self._short_name = parcellation.short_name.lower()
        self._everything = frozenset(range(len(regions)))
        self.suggester = Suggester(r.name for r in regions)

    # --- matching -------------------------------------------------------------------------

    def matching(self, spec: RegionSpec) -> set[int]:
        """Indices of every node that ``Region.matches(spec)`` in siibra (no filtering)."""
        regions = self.parcellation.regions
        if isinstance(spec, Region):
            return {i for i, rid in enumerate(self._ids) if rid == spec.id}
        if isinstance(spec, re.Pattern):
            return {
                r.index for r in regions if spec.search(r.name) is not None or spec.search(r.key)
            }
        hits = set(self._exact.get(spec.lower().strip(), ()))
        words = spec_words(spec)
        if not words:
            return set(self._everything)  # siibra: all() of no words is True
        sets = sorted(
            (self._words.get(w, set()) | self._words.get("v" + w, set()) for w in words), key=len
        )
        found = set(sets[0])
        for other in sets[1:]:
            if not found:
                break
            found &= other
        hits |= found
        if all(w in self._short_name for w in re.split(r"\s+", spec.lower())):
            hits.add(0)
        return hits

    def find(
        self,
        spec: RegionSpec,
        *,
        filter_children: bool = False,
        find_topmost: bool = True,
        rank_limit: int | None = None,
    ) -> list[Region]:
        """siibra's ``Region.find`` on the root: matches, filtered and ranked (see module doc).

        With ``rank_limit``, more candidates than that stay in tree order (depth, pre-order):
        ranking hundreds of names by difflib costs milliseconds and tells a user nothing.
        """
        if isinstance(spec, str):
            pattern = compile_regex_spec(spec)
            if pattern is not None:
                spec = pattern
        regions = self.parcellation.regions
        candidates = sorted(self.matching(spec))
        if len(candidates) > 1 and filter_children:
            candidates = self._filtered(candidates, spec, find_topmost)
        unique: dict[str, int] = {}
        for i in sorted(candidates, key=lambda i: (regions[i].depth, i)):
            unique.setdefault(self._ids[i], i)  # siibra collects a set: equal ids collapse
        found = [regions[i] for i in unique.values()]
        if isinstance(spec, str) and 1 < len(found) <= (rank_limit or len(found)):
            found.sort(key=_similarity_to(spec), reverse=True)
        return found

    def _filtered(self, candidates: list[int], spec: RegionSpec, find_topmost: bool) -> list[int]:
        regions = self.parcellation.regions
        ids = self._ids
        matched = {ids[i] for i in candidates}
        filtered = [
            i
            for i in candidates
            if any(ids[c] in matched for c in regions[i].children)
            or not _parent_in(regions[i], matched, ids)
        ]
        if not find_topmost:
            return filtered
        kept = {ids[i] for i in filtered}
        complete_parents = {
            p
            for i in filtered
            if (p := regions[i].parent) is not None
            and all(ids[c] in kept for c in regions[p].children)
        }
        if not complete_parents:
            return filtered
        filtered += sorted(complete_parents)
        kept |= {ids[p] for p in complete_parents}
        return [
            i
            for i in filtered
            if not _parent_in(regions[i], kept, ids) or self._equals(regions[i], spec)
        ]

    def _equals(self, region: Region, spec: RegionSpec) -> bool:
        """siibra's ``region == spec``: same id for a Region, any alias for a string."""
        if isinstance(spec, Region):
            return region.id == spec.id
        if isinstance(spec, str):
            return region.index in self._aliases.get(spec, ())
        return False

    # --- resolution -------------------------------------------------------------------------

    def get_region(self, spec: str | Region, *, find_topmost: bool = False) -> Region:
        """siibra's ``Parcellation.get_region``: exactly one region, or a structured error."""
        regions = self.parcellation.regions
        if isinstance(spec, Region):
            if spec.parcellation_id == self.parcellation.id:
                return spec
            candidates = self.find(
                spec, filter_children=True, find_topmost=find_topmost, rank_limit=RANK_LIMIT
            )
        else:
            exact = self._first_cased.get(spec)
            if exact is not None:
                return regions[exact]
            if spec.startswith("Group"):
                candidates = self._group_candidates(spec, find_topmost)
            else:
                candidates = self.find(
                    spec, filter_children=True, find_topmost=find_topmost, rank_limit=RANK_LIMIT
                )
            if len(candidates) > 1:
                query = {w.replace(",", "").lower() for w in spec.split()}
                full = [c for c in candidates if {w.lower() for w in c.name.split()} <= query]
                if len(full) == 1:
                    candidates = full
        if len(candidates) == 1:
            return candidates[0]
        label = spec if isinstance(spec, str) else spec.name
        if not candidates:
            raise RegionNotFoundError(
                f"no region matches {label!r} in {self.parcellation.name}",
                spec=label,
                suggestions=self.suggester.suggest(label),
                parcellation=self.parcellation.name,
            )
        raise AmbiguousRegionError(
            f"{label!r} matches {len(candidates)} regions in {self.parcellation.name}: "
            + ", ".join(c.name for c in candidates[:10])
            + (", ..." if len(candidates) > 10 else ""),
            spec=label,
            candidates=[region_summary(c) for c in candidates],
            parcellation=self.parcellation.name,
        )

    def _group_candidates(self, spec: str, find_topmost: bool) -> list[Region]:
        """Legacy "Group: a, b" specs: each part resolved, then their union (pre-order)."""
        body = re.sub(r"Group: *", "", spec)
        for bracketed in re.findall(r"\(.*?\)", body):
            body = body.replace(bracketed, re.sub(r", *", "##", bracketed))
        parts = [self.get_region(p.replace("##", ", ")) for p in re.split(r", *", body)]
        found: dict[str, Region] = {}
        for part in parts:
            for r in self.find(part, filter_children=True, find_topmost=find_topmost):
                found.setdefault(r.id, r)
        return sorted(found.values(), key=lambda r: r.index)

    def regions_named(self, names: Iterable[str]) -> list[Region]:
        """Regions whose cleaned name is one of ``names`` (first node per name, pre-order)."""
        wanted = set(names)
        return [r for r in self.parcellation.regions if r.name in wanted]


def _similarity_to(spec: str) -> Callable[[Region], float]:
    """``SequenceMatcher(None, name, spec).ratio()`` with the spec analysed once, not per name."""
    matcher = SequenceMatcher(None, "", spec)

    def ratio(region: Region) -> float:
        matcher.set_seq1(region.name)
        return matcher.ratio()

    return ratio


def _parent_in(region: Region, ids: set[str], all_ids: list[str]) -> bool:
    return region.parent is not None and all_ids[region.parent] in ids
