"""The catalogue's model and loading: counts, ids and keys, trees, extensions, broken files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from siibrad.catalog import Catalog
from siibrad.catalog.loader import FOLDERS
from siibrad.catalog.model import MapType, Region
from siibrad.errors import (
    ConfigurationError,
    ConfigurationUnavailableError,
    InvalidSpecError,
    RegionNotFoundError,
)
from siibrad.settings import Settings

JBA31 = "minds/core/parcellationatlas/v1.0.0/94c1125b-b87e-45e4-901c-00daee7f2579-310"
JBA303 = "minds/core/parcellationatlas/v1.0.0/94c1125b-b87e-45e4-901c-00daee7f2579-300"
MNI152 = "minds/core/referencespace/v1.0.0/dafcffc5-4826-4bf1-8ff6-46b8a31ff8e2"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def catalog(configuration_dir: Path, settings: Settings) -> Catalog:
    return Catalog.load(configuration_dir, settings=settings)


@pytest.fixture
def configuration_copy(configuration_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A writable copy of the folders the catalogue reads (features/ is not needed)."""
    copy = tmp_path / "configuration"
    for folder in FOLDERS:
        shutil.copytree(configuration_dir / folder, copy / folder)
    yield copy


# --- the real configuration -------------------------------------------------------------------


def test_every_file_of_the_export_parses_with_the_published_counts(catalog: Catalog) -> None:
    """5 atlases, 10 spaces, 29 parcellations, 63 maps, 9,755 region nodes, no problem."""
    assert catalog.counts() == {
        "atlases": 5,
        "spaces": 10,
        "parcellations": 29,
        "maps": 63,
        "regions": 9755,
    }
    assert catalog.problems == ()


def test_catalog_source_describes_the_folder(catalog: Catalog, configuration_dir: Path) -> None:
    """catalog.source is the store's ConfigurationSource: the folder itself, with a digest."""
    assert catalog.source.kind == "folder"
    assert catalog.source.root == configuration_dir
    assert catalog.source.digest


def test_registries_keep_siibras_keys_and_order(catalog: Catalog) -> None:
    """Keys are siibra's (upper-case, underscores) and registries follow sorted file order."""
    assert [a.key for a in catalog.atlases] == [
        "MULTILEVEL_HUMAN_ATLAS",
        "PRERELEASE_MARMOSET_ATLAS",
        "MONKEY_ATLAS",
        "ALLEN_MOUSE_COMMON_COORDINATE_FRAMEWORK_V3",
        "WAXHOLM_SPACE_ATLAS_OF_THE_SPRAGUE_DAWLEY_RAT_BRAIN",
    ]
    assert catalog.atlases[1].name == "[PRERELEASE] Marmoset Atlas"
    assert catalog.spaces[0].key == "BIGBRAIN_MICROSCOPIC_TEMPLATE_HISTOLOGY"
    assert catalog.parcellations[0].key == "DEEP_WHITE_MATTER_FIBRE_BUNDLES"


def test_region_names_keys_and_ids_follow_siibra(catalog: Catalog) -> None:
    """Cleaned name, key and <PARCELLATION_KEY>_<REGION_KEY> id, as siibra-python builds them."""
    region = catalog.region("julich 3.1", "hoc1 left")
    assert region.configured_name == "Area hOc1 (V1, 17, CalcS) - left hemisphere"
    assert region.name == "Area hOc1 (V1, 17, CalcS) left"
    assert region.key == "AREA_HOC1_V1_17_CALCS_LEFT"
    assert region.id == "JULICH_BRAIN_CYTOARCHITECTONIC_ATLAS_V3_1_AREA_HOC1_V1_17_CALCS_LEFT"
    assert region.parcellation_id == JBA31
    mouse = catalog.region("allen 2017", "Primary visual area")
    assert mouse.id == "ALLEN_MOUSE_COMMON_COORDINATE_FRAMEWORK_V3_2017_PRIMARY_VISUAL_AREA"
    assert mouse.rgb == (8, 133, 140)
    assert catalog.parcellation("julich 3.1").root.id == JBA31


