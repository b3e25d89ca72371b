"""Spec resolution with siibra's semantics: regions, concepts, maps, errors and bad input."""

from __future__ import annotations

import contextlib
import re
import threading
from difflib import SequenceMatcher
from pathlib import Path

import pytest

from siibrad.catalog import MAX_SPEC_CHARS, Catalog
from siibrad.catalog.model import MapType
from siibrad.errors import (
    AmbiguousRegionError,
    AtlasNotFoundError,
    InvalidSpecError,
    MapNotFoundError,
    NotFoundError,
    ParcellationNotFoundError,
    RegionNotFoundError,
    SiibradError,
    SpaceNotFoundError,
)
from siibrad.settings import Settings

JBA31 = "minds/core/parcellationatlas/v1.0.0/94c1125b-b87e-45e4-901c-00daee7f2579-310"


@pytest.fixture(scope="module")
def catalog(configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return Catalog.load(
        configuration_dir, settings=Settings(cache_dir=tmp_path_factory.mktemp("c"))
    )


# --- regions: the measured cases of research §1.2 -------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("hoc1 left", "Area hOc1 (V1, 17, CalcS) left"),
        ("Area hOc1 (V1, 17, CalcS) - left hemisphere", "Area hOc1 (V1, 17, CalcS) left"),
        ("4a left", "Area 4a (PreCG) left"),
        ("44 right", "Area 44 (IFG) right"),
        ("AREA_44_IFG_RIGHT", "Area 44 (IFG) right"),
        ("frontal lobe", "frontal lobe"),
        ("hOc1", "Area hOc1 (V1, 17, CalcS)"),
        ("v1", "Area hOc1 (V1, 17, CalcS)"),
        ("amygdala", "amygdala"),
    ],
)
def test_julich_31_specs_resolve_to_one_region(catalog: Catalog, spec: str, name: str) -> None:
    """Each measured spec resolves to exactly the region siibra-python returns."""
    region = catalog.region("julich 3.1", spec)
    assert region.name == name
    assert region.parcellation_id == JBA31


def test_left_amygdala_is_ambiguous_between_seven_nuclei(catalog: Catalog) -> None:
    """'left amygdala' raises AmbiguousRegionError with the 7 left amygdala nuclei, ranked."""
    with pytest.raises(AmbiguousRegionError) as caught:
        catalog.region("julich 3.1", "left amygdala")
    candidates = caught.value.candidates
    assert len(candidates) == 7
    assert all("Amygdala" in c["name"] and c["name"].endswith("left") for c in candidates)
    assert {"name", "id", "key", "parcellation_id"} <= set(candidates[0])
    ratios = [SequenceMatcher(None, c["name"], "left amygdala").ratio() for c in candidates]
    assert ratios == sorted(ratios, reverse=True)  # siibra's ranking: closest name first


def test_regex_spec_matching_two_areas_is_ambiguous(catalog: Catalog) -> None:
    """A /regex/ spec searches names and keys; two matches are ambiguous."""
    with pytest.raises(AmbiguousRegionError) as caught:
        catalog.region("julich 3.1", "/^Area 4[ap].*left$/")
    assert sorted(c["name"] for c in caught.value.candidates) == [
        "Area 4a (PreCG) left",
        "Area 4p (PreCG) left",
    ]


def test_regex_flags_and_single_match(catalog: Catalog) -> None:
    """Flags after the closing slash apply (i = ignore case); one match resolves."""
    region = catalog.region("julich 3.1", "/^area hoc1 .*left$/i")
    assert region.name == "Area hOc1 (V1, 17, CalcS) left"


def test_v_rule_and_word_equality(catalog: Catalog) -> None:
    """Words must equal name words ('1' also finds 'v1'); no substring matching ('area 4')."""
    with pytest.raises(AmbiguousRegionError) as caught:
        catalog.region("julich 3.1", "1")
    names = {c["name"] for c in caught.value.candidates}
    assert "Area hOc1 (V1, 17, CalcS)" in names and "Area 1 (PostCG)" in names
    with pytest.raises(RegionNotFoundError):
        catalog.region("julich 3.1", "area 4")


