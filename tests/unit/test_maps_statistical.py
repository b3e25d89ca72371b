"""Statistical maps through the sparse index: Julich-Brain 1.18 (162 of 212 files) and FSL 4D."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.mirror import *  # noqa: F403  (the fixtures)
from helpers.mirror import MirrorServer, mirror_settings_for, mirror_table

from siibrad.catalog import Catalog
from siibrad.catalog.model import Map
from siibrad.maps.store import MapStore
from siibrad.maps.volumes import volume_parts
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher

ALLEN = "features/allen-ahba-samples/corrected_mni_coordinates.csv.gz"


def _points(shared_data: Path, count: int = 1000) -> np.ndarray:
    """700 Allen sample coordinates and 300 seeded random ones, kept off voxel .5 boundaries."""
    import gzip

    with gzip.open(shared_data / ALLEN, "rt") as fh:
        rows = list(csv.reader(fh))[1:]
    allen = np.array([[float(v) for v in r[1:4]] for r in rows[:700]])
    rng = np.random.default_rng(118)
    points = np.vstack([allen, rng.uniform([-80, -110, -60], [80, 80, 85], (count - 700, 3))])
    frac = np.abs(np.modf(points)[0])
    points[np.abs(frac - 0.5) < 1e-6] += 0.01
    return points


def _direct(img: nib.Nifti1Image, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-voxel indices and an inside mask, computed with nibabel's own helpers."""
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), points)).astype(int)
    ok = np.all((ijk >= 0) & (ijk < np.array(img.shape[:3])), axis=1)
    return ijk, ok


@pytest.fixture(scope="module")
def jba118(maps_catalog: Catalog) -> Map:
    return maps_catalog.map("julich 1.18", "mni152", "statistical")


@pytest.fixture(scope="module")
def fsl_statistical(maps_catalog: Catalog) -> Map:
    return maps_catalog.map("fsl juelich", "mni152", "statistical")


def test_jba118_values_equal_direct_per_region_nibabel_lookups(
    shared_data: Path, shared_map_store: MapStore, jba118: Map
) -> None:
    """Every region's value at 1,000 points equals nibabel's read of that region's file."""
    points = _points(shared_data)
    local = dict(mirror_table(shared_data))
    values, regions, missing = shared_map_store.values(jba118, points)
    assert values.shape == (1000, 212)
    checked = 0
    for name, indices in jba118.indices:
        (index,) = indices
        url = jba118.volumes[index.volume].providers_for("nii")[0].url
        row = regions.row_of(name)
        if url not in local:
            assert name in missing
            assert np.isnan(values[:, row]).all()
            continue
        img = nib.load(local[url])
        ijk, ok = _direct(img, points)
        expected = np.zeros(len(points))
        data = np.asarray(img.dataobj)
        expected[ok] = data[ijk[ok, 0], ijk[ok, 1], ijk[ok, 2]]
        expected[expected < 0] = 0.0  # the index keeps values > 0, as siibra's
        got = np.nan_to_num(values[:, row], nan=0.0)
        np.testing.assert_allclose(got[ok], expected[ok], rtol=0, atol=1e-6)
        checked += 1
    assert checked == 162
    assert len(missing) == 50


def test_jba118_assignment_lists_every_region_above_threshold(
    shared_data: Path, shared_map_store: MapStore, jba118: Map
) -> None:
    """assign() rows are exactly the (point, region) cells of values() above lower_threshold."""
    points = _points(shared_data)
    values, _, _ = shared_map_store.values(jba118, points)
    for threshold in (0.0, 0.3):
        result = shared_map_store.assign(jba118, points, lower_threshold=threshold)
        cells = np.argwhere(np.nan_to_num(values) > threshold)
        assert sorted(
            zip(result.point.tolist(), result.region_row.tolist(), strict=True)
        ) == sorted(map(tuple, cells.tolist()))
        np.testing.assert_allclose(result.map_value, values[result.point, result.region_row])
        assert np.all(np.diff(result.point) >= 0)
        assert len(result.missing_regions) == 50


def test_jba118_missing_regions_are_named_with_their_urls(
    shared_map_store: MapStore, jba118: Map
) -> None:
    """The 50 unavailable region files are listed by region and URL, not silently dropped."""
    warm = shared_map_store.warm(jba118)
    assert len(warm.missing) == 50
    assert all(m.url.startswith("https://data-proxy.ebrains.eu/") for m in warm.missing)
    assert "Area 7M (SPL) - left hemisphere" in {m.region for m in warm.missing}
    assert shared_map_store.status()["warm_maps"]