def test_regions_carry_ontology_ids(catalog: Catalog) -> None:
    """EBRAINS ids of a region are kept as (kind, id) pairs, as configured."""
    region = catalog.region("julich 2.9", "hoc1 left")
    assert region.ontology_ids == (
        ("minds/core/parcellationregion/v1.0.0", "5151ab8f-d8cb-4e67-a449-afe2a41fb007"),
    )


def test_parcellation_version_chain(catalog: Catalog) -> None:
    """Julich-Brain versions link prev/next; the newest has no next."""
    newest = catalog.parcellation("julich 3.1")
    assert newest.version is not None
    assert newest.version.name == "3.1.0"
    assert newest.version.next_id is None
    assert newest.version.prev_id == JBA303
    previous = catalog.parcellation(newest.version.prev_id)
    assert previous.version is not None and previous.version.next_id == newest.id
    assert catalog.parcellation("desikan").version is None


def test_maps_carry_volumes_fragments_and_indices(catalog: Catalog) -> None:
    """A labelled map with hemisphere fragments, a sparse statistical map, 4D z indices."""
    labelled = catalog.map("julich 3.1", "mni152")
    assert labelled.id == "siibra-map-v0.0.1_mni152-jba31-labelled"
    assert labelled.key == "MNI152_JBA31_LABELLED"
    assert labelled.maptype is MapType.LABELLED and not labelled.sparse
    assert labelled.space_id == MNI152 and labelled.parcellation_id == JBA31
    assert labelled.volumes[0].fragments == ("left hemisphere", "right hemisphere")
    assert {p.format for p in labelled.volumes[0].providers} >= {"nii"}
    assert len(labelled.indices) == 414
    first_name, first_indices = labelled.indices[0]
    assert first_indices[0].label is not None and first_indices[0].fragment is not None
    assert first_name in labelled.region_names

    statistical = catalog.map("julich 3.1", "mni152", "statistical", "207")
    assert statistical.maptype is MapType.STATISTICAL and statistical.sparse
    assert len(statistical.volumes) == 414
    assert all(i.label is None for _, ix in statistical.indices for i in ix)

    difumo = catalog.map("difumo 64", "mni152", "statistical")
    zs = sorted(i.z for _, ix in difumo.indices for i in ix if i.z is not None)
    assert zs == list(range(64))


def test_spaces_carry_template_volumes(catalog: Catalog) -> None:
    """Spaces keep their template volumes, with providers and the space id."""
    space = catalog.space("mni152")
    assert space.volumes and all(v.space_id == space.id for v in space.volumes)
    assert space.species == "Homo sapiens"


# --- tree queries -------------------------------------------------------------------------------


def test_julich_31_tree_sizes(catalog: Catalog) -> None:
    """Julich-Brain 3.1: 771 descendants and 454 leaves under the root (siibra's numbers)."""
    root = catalog.parcellation("julich 3.1").root
    assert len(catalog.descendants(root)) == 771
    assert len(catalog.leaves(root)) == 454


def test_parent_children_path_and_ancestors_agree(catalog: Catalog) -> None:
    """path = ancestors + self, root first; each node is among its parent's children."""
    region = catalog.region("julich 3.1", "hoc1 left")
    path = catalog.path(region)
    assert [r.name for r in path] == [
        "Julich-Brain Cytoarchitectonic Atlas (v3.1)",
        "telencephalon",
        "cerebral cortex",
        "occipital lobe",
        "occipital cortex",
        "Area hOc1 (V1, 17, CalcS)",
        "Area hOc1 (V1, 17, CalcS) left",
    ]
    assert catalog.ancestors(region) == path[:-1]
    parent = catalog.parent(region)
    assert parent is not None and region in catalog.children(parent)
    assert catalog.leaves(region) == (region,)
    assert catalog.parent(path[0]) is None
    assert catalog.parcellation_of(region).id == JBA31


