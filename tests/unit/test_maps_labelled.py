"""Labelled maps on real data over the real fetch path: parity with siibra-python and nibabel."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.mirror import *  # noqa: F403  (the fixtures)
from helpers.mirror import MirrorServer, mirror_settings_for

from siibrad.catalog import Catalog
from siibrad.catalog.model import Map
from siibrad.errors import DataUnavailableError, SpaceMismatchError
from siibrad.maps.store import MapStore
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "scripts"))
from record_siibra_assignments import GOLDEN, parity_points  # noqa: E402

JBA31_FILES = {
    "left hemisphere": "julich-brain/v3.1-mpm-mni152/JulichBrainAtlas31_LH.nii.gz",
    "right hemisphere": "julich-brain/v3.1-mpm-mni152/JulichBrainAtlas31_RH.nii.gz",
}


@pytest.fixture(scope="module")
def jba31(maps_catalog: Catalog) -> Map:
    return maps_catalog.map("julich 3.1", "mni152", "labelled")


def _nibabel_rows(shared_data: Path, points: np.ndarray, jba31) -> set[tuple[int, str, int]]:
    """(point, configured region name, label) read with nibabel from both hemisphere files."""
    by_label = {(ix.fragment, ix.label): name for name, indices in jba31.indices for ix in indices}
    rows: set[tuple[int, str, int]] = set()
    for fragment, relative in JBA31_FILES.items():
        img = nib.load(shared_data / relative)
        data = np.asarray(img.dataobj)
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), points)).astype(int)
        for p, (i, j, k) in enumerate(ijk):
            if all(0 <= v < n for v, n in zip((i, j, k), data.shape, strict=True)):
                label = int(data[i, j, k])
                if label > 0:
                    rows.add((p, by_label[(fragment, label)], label))
    return rows


def test_jba31_identical_to_recorded_siibra_python(shared_data, shared_map_store, jba31):
    """Julich-Brain 3.1 MNI152: every (point, region, label) row equals siibra-python 1.0.1a25's."""
    golden = json.loads(GOLDEN.read_text())
    points = parity_points(shared_data, golden["points"]["random"])
    assert len(points) == golden["points"]["count"] == 4702
    result = shared_map_store.assign(jba31, points)
    ours = sorted(
        zip(result.point.tolist(), result.region_names(), result.label.tolist(), strict=True)
    )
    theirs = sorted((p, golden["names"][n], label) for p, n, label, _ in golden["rows"])
    assert len(theirs) > 1500
    assert ours == theirs


def test_jba31_identical_to_direct_nibabel_lookup(shared_data, shared_map_store, jba31):
    """Each hit equals a nibabel read of the hemisphere file at the point's nearest voxel."""
    golden = json.loads(GOLDEN.read_text())
    points = parity_points(shared_data, golden["points"]["random"])
    # nibabel rounds half to even, siibra rounds half up: keep points off the .5 boundary
    frac = np.abs(np.modf(points)[0])
    points = points[np.all(np.abs(frac - 0.5) > 1e-6, axis=1)]
    result = shared_map_store.assign(jba31, points)
    names = result.regions.configured_names
    ours = {
        (p, names[r], label)
        for p, r, label in zip(
            result.point.tolist(), result.region_row.tolist(), result.label.tolist(), strict=True
        )
    }
    assert ours == _nibabel_rows(shared_data, points, jba31)


def test_rows_carry_region_id_key_volume_fragment(shared_map_store, jba31):
    """A hit names the resolved region (siibra's cleaned name), id, key, volume and fragment."""
    result = shared_map_store.assign(jba31, [[-8.0, -90.0, 4.0]])
    columns = result.columns()
    assert columns["region"] == ["Area hOc1 (V1, 17, CalcS) left"]
    assert columns["region_key"] == ["AREA_HOC1_V1_17_CALCS_LEFT"]
    assert columns["region_id"][0].endswith("AREA_HOC1_V1_17_CALCS_LEFT")
    assert columns["fragment"] == ["left hemisphere"]
    assert columns["volume"].tolist() == [0]
    assert columns["point"].tolist() == [0]


def test_points_outside_the_volume_give_no_rows(shared_map_store, jba31):
    """Points beyond the map's grid (and in background) produce no row, as in siibra."""
    result = shared_map_store.assign(
        jba31, [[500.0, 0.0, 0.0], [-8.0, -90.0, 4.0], [0.0, 0.0, -500.0]]
    )
    assert result.point.tolist() == [1]


def test_space_other_than_the_maps_is_refused(shared_map_store, jba31, maps_catalog):
    """Points declared in another space raise SpaceMismatchError (no warping yet)."""
    colin = maps_catalog.space("colin 27")
    with pytest.raises(SpaceMismatchError) as info:
        shared_map_store.assign(jba31, [[0.0, 0.0, 0.0]], space_id=colin.id)
    assert info.value.data["map_space"] == jba31.space_id


def test_map_without_reachable_files_names_url_and_mirror_setting(
    mirror_settings: Settings, maps_catalog: Catalog
) -> None:
    """A map none of whose files the mirror holds raises DataUnavailableError with URL and hint."""
    jba29 = maps_catalog.map("julich 2.9", "mni152", "labelled")
    store = MapStore(mirror_settings, HttpFetcher(mirror_settings), maps_catalog)
    with pytest.raises(DataUnavailableError) as info:
        store.assign(jba29, [[0.0, 0.0, 0.0]])
    assert info.value.data["url"].startswith("https://")
    assert info.value.data["mirrors_setting"] == "SIIBRAD_MIRRORS"
    assert info.value.data["url"] in info.value.message


def test_restart_maps_decoded_arrays_back_without_fetching_or_decoding(
    mirror_server: MirrorServer, tmp_path: Path, maps_catalog: Catalog, jba31
) -> None:
    """A second MapStore on the same cache reuses the decoded .npy (no new decode) and agrees."""
    settings = mirror_settings_for(mirror_server, tmp_path / "cache")
    first = MapStore(settings, HttpFetcher(settings), maps_catalog)
    a = first.assign(jba31, [[-8.0, -90.0, 4.0], [40.0, -20.0, 50.0]])
    decoded = sorted((tmp_path / "cache" / "maps" / "arrays").rglob("*.npy"))
    assert len(decoded) == 2
    stamps = [p.stat().st_mtime_ns for p in decoded]
    second = MapStore(settings, HttpFetcher(settings), maps_catalog)
    b = second.assign(jba31, [[-8.0, -90.0, 4.0], [40.0, -20.0, 50.0]])
    assert [p.stat().st_mtime_ns for p in decoded] == stamps
    assert a.region_names() == b.region_names()
    assert isinstance(second.warm(jba31).parts[0].array, np.memmap)