def test_sparse_index_is_mapped_back_without_any_fetch(
    mirror_server: MirrorServer,
    tmp_path_factory: pytest.TempPathFactory,
    maps_catalog: Catalog,
    jba118: Map,
    shared_map_store: MapStore,
) -> None:
    """A new MapStore on the same cache loads the persisted index: zero fetches, same answers."""
    shared_map_store.warm(jba118)
    fetched: list[str] = []

    class CountingFetcher(HttpFetcher):
        def fetch(self, url, **kwargs):  # type: ignore[no-untyped-def]
            fetched.append(url)
            return super().fetch(url, **kwargs)

    settings = shared_map_store.settings
    fresh = MapStore(settings, CountingFetcher(settings), maps_catalog)
    points = [[-10.0, -85.0, 5.0], [40.0, -20.0, 50.0]]
    a = fresh.assign(jba118, points)
    b = shared_map_store.assign(jba118, points)
    assert fetched == []
    assert a.region_names() == b.region_names()
    assert isinstance(fresh.warm(jba118).index.values, np.memmap)


def test_fsl_4d_map_equals_direct_nibabel_lookup_per_z(
    shared_data: Path, shared_map_store: MapStore, fsl_statistical: Map
) -> None:
    """The FSL Juelich 4D map (one region per z): values equal nibabel's at 1,000 points."""
    points = _points(shared_data)
    values, regions, missing = shared_map_store.values(fsl_statistical, points)
    assert missing == ()
    img = nib.load(shared_data / "fsl-juelich-histological" / "Juelich-prob-1mm.nii.gz")
    data = np.asarray(img.dataobj)
    ijk, ok = _direct(img, points)
    for name, (index,) in fsl_statistical.indices:
        expected = data[ijk[ok, 0], ijk[ok, 1], ijk[ok, 2], index.z].astype(float)
        np.testing.assert_allclose(values[ok, regions.row_of(name)], expected, atol=1e-6)
    assert np.isnan(values[~ok]).all()
    result = shared_map_store.assign(fsl_statistical, points[:50])
    assert set(result.volume.tolist()) == {0}


def test_statistical_region_map_round_trips_through_the_index(
    shared_data: Path, shared_map_store: MapStore, jba118: Map
) -> None:
    """region_volume() rebuilds a region's probability map exactly from the sparse index."""
    name = "Area hOc1 (V1, 17, CalcS) - left hemisphere"
    (index,) = dict(jba118.indices)[name]
    url = jba118.volumes[index.volume].providers_for("nii")[0].url
    img = nib.load(dict(mirror_table(shared_data))[url])
    array, affine, resolved = shared_map_store.region_volume(jba118, name)
    assert resolved == "Area hOc1 (V1, 17, CalcS) left"
    np.testing.assert_array_equal(affine, img.affine)
    np.testing.assert_array_equal(array, np.clip(np.asarray(img.dataobj), 0, None))


def test_a_fresh_cache_builds_the_fsl_index_from_the_mirror(
    mirror_server: MirrorServer, tmp_path: Path, maps_catalog: Catalog, fsl_statistical: Map
) -> None:
    """Building reports progress (region maps done/total) and persists the index on disk."""
    settings = mirror_settings_for(mirror_server, tmp_path / "cache")
    store = MapStore(settings, HttpFetcher(settings), maps_catalog)
    reports: list[tuple[str, int, int | None]] = []
    store.warm(fsl_statistical, progress=lambda m, d, t: reports.append((m, d, t)))
    assert any(m.startswith("indexing") and d == t for m, d, t in reports)
    assert any(m.startswith("downloading") for m, _, _ in reports)
    assert list((tmp_path / "cache" / "maps" / "sparse").glob("*/meta.json"))


def test_forgetting_a_map_refetches_the_regions_that_were_missing(
    shared_data: Path, tmp_path: Path, maps_catalog: Catalog, jba118: Map
) -> None:
    """A region file that appears after the index was built is picked up after forget()."""
    table = dict(mirror_table(shared_data))
    urls = [p.url for p in volume_parts(jba118) if p.url in table][:3]
    served = tmp_path / "served"
    served.mkdir()
    rules = []
    for n, url in enumerate(urls):
        rules.append(f"{url}={served / f'{n}.nii.gz'}")
        if n < 2:  # the third file is not there yet (a mirror still being filled)
            (served / f"{n}.nii.gz").symlink_to(table[url])
    (tmp_path / "mirrors.txt").write_text("\n".join(rules) + "\n")
    settings = Settings.from_env(
        {}, cache_dir=tmp_path / "cache", mirrors_file=tmp_path / "mirrors.txt", offline=True
    )
    store = MapStore(settings, HttpFetcher(settings), maps_catalog)
    before = store.warm(jba118)
    assert len(before.index.included) == 2 and len(before.missing) == 210
    late = next(m.region for m in before.missing if m.url == urls[2])

    (served / "2.nii.gz").symlink_to(table[urls[2]])
    assert store.warm(jba118) is before  # nothing changes by itself: the index is persisted
    forgot = store.forget(jba118)
    assert forgot["dropped_warm"] and forgot["removed_bytes"] > 0
    after = store.warm(jba118)
    assert len(after.index.included) == 3 and len(after.missing) == 209
    assert late not in {m.region for m in after.missing}
    assert store.forget(jba118)["removed_bytes"] > 0
    assert store.forget(jba118) == {"dropped_warm": False, "removed_bytes": 0}
