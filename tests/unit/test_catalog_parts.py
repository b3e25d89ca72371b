"""The catalogue's small parts: naming rules, the bounded memo, suggestions, doctests."""

from __future__ import annotations

import doctest
import importlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siibrad.catalog.memo import BoundedMemo
from siibrad.catalog.naming import clean_name, create_key, spec_words, species_name
from siibrad.catalog.region_index import compile_regex_spec
from siibrad.catalog.suggest import Suggester
from siibrad.errors import InvalidSpecError, RegionNotFoundError

CATALOG_MODULES = [
    "siibrad.catalog.naming",
    "siibrad.catalog.suggest",
    "siibrad.catalog.concepts",
    "siibrad.catalog.region_index",
]

_TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x17F, blacklist_categories=("Cs",)),
    max_size=40,
)


@pytest.mark.parametrize("module", CATALOG_MODULES)
def test_doctested_examples_hold(module: str) -> None:
    """Every example in the catalogue modules' docstrings runs and gives the shown result."""
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0


@given(_TEXT)
def test_keys_are_the_upper_case_alphanumeric_runs_joined(name: str) -> None:
    """create_key: alphanumeric runs, upper-cased, joined by single underscores."""
    runs = ["".join(g) for alnum, g in itertools.groupby(name, str.isalnum) if alnum]
    assert create_key(name) == "_".join(runs).upper()


@given(_TEXT)
def test_cleaning_is_idempotent_and_squeezes_spaces(name: str) -> None:
    """clean_name leaves no double spaces, no edge spaces, and a second pass changes nothing."""
    cleaned = clean_name(name)
    assert "  " not in cleaned and cleaned == cleaned.strip(" ")
    assert clean_name(cleaned) == cleaned or "hemisphere" in name or "both" in name.lower()


def test_cleaning_examples() -> None:
    """The spellings siibra cleans: hemisphere suffixes, FreeSurfer prefixes, '-brain'."""
    assert clean_name("Area 44 (IFG) - right hemisphere") == "Area 44 (IFG) right"
    assert clean_name("ctx-rh-precuneus") == "right precuneus"
    assert clean_name("whole-brain mask") == "whole mask"
    assert clean_name("Julich-Brain v3.1") == "Julich-Brain v3.1"  # case-sensitive, as in siibra
    assert spec_words("Area 44 (IFG) - both hemispheres") == ["area", "44", "ifg", "s"]


def test_species_spellings() -> None:
    """Species from names, KG ids and dicts; unknown species give None."""
    assert species_name("homo sapiens") == "Homo sapiens"
    assert species_name("Callithrix Jacchus") == "Callithrix jacchus"
    assert species_name("https://x/f3490d7f-8f7f-4b40-b238-963dcac84412") == "Rattus norvegicus"
    assert species_name(["nonsense", "mus musculus"]) == "Mus musculus"
    assert species_name("unicorn") is None and species_name(None) is None


def test_regex_spec_parsing() -> None:
    """/pattern/flags compiles with inline flags; plain strings are not regexes."""
    pattern = compile_regex_spec("/^area/i")
    assert pattern is not None and pattern.search("Area 44")
    assert compile_regex_spec("area/") is None and compile_regex_spec("//") is None
    with pytest.raises(InvalidSpecError, match="'q'"):
        compile_regex_spec("/x/iq")


def test_memo_evicts_the_least_recently_used() -> None:
    """The memo keeps maxsize entries; a hit refreshes an entry, the oldest goes first."""
    memo = BoundedMemo(maxsize=2)
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert memo.get("a", lambda: compute("a")) == "A"
    assert memo.get("b", lambda: compute("b")) == "B"
    assert memo.get("a", lambda: compute("a")) == "A"  # hit: "a" is now the newest
    memo.get("c", lambda: compute("c"))  # evicts "b"
    memo.get("a", lambda: compute("a"))
    memo.get("b", lambda: compute("b"))
    assert calls == ["a", "b", "c", "b"]
    assert len(memo) == 2
    assert memo.stats()["hits"] == 2


def test_memo_remembers_siibrad_errors_but_not_bugs() -> None:
    """SiibradErrors are memoised and re-raised fresh; other exceptions are never memoised."""
    memo = BoundedMemo(maxsize=4)
    calls = 0

    def not_found() -> str:
        nonlocal calls
        calls += 1
        raise RegionNotFoundError("nope", spec="x", suggestions=["y"])

    raised = []
    for _ in range(2):
        with pytest.raises(RegionNotFoundError) as caught:
            memo.get("x", not_found)
        raised.append(caught.value)
    assert calls == 1
    assert raised[0] is not raised[1] and raised[1].suggestions == ["y"]

    def bug() -> str:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    for _ in range(2):
        with pytest.raises(KeyError):
            memo.get("bug", bug)
    assert calls == 3


def test_memo_size_must_be_positive() -> None:
    """A memo of size 0 would be unbounded churn: refused."""
    with pytest.raises(ValueError, match="maxsize"):
        BoundedMemo(maxsize=0)


def test_suggester_limits_and_empty_input() -> None:
    """At most `limit` names; nothing for an empty spec or an empty vocabulary."""
    names = [f"Area {i} (XYZ) left" for i in range(20)]
    suggester = Suggester(names)
    assert len(suggester.suggest("area 1 left", limit=3)) == 3
    assert suggester.suggest("!!!") == []
    assert Suggester([]).suggest("area") == []
    assert suggester.suggest("area 17 left")[0] == "Area 17 (XYZ) left"