def test_exact_names_keys_and_ids_resolve(catalog: Catalog) -> None:
    """A region's exact name, key or id (any case) resolves to it."""
    region = catalog.region("julich 3.1", "hoc1 left")
    for spec in (region.name, region.key, region.id, region.id.lower(), region.name.upper()):
        assert catalog.region("julich 3.1", spec) == region
    assert catalog.region("julich 3.1", region) is region


def test_root_matches_the_parcellation_short_name(catalog: Catalog) -> None:
    """The root node answers to the parcellation's short name words, as in siibra."""
    assert catalog.region("julich 3.1", "julich").id == JBA31


def test_legacy_group_specs(catalog: Catalog) -> None:
    """'Group: a, b' resolves each part; two different regions are ambiguous, one resolves."""
    with pytest.raises(AmbiguousRegionError) as caught:
        catalog.region("julich 3.1", "Group: hOc1 left, hOc2 left")
    assert sorted(c["name"] for c in caught.value.candidates) == [
        "Area hOc1 (V1, 17, CalcS) left",
        "Area hOc2 (V2, 18) left",
    ]
    single = catalog.region("julich 3.1", "Group: Area hOc1 (V1, 17, CalcS) left")
    assert single.name == "Area hOc1 (V1, 17, CalcS) left"


def test_not_found_suggests_close_names(catalog: Catalog) -> None:
    """A spec matching nothing raises RegionNotFoundError with at most 5 close names."""
    with pytest.raises(RegionNotFoundError) as caught:
        catalog.region("julich 3.1", "hoc 1 left")
    error = caught.value
    assert error.suggestions[0] == "Area hOc1 (V1, 17, CalcS) left"
    assert len(error.suggestions) <= 5
    assert error.data["spec"] == "hoc 1 left"
    assert error.to_wire()["data"]["type"] == "RegionNotFoundError"
    with pytest.raises(RegionNotFoundError) as typo:
        catalog.region("desikan", "left precuneous")
    assert "left precuneus" in typo.value.suggestions


def test_find_regions_searches_every_parcellation(catalog: Catalog) -> None:
    """find_regions covers all parcellations in registry order, or just one when scoped."""
    everywhere = catalog.find_regions("hoc1")
    parcellations = [r.parcellation_id for r in everywhere]
    assert JBA31 in parcellations and len(set(parcellations)) >= 4
    order = [p.id for p in catalog.parcellations]
    assert parcellations == sorted(parcellations, key=order.index)
    scoped = catalog.find_regions("hoc1", "julich 3.1")
    assert [r.name for r in scoped] == ["Area hOc1 (V1, 17, CalcS)"]
    unfiltered = catalog.find_regions("hoc1", "julich 3.1", filter_children=False)
    assert len(unfiltered) == 3  # the parent and both hemispheres
    assert catalog.find_regions(re.compile("^Area hOc1"), "julich 3.1")


# --- atlases, spaces, parcellations, maps ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("mni152", "MNI 152 ICBM 2009c Nonlinear Asymmetric"),
        ("icbm", "MNI 152 ICBM 2009c Nonlinear Asymmetric"),
        ("colin27", "MNI Colin 27"),
        ("colin 27", "MNI Colin 27"),
        ("bigbrain", "BigBrain microscopic template (histology)"),
        ("fsaverage", "freesurfer fsaverage6"),
    ],
)
def test_space_specs(catalog: Catalog, spec: str, name: str) -> None:
    """Space specs by name words; several matches: the largest name wins (fsaverage6)."""
    assert catalog.space(spec).name == name


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("julich", "Julich-Brain Cytoarchitectonic Atlas (v3.1)"),
        ("julich 2.9", "Julich-Brain Cytoarchitectonic Atlas (v2.9)"),
        ("jul 3.1", "Julich-Brain Cytoarchitectonic Atlas (v3.1)"),
        ("cytoarchitectonic 3.1", "Julich-Brain Cytoarchitectonic Atlas (v3.1)"),
        ("waxholm", "Waxholm Space atlas of the Sprague Dawley rat brain (v4)"),
        ("difumo 64", "DiFuMo Atlas (64 dimensions)"),
        ("allen 2017", "Allen Mouse Common Coordinate Framework v3 2017"),
        ("cytoarch", "Julich-Brain Cytoarchitectonic Atlas (v3.1)"),
    ],
)
def test_parcellation_specs(catalog: Catalog, spec: str, name: str) -> None:
    """Short-name words, name words, key fallback; the newest version wins."""
    assert catalog.parcellation(spec).name == name


