"""Ranked completion of region names for editors, from an index built once.

Contract: :class:`CompletionIndex` holds region names (unique by name, first occurrence wins:
callers list the newest parcellation versions first) and answers
:meth:`CompletionIndex.complete` in well under a millisecond: names that start with the text,
then names with a later word starting with it, then names containing it. Within a tier the
shorter matched word wins (so "hoc" lists hOc1, hOc2, hOc5, hOc6 before hOc3d, hOc4la), then
the shallower region, then the word and the name alphabetically. Case-insensitive.

>>> from siibrad.catalog.model import Region
>>> def r(i, name, depth): return Region(f"id{i}", name, name, f"k{i}", "p", i, None, (), depth)
>>> index = CompletionIndex([r(0, "hOc1 (V1)", 3), r(1, "Area hOc2", 3), r(2, "hOc10", 2)])
>>> [(c.region.name, c.match) for c in index.complete("hoc1", 10)]
[('hOc1 (V1)', 'prefix'), ('hOc10', 'prefix')]
>>> [c.match for c in index.complete("hoc2", 10)], index.complete("c2", 10)[0].match
(['word'], 'substring')
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass

from siibrad.catalog.model import Region

_WORD = re.compile(r"[0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Completion:
    region: Region
    match: str
    """"prefix" | "word" | "substring"."""


class CompletionIndex:
    """Prefix, word-prefix and substring search over region names."""

    def __init__(self, regions: Iterable[Region]) -> None:
        unique: dict[str, Region] = {}
        for region in regions:
            unique.setdefault(region.name.lower(), region)
        self._lower = list(unique)
        self._regions = list(unique.values())
        # One row per word start: (text from that word on, entry, word start, word length).
        rows: list[tuple[str, int, int, int]] = []
        for entry, name in enumerate(self._lower):
            rows.extend(
                (name[m.start() :], entry, m.start(), len(m.group(0))) for m in _WORD.finditer(name)
            )
            if not name[:1].isalnum():
                rows.append((name, entry, 0, len(name)))
        rows.sort()
        self._rows = rows
        self._texts = [row[0] for row in rows]

    def __len__(self) -> int:
        return len(self._regions)

    def _key(self, entry: int, start: int, word_len: int) -> tuple[int, int, int, str, int, str]:
        name = self._lower[entry]
        tier = 0 if start == 0 else 1
        word = name[start : start + word_len]
        return (tier, word_len, self._regions[entry].depth, word, len(name), name)

    def complete(self, text: str, limit: int) -> list[Completion]:
        """Up to ``limit`` regions whose name matches ``text``, best first."""
        query = text.strip().lower()
        best: dict[int, tuple[int, int, int, str, int, str]] = {}
        if query:
            lo = bisect.bisect_left(self._texts, query)
            hi = bisect.bisect_left(self._texts, query + "\U0010ffff")
            for _, entry, start, word_len in self._rows[lo:hi]:
                key = self._key(entry, start, word_len)
                if entry not in best or key < best[entry]:
                    best[entry] = key
        ranked = sorted(best, key=best.__getitem__)[:limit]
        out = [
            Completion(self._regions[e], "prefix" if best[e][0] == 0 else "word") for e in ranked
        ]
        if len(out) < limit:
            extra = [e for e, name in enumerate(self._lower) if e not in best and query in name]
            extra.sort(key=lambda e: (len(self._lower[e]), self._regions[e].depth, self._lower[e]))
            out += [Completion(self._regions[e], "substring") for e in extra[: limit - len(out)]]
        return out