def test_descendants_are_pre_order_and_leaves_have_no_children(catalog: Catalog) -> None:
    """descendants lists the subtree in pre-order; leaves are exactly its childless nodes."""
    amygdala = catalog.region("julich 3.1", "amygdala")
    below = catalog.descendants(amygdala)
    assert [r.index for r in below] == sorted(r.index for r in below)
    assert all(amygdala in catalog.ancestors(r) for r in below)
    assert catalog.leaves(amygdala) == tuple(r for r in below if not r.children)


def test_region_by_id_round_trips_every_region(catalog: Catalog) -> None:
    """Every region is found again by its id (the first node when siibra's ids collide)."""
    for parcellation in catalog.parcellations:
        for region in parcellation.regions:
            assert catalog.region_by_id(region.id).id == region.id


def test_region_by_unknown_id_suggests_regions(catalog: Catalog) -> None:
    """An unknown id raises RegionNotFoundError with close ids of the same parcellation."""
    with pytest.raises(RegionNotFoundError) as caught:
        catalog.region_by_id("JULICH_BRAIN_CYTOARCHITECTONIC_ATLAS_V3_1_AREA_HOC1_LEFT")
    assert "JULICH_BRAIN_CYTOARCHITECTONIC_ATLAS_V3_1_AREA_HOC1_V1_17_CALCS_LEFT" in (
        caught.value.suggestions
    )


def test_tree_queries_refuse_foreign_regions(catalog: Catalog) -> None:
    """A Region that is not from this catalogue is refused, not silently misread."""
    stranger = Region(
        id="X_Y", name="Y", configured_name="Y", key="Y", parcellation_id=JBA31,
        index=3, parent=None, children=(), depth=0,
    )  # fmt: skip
    with pytest.raises(RegionNotFoundError):
        catalog.parent(stranger)
    with pytest.raises(InvalidSpecError):
        catalog.children("hoc1")  # type: ignore[arg-type]


# --- extensions -----------------------------------------------------------------------------------


def test_fsl_juelich_extension_loads_on_top(
    configuration_dir: Path, shared_data: Path, settings: Settings
) -> None:
    """extend_configuration semantics: one more parcellation with 121 leaves and two maps."""
    extension = shared_data / "extensions" / "fsl-juelich"
    extended = Catalog.load(configuration_dir, [extension], settings=settings)
    assert extended.counts()["parcellations"] == 30
    assert extended.counts()["maps"] == 65
    assert extended.problems == ()
    fsl = extended.parcellation("fsl juelich")
    assert fsl.name == "FSL Juelich Histological Atlas (FSL 4.1.5)"
    assert len(extended.leaves(fsl.root)) == 121
    broca = extended.region("fsl juelich", "Broca's area BA44 left")
    assert broca.name == "Broca's area BA44 left"
    assert (
        extended.map("fsl juelich", "mni152").id == "siibra-map-v0.0.1_mni152-fsl-juelich-labelled"
    )
    statistical = extended.map("fsl juelich", "mni152", "statistical")
    assert statistical.sparse and len(statistical.indices) == 121
    # the official parcellations are untouched by the extension
    assert extended.region("julich 3.1", "hoc1 left").parcellation_id == JBA31


def test_missing_extension_folder_is_an_error(configuration_dir: Path, tmp_path: Path) -> None:
    """An extension that does not exist raises instead of loading without it."""
    with pytest.raises(ConfigurationUnavailableError):
        Catalog.load(configuration_dir, [tmp_path / "nowhere"])


# --- broken configurations ------------------------------------------------------------------------


def _parcellation_file(root: Path, short_name: str) -> Path:
    for path in sorted((root / "parcellations").glob("*.json")):
        if json.loads(path.read_text())["shortName"] == short_name:
            return path
    raise AssertionError(short_name)