def test_several_parcellations_ranked_newest_first(catalog: Catalog) -> None:
    """find_parcellations lists every match, siibra's winner first."""
    names = [p.short_name for p in catalog.find_parcellations("julich")]
    assert names == [
        "Julich-Brain v3.1",
        "Julich-Brain v3.0.3",
        "Julich-Brain v2.9",
        "Julich-Brain v1.18",
    ]


def test_unknown_parcellation_suggests(catalog: Catalog) -> None:
    """'jba3.1' matches nothing (as in siibra) and suggests Julich-Brain v3.1."""
    with pytest.raises(ParcellationNotFoundError) as caught:
        catalog.parcellation("jba3.1")
    assert caught.value.suggestions[0] == "Julich-Brain v3.1"
    with pytest.raises(SpaceNotFoundError) as space:
        catalog.space("colin28")
    assert "MNI Colin 27" in space.value.suggestions
    with pytest.raises(AtlasNotFoundError) as atlas:
        catalog.atlas("humen")
    assert atlas.value.suggestions == ["Multilevel Human Atlas"]


def test_concepts_by_key_id_and_position(catalog: Catalog) -> None:
    """Exact keys, exact ids and registry positions select one object."""
    human = catalog.atlas("MULTILEVEL_HUMAN_ATLAS")
    assert catalog.atlas(human.id) == human == catalog.atlas(0) == catalog.atlas("human")
    assert catalog.parcellation(JBA31).key == "JULICH_BRAIN_CYTOARCHITECTONIC_ATLAS_V3_1"
    assert catalog.map_by_spec("MNI152_JBA31_LABELLED").id.endswith("mni152-jba31-labelled")


def test_map_resolution(catalog: Catalog) -> None:
    """get_map semantics: space spec matched per map, map type, spec words narrow by id."""
    assert catalog.map("julich 3.1", "mni152").id == "siibra-map-v0.0.1_mni152-jba31-labelled"
    assert catalog.map("julich 3.1", "colin", MapType.LABELLED).id.endswith(
        "colin27-jba31-labelled"
    )
    assert catalog.map("julich 3.1", "mni152", "statistical", "227").id.endswith(
        "jba31_227-continuous"
    )
    first = catalog.map("julich 3.1", "mni152", "statistical")
    assert first.id.endswith("jba31_207-continuous")  # several: the first configured wins
    with pytest.raises(MapNotFoundError) as no_spec:
        catalog.map("julich 3.1", "mni152", "statistical", "xyzzy")
    assert len(no_spec.value.suggestions) == 2
    with pytest.raises(MapNotFoundError) as no_space:
        catalog.map("julich 3.1", "bigbrain")
    assert "MNI 152 ICBM 2009c Nonlinear Asymmetric" in no_space.value.suggestions
    with pytest.raises(InvalidSpecError):
        catalog.map("julich 3.1", "mni152", "probabilistic")


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["", "   ", "\t\n"])
def test_empty_specs_are_invalid(catalog: Catalog, spec: str) -> None:
    """Empty or blank specs raise InvalidSpecError for every kind."""
    for resolve in (catalog.atlas, catalog.space, catalog.parcellation, catalog.map_by_spec):
        with pytest.raises(InvalidSpecError):
            resolve(spec)
    with pytest.raises(InvalidSpecError):
        catalog.region("julich 3.1", spec)
    with pytest.raises(InvalidSpecError):
        catalog.find_regions(spec)


