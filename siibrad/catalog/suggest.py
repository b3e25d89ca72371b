"""'Did you mean' suggestions for specs that match nothing.

difflib over thousands of names costs milliseconds per miss, too slow for a daemon that
answers in microseconds. ``Suggester`` therefore keeps a character-trigram inverted index of
the lower-cased names, takes the few dozen names sharing the most trigrams with the spec, and
only ranks those with ``difflib.SequenceMatcher``. A name containing every word of the spec
as a substring ("hoc" → "Area hOc1 ...") is always a candidate too, and ranks higher still
when the spec without spaces is inside the name without spaces ("hoc 1" → "hOc1").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher

MAX_SUGGESTIONS = 5
_SHORTLIST = 40
_MIN_RATIO = 0.45


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class Suggester:
    """Close names for a spec, best first; built once from the names it may suggest."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = list(dict.fromkeys(n for n in names if n))
        self._lower = [n.lower() for n in self._names]
        self._by_trigram: dict[str, list[int]] = {}
        for i, name in enumerate(self._lower):
            for gram in _trigrams(name):
                self._by_trigram.setdefault(gram, []).append(i)

    def suggest(self, spec: str, limit: int = MAX_SUGGESTIONS) -> list[str]:
        """Up to ``limit`` names close to ``spec`` (similarity ≥ 0.45, or all its words inside).

        >>> names = ["Area hOc1 (V1, 17, CalcS)", "Area hOc2 (V2, 18)", "Area 44 (IFG)"]
        >>> Suggester(names).suggest("hoc 1")
        ['Area hOc1 (V1, 17, CalcS)', 'Area hOc2 (V2, 18)']
        """
        query = " ".join(spec.lower().split())
        if not query or not self._names:
            return []
        shared: Counter[int] = Counter()
        for gram in _trigrams(query):
            shared.update(self._by_trigram.get(gram, ()))
        shortlist = {i for i, _ in shared.most_common(_SHORTLIST)}
        words = query.split()
        squeezed = query.replace(" ", "")
        scored: list[tuple[float, int, int]] = []
        for i in shortlist:
            ratio = SequenceMatcher(None, query, self._lower[i]).ratio()
            contains = all(w in self._lower[i] for w in words)
            joined = squeezed in self._lower[i].replace(" ", "")
            if ratio >= _MIN_RATIO or contains:
                score = ratio + (0.5 if contains else 0.0) + (0.3 if joined else 0.0)
                scored.append((score, -len(self._lower[i]), i))
        scored.sort(reverse=True)
        return [self._names[i] for _, _, i in scored[:limit]]
