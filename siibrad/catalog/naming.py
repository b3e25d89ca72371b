"""siibra's naming rules: how names are cleaned, keys derived, words split, species spelled.

Every identifier siibrad exposes (a region's ``key`` and ``id``, a parcellation's ``key``) must
equal the one siibra-python computes, because users paste them from notebooks, papers and the
siibra explorer. These functions reproduce siibra's rules (``siibra.commons.clear_name`` and
``create_key``, the word splitting of ``Region.matches``) byte for byte; they are pure and cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

_REMOVED_FROM_NAMES = ("hemisphere", " -", "-brain", "both", "Both")
"""Substrings siibra deletes from every region and parcellation name, in this order."""

_REPLACED_IN_NAMES = (("ctx-lh-", "left "), ("ctx-rh-", "right "))
"""FreeSurfer prefixes siibra rewrites into the words "left"/"right"."""

_REGION_WORD_SEPARATORS = re.compile(r"[^a-zA-Z0-9.\-]")
_CONCEPT_WORD_SEPARATORS = re.compile(r"[ -]")
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def clean_name(name: str) -> str:
    """The name as siibra cleans it at construction (``clear_name``).

    >>> clean_name("Area hOc1 (V1, 17, CalcS) - left hemisphere")
    'Area hOc1 (V1, 17, CalcS) left'
    >>> clean_name("ctx-lh-insula")
    'left insula'
    """
    result = name
    for removed in _REMOVED_FROM_NAMES:
        result = result.replace(removed, "")
    for search, replacement in _REPLACED_IN_NAMES:
        result = result.replace(search, replacement)
    return " ".join(word for word in result.split(" ") if word)


def create_key(name: str) -> str:
    """siibra's key of a name: alphanumerics upper-cased, every other run joined by "_".

    >>> create_key("Area hOc1 (V1, 17, CalcS) left")
    'AREA_HOC1_V1_17_CALCS_LEFT'
    """
    # ``[\W_]`` is exactly "not str.isalnum()", the test siibra applies per character.
    return _NOT_ALPHANUMERIC.sub(" ", name).upper().strip().replace(" ", "_")


def region_words(text: str) -> list[str]:
    """Words of a region name or spec as ``Region.matches`` splits them (before lower-casing).

    >>> region_words("Area 4a (PreCG) left")
    ['Area', '4a', 'PreCG', 'left']
    """
    return [w for w in _REGION_WORD_SEPARATORS.split(text) if w]


@lru_cache(maxsize=16384)
def name_words(name: str) -> frozenset[str]:
    """The lower-case words a region name offers to word matching (``W`` in siibra).

    Memoised (bounded): the Julich-Brain versions and hemispheres repeat most names.
    """
    return frozenset(region_words(clean_name(name.lower())))


def spec_words(spec: str) -> list[str]:
    """The lower-case words a region spec must all find in a name (``Q`` in siibra).

    siibra cleans the spec *before* lower-casing it, so "Hemisphere" survives as a word while
    "hemisphere" is dropped; reproduced on purpose.

    >>> spec_words("hOc1 - left hemisphere")
    ['hoc1', 'left']
    """
    return [w.lower() for w in region_words(clean_name(spec))]


def concept_words(spec: str) -> list[str]:
    """Words of an atlas/space/map spec (``AtlasConcept.matches`` splits on spaces and hyphens).

    >>> concept_words("icbm-2009c nonlinear")
    ['icbm', '2009c', 'nonlinear']
    """
    return _CONCEPT_WORD_SEPARATORS.split(spec)


def squeezed_name(name: str) -> str:
    """The lower-case cleaned name without spaces, in which concept spec words are searched.

    >>> squeezed_name("MNI 152 ICBM 2009c Nonlinear Asymmetric")
    'mni152icbm2009cnonlinearasymmetric'
    """
    return clean_name(name.lower()).replace(" ", "")


_SPECIES_BY_KG_UUID: Mapping[str, str] = {
    "0ea4e6ba-2681-4f7d-9fa9-49b915caaac9": "homo sapiens",
    "f3490d7f-8f7f-4b40-b238-963dcac84412": "rattus norvegicus",
    "cfc1656c-67d1-4d2c-a17e-efd7ce0df88c": "mus musculus",
    "c541401b-69f4-4809-b6eb-82594fc90551": "macaca fascicularis",
    "745712aa-fad1-47c4-8ab6-088063f78f64": "macaca mulatta",
    "ed8254b1-519c-4356-b1c9-7ead5aa1e3e1": "macaca fuscata",
    "e578d886-c55d-4174-976b-3cf43b142203": "chlorocebus aethiops sabaeus",
    "97c070c6-8e1f-4ee8-9d28-18c7945921dd": "homo sapiens",
    "ab532423-1fd7-4255-8c6f-f99dc6df814f": "rattus norvegicus",
    "d9875ebd-260e-4337-a637-b62fed4aa91d": "mus musculus",
    "0b6df2b3-5297-40cf-adde-9443d3d8214a": "macaca fascicularis",
    "3ad33ec1-5152-497d-9352-1cf4497e0edd": "macaca mulatta",
    "2ab3ecf5-76cc-46fa-98ab-309e3fd50f57": "macaca fuscata",
    "b8bf99e7-0914-4b65-a386-d785249725f1": "chlorocebus aethiops sabaeus",
}
"""siibra's table of EBRAINS KG species ids (openMINDS and MINDS)."""

_KNOWN_SPECIES = frozenset(
    {
        "homo sapiens",
        "rattus norvegicus",
        "mus musculus",
        "macaca fascicularis",
        "macaca mulatta",
        "macaca fuscata",
        "chlorocebus aethiops sabaeus",
        "callithrix jacchus",
    }
)


def species_name(spec: object) -> str | None:
    """A configured species (name, KG id, or a dict/list of those) spelled as siibra prints it.

    >>> species_name("Callithrix Jacchus")
    'Callithrix jacchus'
    >>> species_name({"openminds/Species": "97c070c6-8e1f-4ee8-9d28-18c7945921dd"})
    'Homo sapiens'
    """
    if isinstance(spec, str):
        by_id = _SPECIES_BY_KG_UUID.get(spec.rsplit("/", 1)[-1])
        name = by_id or " ".join(spec.split()).lower()
        return name.capitalize() if name in _KNOWN_SPECIES else None
    values: Iterable[object]
    if isinstance(spec, Mapping):
        values = spec.values()
    elif isinstance(spec, list | tuple | set):
        values = spec
    else:
        return None
    for value in values:
        found = species_name(value)
        if found is not None:
            return found
    return None
