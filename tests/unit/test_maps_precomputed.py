"""A labelled map served as neuroglancer precomputed, added by an extension, through MapStore.

The extension is written at test time: Julich-Brain 3.1's left hemisphere in MNI152, whose only
provider is ``neuroglancer/precomputed`` at the mirror's copy of ``precomputed/jba31-mpm-lh-cseg``
(compressed_segmentation, converted from the same NIfTI the configuration's own map uses), with
the left-hemisphere label → region indices of the configuration's ``mni152-jba31-labelled.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers.mirror import *  # noqa: F403  (the fixtures)
from helpers.mirror import EXTENSION_PLACEHOLDER, MirrorServer, mirror_settings_for

from siibrad.catalog import Catalog
from siibrad.catalog.model import Map
from siibrad.maps.store import MapStore
from siibrad.maps.volumes import volume_parts
from siibrad.store.fetch import HttpFetcher

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "scripts"))
from record_siibra_assignments import allen_points  # noqa: E402

LEFT = "left hemisphere"
MAP_ID = "siibrad-test-map_mni152-jba31-lh-precomputed"


def write_extension(configuration: Path, folder: Path) -> Path:
    """An extension folder with one map: JBA 3.1 left hemisphere as neuroglancer precomputed."""
    official = json.loads((configuration / "maps" / "mni152-jba31-labelled.json").read_text())
    left = {
        name: indices
        for name, indices in official["indices"].items()
        if all(ix.get("fragment") == LEFT for ix in indices)
    }
    spec = {
        "@id": MAP_ID,
        "@type": "siibra/map/v0.0.1",
        "name": "Julich-Brain 3.1 left hemisphere MPM (neuroglancer precomputed, test)",
        "space": official["space"],
        "parcellation": official["parcellation"],
        "volumes": [
            {
                "@type": "siibra/volume/v0.0.1",
                "providers": {
                    "neuroglancer/precomputed": {
                        LEFT: f"{EXTENSION_PLACEHOLDER}precomputed/jba31-mpm-lh-cseg"
                    }
                },
            }
        ],
        "indices": left,
    }
    (folder / "maps").mkdir(parents=True)
    (folder / "maps" / "mni152-jba31-lh-precomputed.json").write_text(json.dumps(spec))
    return folder


@pytest.fixture(scope="module")
def extended(configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The configuration plus the precomputed extension."""
    folder = write_extension(configuration_dir, tmp_path_factory.mktemp("ng-extension"))
    return Catalog.load(configuration_dir, extensions=[folder], strict=True)


@pytest.fixture(scope="module")
def lh_precomputed(extended: Catalog) -> Map:
    found = extended.map("julich 3.1", "mni152", "labelled", spec="precomputed")
    assert found.id == MAP_ID
    return found


@pytest.fixture(scope="module")
def precomputed_store(
    mirror_server: MirrorServer, tmp_path_factory: pytest.TempPathFactory, extended: Catalog
) -> MapStore:
    settings = mirror_settings_for(mirror_server, tmp_path_factory.mktemp("ng-cache"))
    return MapStore(settings, HttpFetcher(settings), extended)


def test_the_extension_map_reads_the_precomputed_provider(lh_precomputed: Map) -> None:
    """Its one part is the left hemisphere in neuroglancer/precomputed (no NIfTI to prefer)."""
    parts = volume_parts(lh_precomputed)
    assert [(p.format, p.fragment) for p in parts] == [("neuroglancer/precomputed", LEFT)]
    assert len(lh_precomputed.indices) == 207


def test_assign_v1_point_in_the_precomputed_map(
    precomputed_store: MapStore, lh_precomputed: Map
) -> None:
    """MNI (−10, −92, 2) is voxel (68, 23, 80): label 91, Area hOc1 (V1, 17, CalcS) left."""
    result = precomputed_store.assign(lh_precomputed, [[-10.0, -92.0, 2.0]])
    columns = result.columns()
    assert columns["label"].tolist() == [91]
    assert columns["region"] == ["Area hOc1 (V1, 17, CalcS) left"]
    assert columns["fragment"] == [LEFT]
    assert result.missing_regions == ()


def test_allen_samples_agree_with_the_nifti_maps_left_fragment(
    shared_data: Path,
    precomputed_store: MapStore,
    lh_precomputed: Map,
    shared_map_store: MapStore,
    maps_catalog: Catalog,
) -> None:
    """Allen samples: (point, region, label) rows equal the NIfTI map's left-hemisphere rows."""
    points = allen_points(shared_data)
    ours = precomputed_store.assign(lh_precomputed, points)
    nifti_map = maps_catalog.map("julich 3.1", "mni152", "labelled")
    theirs = shared_map_store.assign(nifti_map, points)

    def rows(result, fragment_only: bool) -> set[tuple[int, str, int]]:
        return {
            (p, name, label)
            for p, name, label, fragment in zip(
                result.point.tolist(),
                result.region_names(),
                result.label.tolist(),
                result.columns()["fragment"],
                strict=True,
            )
            if not fragment_only or fragment == LEFT
        }

    expected = rows(theirs, fragment_only=True)
    assert len(expected) > 1000
    assert rows(ours, fragment_only=False) == expected


def test_max_volume_setting_makes_the_store_read_the_2mm_scale(
    mirror_server: MirrorServer, tmp_path: Path, extended: Catalog, lh_precomputed: Map
) -> None:
    """With SIIBRAD_MAX_VOLUME_MB below the 1 mm size, the map holds the 2 mm scale."""
    base = mirror_settings_for(mirror_server, tmp_path / "cache")
    settings = replace(base, max_volume_bytes=4 * 1024**2)  # uint32: 1 mm 19.5 MiB, 2 mm 2.5
    store = MapStore(settings, HttpFetcher(settings), extended)
    array, affine = store.map_volume(lh_precomputed, 0, LEFT)
    assert array.shape == (79, 99, 83)
    np.testing.assert_allclose(np.diag(affine)[:3], [2.0, 2.0, 2.0])
