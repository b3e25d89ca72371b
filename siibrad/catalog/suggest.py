"""'Did you mean' suggestions for specs that match nothing.

Names and specs are compared in a normal form that keeps only lower-case letters and digits,
so a name, its siibra key and a sloppy spelling meet: "hoc 1", "HOC1" and "AREA_HOC1_V1_17_CALCS"
all contain "hoc1". difflib over thousands of names costs milliseconds per miss, too slow for a
daemon that answers in microseconds, so ``Suggester`` keeps a trigram inverted index, takes the
few dozen names sharing the most informative trigrams with the spec (plus every name that
contains the spec or is contained in it), and ranks only those with ``difflib``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import pairwise

MAX_SUGGESTIONS = 5
_SHORTLIST = 16
_MIN_RATIO = 0.5
_MIN_WORD_RATIO = 0.75
_NOT_ALNUM = re.compile(r"[\W_]+")


def normal_form(text: str) -> str:
    """Lower-case letters and digits only.

    >>> normal_form("Area hOc1 (V1, 17, CalcS)")
    'areahoc1v117calcs'
    """
    return _NOT_ALNUM.sub("", text.lower())


def _trigrams(text: str) -> set[str]:
    padded = f"^{text}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


@lru_cache(maxsize=16384)
def _analysed(name: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
    """Normal form, trigrams and word normal forms of a name (bounded memo: the Julich-Brain
    versions and the hemispheres repeat most names across parcellations)."""
    normal = normal_form(name)
    words = frozenset(w for w in map(normal_form, name.split()) if w)
    return normal, tuple(_trigrams(normal)), words


class Suggester:
    """Close names for a spec, best first; built once from the names it may suggest."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = list(dict.fromkeys(n for n in names if n))
        analysed = [_analysed(n) for n in self._names]
        self._normal = [normal for normal, _, _ in analysed]
        self._words = [words for _, _, words in analysed]
        self._by_trigram: dict[str, list[int]] = {}
        for i, (_, grams, _) in enumerate(analysed):
            for gram in grams:
                postings = self._by_trigram.get(gram)
                if postings is None:
                    self._by_trigram[gram] = [i]
                else:
                    postings.append(i)
        # Trigrams shared by a quarter of all names ("are" of "Area") rank nothing.
        self._common_limit = max(32, len(self._names) // 4)

    def suggest(self, spec: str, limit: int = MAX_SUGGESTIONS) -> list[str]:
        """Up to ``limit`` names close to ``spec``, best first.

        A name qualifies when its normal form is similar to the spec's (difflib ratio ≥ 0.5),
        one contains the other, or the spec's words are, on average, 75 % similar to words of
        the name. Ranked by that similarity, then by how many spec words and joined word
        pairs ("hoc" "1" → "hoc1") the name contains.

        >>> names = ["Area hOc1 (V1, 17, CalcS)", "Area hOc2 (V2, 18)", "Area 44 (IFG)"]
        >>> Suggester(names).suggest("hoc 1")
        ['Area hOc1 (V1, 17, CalcS)', 'Area hOc2 (V2, 18)']
        >>> Suggester(names).suggest("AREA_44_IFG_LEFT")
        ['Area 44 (IFG)']
        """
        query = normal_form(spec)
        if not query or not self._names:
            return []
        shared: Counter[int] = Counter()
        for gram in _trigrams(query):
            postings = self._by_trigram.get(gram, ())
            if len(postings) <= self._common_limit:
                shared.update(postings)
        shortlist = {i for i, _ in shared.most_common(_SHORTLIST)}
        if len(query) >= 3:
            shortlist.update(
                i for i, n in enumerate(self._normal) if query in n or (len(n) >= 3 and n in query)
            )
        words = [normal_form(w) for w in spec.split()]
        words = [w for w in words if w]
        pieces = words + [a + b for a, b in pairwise(words)]
        matcher = SequenceMatcher(None, "", query)
        scored: dict[int, tuple[float, int, int]] = {}
        for i in shortlist:
            normal = self._normal[i]
            matcher.set_seq1(normal)
            inside = query in normal or normal in query
            # quick_ratio bounds ratio from above and is much cheaper.
            if inside or matcher.quick_ratio() >= _MIN_RATIO:
                ratio = matcher.ratio()
                if inside or ratio >= _MIN_RATIO:
                    scored[i] = self._score(ratio, inside, normal, pieces, i)
        if len(scored) < limit:  # few close names: look for a typo in one word
            for i, typo in self._word_scores(words, shortlist - scored.keys()).items():
                if typo >= _MIN_WORD_RATIO:
                    scored[i] = self._score(typo, False, self._normal[i], pieces, i)
        ranked = sorted(scored.values(), reverse=True)
        return [self._names[i] for _, _, i in ranked[:limit]]

    @staticmethod
    def _score(
        similarity: float, inside: bool, normal: str, pieces: list[str], i: int
    ) -> tuple[float, int, int]:
        covered = sum(p in normal for p in pieces) / len(pieces) if pieces else 0.0
        return (similarity + (0.5 if inside else 0.0) + covered, -len(normal), i)

    def _word_scores(self, words: list[str], shortlist: set[int]) -> dict[int, float]:
        """Per name, the mean over spec words of the best similarity to one of its words.

        Catches typos in one word of a long name ("humen" → "Multilevel Human Atlas").
        """
        vocabulary = {w for i in shortlist for w in self._words[i]}
        best_for: list[dict[str, float]] = []
        for word in words:
            matcher = SequenceMatcher(None, "", word)
            scores: dict[str, float] = {}
            for candidate in vocabulary:
                matcher.set_seq1(candidate)
                # Upper bounds first: ratio() is the expensive call.
                if (
                    matcher.real_quick_ratio() >= _MIN_WORD_RATIO
                    and matcher.quick_ratio() >= _MIN_WORD_RATIO
                ):
                    scores[candidate] = matcher.ratio()
            best_for.append(scores)
        if not best_for:
            return {}
        return {
            i: sum(max((s.get(w, 0.0) for w in self._words[i]), default=0.0) for s in best_for)
            / len(best_for)
            for i in shortlist
        }