@pytest.mark.parametrize("spec", [None, 3.1, ["hoc1"], b"hoc1", {"name": "hoc1"}])
def test_non_string_specs_are_invalid(catalog: Catalog, spec: object) -> None:
    """Specs that are not strings raise InvalidSpecError naming the type."""
    with pytest.raises(InvalidSpecError, match="must be a string"):
        catalog.region("julich 3.1", spec)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError, match="must be a string"):
        catalog.parcellation(spec)  # type: ignore[arg-type]


def test_absurdly_long_specs_are_invalid(catalog: Catalog) -> None:
    """Specs longer than MAX_SPEC_CHARS (1,000) are refused before any matching."""
    long_spec = "hoc1 " * (MAX_SPEC_CHARS // 5 + 1)
    with pytest.raises(InvalidSpecError, match="1000"):
        catalog.region("julich 3.1", long_spec)
    with pytest.raises(InvalidSpecError):
        catalog.space("x" * (MAX_SPEC_CHARS + 1))
    assert catalog.region("julich 3.1", ("hoc1 left " + " " * MAX_SPEC_CHARS)[:MAX_SPEC_CHARS])


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("/foo(/", "missing \\), unterminated subpattern"),
        ("/[a-/", "bad character range|unterminated character set"),
        ("/hoc1/q", "flag"),
        ("/hoc1/L", "cannot use 'L' flag"),
    ],
)
def test_invalid_regex_names_the_problem(catalog: Catalog, spec: str, problem: str) -> None:
    """A /regex/ that does not compile, or an unknown flag, raises InvalidSpecError saying why."""
    with pytest.raises(InvalidSpecError, match=problem):
        catalog.region("julich 3.1", spec)


@pytest.mark.parametrize("spec", ["hemisphere", "both", "()", "//", " - "])
def test_specs_without_words_are_invalid(catalog: Catalog, spec: str) -> None:
    """A spec with no word left after siibra's cleaning would match everything: refused."""
    with pytest.raises(InvalidSpecError, match="no word"):
        catalog.region("julich 3.1", spec)


def test_unknown_parcellation_for_a_region(catalog: Catalog) -> None:
    """region() with a parcellation spec that matches nothing raises ParcellationNotFoundError."""
    with pytest.raises(ParcellationNotFoundError):
        catalog.region("no such atlas", "hoc1")


# --- memo -----------------------------------------------------------------------------------------


def test_repeated_failures_raise_fresh_errors(catalog: Catalog) -> None:
    """A memoised failure is raised again as a new exception with the same message and data."""
    errors = []
    for _ in range(3):
        with pytest.raises(NotFoundError) as caught:
            catalog.region("julich 3.1", "xyzzy plugh")
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].message == errors[2].message and errors[0].data == errors[2].data
    assert type(errors[1]) is RegionNotFoundError


def test_memo_stays_bounded(configuration_dir: Path) -> None:
    """A catalogue with a small memo keeps at most that many resolutions."""
    small = Catalog.load(configuration_dir, memo_size=8)
    for i in range(50):
        with contextlib.suppress(SiibradError):
            small.region("julich 3.1", f"area {i}")
    assert small.memo_stats()["size"] <= 8


def test_concurrent_resolution_gives_the_same_answers(catalog: Catalog) -> None:
    """Threads resolving the same specs at once all get the same regions."""
    specs = ["hoc1 left", "4a left", "44 right", "amygdala", "frontal lobe", "v1"] * 20
    expected = [catalog.region("julich 3.1", s).id for s in specs]
    results: list[list[str]] = []

    def work() -> None:
        results.append([catalog.region("julich 3.1", s).id for s in specs])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected] * 4


def test_configured_name_wins_over_a_longer_word_match(catalog: Catalog) -> None:
    """A region's exact configured name resolves to it, where siibra also matches VLP."""
    spec = "LP (Thalamus, lateral posterior Nucleus) - right hemisphere"
    region = catalog.region("julich 3.1", spec)
    assert region.configured_name == spec
    assert region.name == "LP (Thalamus, lateral posterior Nucleus) right"
    with pytest.raises(AmbiguousRegionError):
        catalog.region("julich 3.1", "lateral posterior nucleus right")