def test_malformed_json_file_is_a_problem_and_the_rest_loads(configuration_copy: Path) -> None:
    """A truncated parcellation file is listed with its reason; everything else still loads."""
    broken = _parcellation_file(configuration_copy, "Desikan-Killiany 2006")
    broken.write_text(broken.read_text()[:500])
    catalog = Catalog.load(configuration_copy)
    assert catalog.problems[0].path == str(broken)
    assert "invalid JSON at line" in catalog.problems[0].reason
    assert catalog.counts()["parcellations"] == 28
    assert catalog.region("julich 3.1", "hoc1 left").name == "Area hOc1 (V1, 17, CalcS) left"
    # the two Desikan-Killiany maps now refer to a parcellation that does not exist
    orphans = sorted(Path(p.path).name for p in catalog.problems[1:])
    assert orphans == ["colin27-dk-labelled.json", "mni152-dk-labelled.json"]
    assert catalog.counts()["maps"] == 61


def test_strict_load_names_the_broken_file(configuration_copy: Path) -> None:
    """Catalog.load(strict=True) raises ConfigurationError naming the file and the reason."""
    broken = _parcellation_file(configuration_copy, "Desikan-Killiany 2006")
    broken.write_text("{ not json")
    with pytest.raises(ConfigurationError) as caught:
        Catalog.load(configuration_copy, strict=True)
    assert str(broken) in caught.value.message
    assert caught.value.data["problems"][0]["path"] == str(broken)


def test_map_with_unknown_space_or_parcellation_is_a_problem(configuration_copy: Path) -> None:
    """A map referring to a space or parcellation that does not exist is left out, not a crash."""
    maps = configuration_copy / "maps"
    lost_space = json.loads((maps / "mni152-jba31-labelled.json").read_text())
    lost_space["space"] = {"@id": "nowhere/space"}
    (maps / "mni152-jba31-labelled.json").write_text(json.dumps(lost_space))
    lost_parcellation = json.loads((maps / "colin27-dk-labelled.json").read_text())
    lost_parcellation["parcellation"] = {"@id": "nowhere/parcellation"}
    (maps / "colin27-dk-labelled.json").write_text(json.dumps(lost_parcellation))
    catalog = Catalog.load(configuration_copy)
    reasons = {Path(p.path).name: p.reason for p in catalog.problems}
    assert "unknown space 'nowhere/space'" in reasons["mni152-jba31-labelled.json"]
    assert "unknown parcellation" in reasons["colin27-dk-labelled.json"]
    assert catalog.counts()["maps"] == 61


def test_wrong_type_and_missing_fields_are_named(configuration_copy: Path) -> None:
    """A spec with the wrong @type, a missing name or a bad colour names what is wrong."""
    spaces = sorted((configuration_copy / "spaces").glob("*.json"))
    wrong_type = json.loads(spaces[0].read_text())
    wrong_type["@type"] = "siibra/parcellation/v0.0.1"
    spaces[0].write_text(json.dumps(wrong_type))
    no_name = json.loads(spaces[1].read_text())
    del no_name["name"]
    spaces[1].write_text(json.dumps(no_name))
    parcellation = _parcellation_file(configuration_copy, "Desikan-Killiany 2006")
    spec = json.loads(parcellation.read_text())
    spec["regions"][0]["children"][0]["rgb"] = "#12"
    parcellation.write_text(json.dumps(spec))
    (configuration_copy / "atlases" / "list.json").write_text("[1, 2]")
    catalog = Catalog.load(configuration_copy)
    reasons = {Path(p.path).name: p.reason for p in catalog.problems}
    assert "does not belong in spaces/" in reasons[spaces[0].name]
    assert "missing field 'name'" in reasons[spaces[1].name]
    assert "rgb '#12'" in reasons[parcellation.name]
    assert "one JSON object" in reasons["list.json"]
    assert catalog.counts()["spaces"] == 8


def test_a_folder_that_is_no_configuration_is_refused(tmp_path: Path) -> None:
    """Pointing the catalogue at an unrelated folder raises ConfigurationError."""
    (tmp_path / "notes").mkdir()
    with pytest.raises(ConfigurationError):
        Catalog.load(tmp_path)
