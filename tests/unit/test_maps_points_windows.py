"""Bad input, siibra's voxel rounding, the sigma rule, Gaussian windows and the memory budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.mirror import *  # noqa: F403  (the fixtures)
from hypothesis import given, settings
from hypothesis import strategies as st

from siibrad.catalog import Catalog
from siibrad.catalog.model import Map
from siibrad.errors import InvalidPointsError
from siibrad.maps.array_cache import DecodedArray
from siibrad.maps.labelled import LabelledPart
from siibrad.maps.points import as_points_mm, inverse_affine, voxel_indices
from siibrad.maps.store import MapStore
from siibrad.maps.uncertain import gaussian_kernel
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher


@pytest.fixture(scope="module")
def jba31(maps_catalog: Catalog) -> Map:
    return maps_catalog.map("julich 3.1", "mni152", "labelled")


@pytest.fixture(scope="module")
def fsl_statistical(maps_catalog: Catalog) -> Map:
    return maps_catalog.map("fsl juelich", "mni152", "statistical")


def test_nan_and_infinite_coordinates_are_refused_with_their_rows(
    shared_map_store: MapStore, jba31: Map
) -> None:
    """NaN/inf rows raise InvalidPointsError listing the rows (siibra silently drops NaN)."""
    points = [[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0], [1.0, np.inf, 0.0]]
    with pytest.raises(InvalidPointsError) as info:
        shared_map_store.assign(jba31, points)
    assert info.value.data["rows"] == [1, 2]


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ([[1.0, 2.0]], "shape"),
        ([[1.0, 2.0, 3.0, 4.0]], "shape"),
        (np.zeros((2, 3, 1)), "shape"),
        ([["a", "b", "c"]], "dtype"),
        (np.array([[1 + 2j, 0, 0]]), "dtype"),
        ([[True, False, True]], "dtype"),
    ],
)
def test_wrong_shape_or_dtype_is_refused(points: object, problem: str) -> None:
    """Anything but N×3 real numbers raises InvalidPointsError saying what is wrong."""
    with pytest.raises(InvalidPointsError) as info:
        as_points_mm(points)
    assert problem in info.value.data


def test_no_points_answer_empty_without_fetching(mirror_settings: Settings, jba31: Map) -> None:
    """Zero points give zero rows and touch no data (nothing is fetched or decoded)."""
    store = MapStore(mirror_settings, HttpFetcher(mirror_settings), None)
    result = store.assign(jba31, [])
    assert len(result) == 0 and not store.is_warm(jba31.id)


@settings(max_examples=200, deadline=None)
@given(
    ijk=st.lists(st.integers(0, 300), min_size=3, max_size=3),
    offset=st.lists(st.floats(-0.49, 0.49), min_size=3, max_size=3),
    scale=st.sampled_from([0.5, 1.0, 2.0, -1.0]),
)
def test_voxel_rounding_finds_the_voxel_whose_centre_is_nearest(
    ijk: list[int], offset: list[float], scale: float
) -> None:
    """mm → voxel → the voxel a point lies within half a voxel of (siibra's rounding)."""
    affine = np.diag([scale, abs(scale), abs(scale), 1.0])
    affine[:3, 3] = [90.0, -126.0, -72.0]
    point = affine @ np.r_[np.add(ijk, offset), 1.0]
    assert voxel_indices(point[None, :3], affine).tolist() == [ijk]


def test_remembered_inverse_affine_gives_the_same_voxels_as_a_fresh_inverse() -> None:
    """The per-affine inverse memo changes nothing: siibra's formula with a fresh inverse agrees."""
    rng = np.random.default_rng(3)
    affines = [np.diag([1.0, 1.0, 1.0, 1.0]), np.diag([-0.4, 0.4, 0.4, 1.0])]
    affines[0][:3, 3] = [-90.5, -126.5, -72.5]
    points = np.vstack(
        [rng.uniform(-100, 100, (2000, 3)), np.round(rng.uniform(-99, 99, (500, 3)))]
    )
    for affine in affines * 2:  # the second round is served from the memo
        fresh = np.linalg.inv(affine)
        expected = (fresh @ np.c_[points, np.ones(len(points))].T)[:3].T + 0.5
        assert voxel_indices(points, affine).tolist() == expected.astype(np.int64).tolist()
    assert not inverse_affine(affines[0]).flags.writeable  # shared: nobody may change it


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_label_to_region_lookup_handles_negative_and_unknown_labels(dtype: type) -> None:
    """Labels outside the lookup table (negative, or above it) give row -1, not an IndexError."""
    array = np.zeros((2, 2, 2), dtype=dtype)
    lut = np.array([-1, 7, -1, 9], dtype=np.int32)  # label 1 → row 7, label 3 → row 9
    part = LabelledPart(0, None, DecodedArray(array, np.eye(4), "x"), lut, np.zeros(4, np.int64))
    labels = np.array([1, 3, 2, 0], dtype=dtype)
    assert part.region_rows(labels).tolist() == [7, 9, -1, -1]
    assert part.region_rows(np.array([-2, 1, 4, 300], dtype=dtype)).tolist() == [-1, 7, -1, -1]
    assert part.region_rows(np.array([], dtype=dtype)).tolist() == []


def test_sigma_below_three_voxels_is_exact(shared_map_store: MapStore, jba31: Map) -> None:
    """siibra's rule: sigma_mm / voxel size < 3 gives the exact-point answer, no scores."""
    points = [[-8.0, -90.0, 4.0], [40.0, -20.0, 50.0]]
    exact = shared_map_store.assign(jba31, points)
    fuzzy = shared_map_store.assign(jba31, points, sigma_mm=2.99)
    assert fuzzy.region_names() == exact.region_names()
    assert fuzzy.map_weighted_mean is None


def _brute_kernel(shape: tuple[int, ...], center: np.ndarray, sigma_vox: float) -> np.ndarray:
    """The Gaussian cube of the point placed in a whole-volume array (zeros elsewhere)."""
    kernel = gaussian_kernel(sigma_vox)
    r = kernel.shape[0] // 2
    full = np.zeros(tuple(n + 2 * r for n in shape[:3]))
    c = center + r
    full[c[0] - r : c[0] + r + 1, c[1] - r : c[1] + r + 1, c[2] - r : c[2] + r + 1] = kernel
    return full[r:-r, r:-r, r:-r]


@pytest.mark.parametrize("sigma_mm", [3.0, 5.0])
def test_uncertain_labelled_point_equals_whole_volume_brute_force(
    shared_data: Path, shared_map_store: MapStore, jba31: Map, sigma_mm: float
) -> None:
    """Window scores equal the same formulas computed over the whole hemisphere volumes."""
    point = np.array([[-20.0, -80.0, 10.0]])
    result = shared_map_store.assign(jba31, point, sigma_mm=sigma_mm)
    assert len(result) > 3
    expected = {}
    for part in shared_map_store.warm(jba31).parts:
        data = np.asarray(part.array)
        center = voxel_indices(point, part.affine)[0]
        kernel = _brute_kernel(data.shape, center, sigma_mm)
        support = kernel > 0
        for label in np.unique(data[support]):
            if label == 0:
                continue
            region = data == label
            overlap = np.count_nonzero(region & support)
            iou = overlap / np.count_nonzero(region | support)
            expected[(part.fragment, int(label))] = (
                kernel[region].sum() / kernel.sum(),
                overlap / np.count_nonzero(region),
                overlap / np.count_nonzero(support),
                iou,
            )
    got = {
        (f, int(label)): (w, mc, ic, iou)
        for f, label, w, mc, ic, iou in zip(
            result.fragment,
            result.label,
            result.map_weighted_mean,
            result.map_containedness,
            result.input_containedness,
            result.intersection_over_union,
            strict=True,
        )
    }
    assert set(got) == set(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-9)
    assert np.all(np.diff(result.map_weighted_mean) <= 0)


def test_uncertain_statistical_point_equals_whole_volume_brute_force(
    shared_data: Path, shared_map_store: MapStore, fsl_statistical: Map
) -> None:
    """Kernel-weighted mean, peak, containedness and IoU per region match a dense computation."""
    point = np.array([[-40.0, -20.0, 50.0]])
    sigma_mm = 4.0
    result = shared_map_store.assign(fsl_statistical, point, sigma_mm=sigma_mm, lower_threshold=10)
    img = nib.load(shared_data / "fsl-juelich-histological" / "Juelich-prob-1mm.nii.gz")
    data = np.asarray(img.dataobj)
    center = voxel_indices(point, img.affine)[0]
    kernel = _brute_kernel(data.shape, center, sigma_mm)
    support = kernel > 0
    expected = {}
    for name, (index,) in fsl_statistical.indices:
        values = data[..., index.z].astype(float)
        values[values <= 10] = 0
        region = values > 0
        overlap = np.count_nonzero(region & support)
        if overlap == 0:
            continue
        expected[result.regions.row_of(name)] = (
            (kernel * values).sum() / kernel.sum(),
            values[support].max(),
            overlap / np.count_nonzero(region),
            overlap / np.count_nonzero(support),
            overlap / np.count_nonzero(region | support),
        )
    got = dict(
        zip(
            result.region_row.tolist(),
            zip(
                result.map_weighted_mean,
                result.map_value,
                result.map_containedness,
                result.input_containedness,
                result.intersection_over_union,
                strict=True,
            ),
            strict=True,
        )
    )
    assert len(expected) >= 2
    assert set(got) == set(expected)
    for row, values in expected.items():
        np.testing.assert_allclose(got[row], values, rtol=1e-6)


def test_memory_budget_evicts_the_least_recently_used_map(
    shared_map_store: MapStore, maps_catalog: Catalog, jba31: Map, fsl_statistical: Map
) -> None:
    """Over the budget, the least recently used warm map is dropped (and reloads on demand)."""
    shared_map_store.warm(fsl_statistical)
    shared_map_store.warm(jba31)
    budget = shared_map_store.warm(jba31).size_bytes + 1
    settings = replace(shared_map_store.settings, memory_budget_bytes=budget)
    store = MapStore(settings, HttpFetcher(settings), maps_catalog)
    store.warm(jba31)
    store.warm(fsl_statistical)
    assert not store.is_warm(jba31.id) and store.is_warm(fsl_statistical.id)
    assert store.status()["evictions"] == 1
    assert store.assign(jba31, [[-8.0, -90.0, 4.0]]).region_names() == [
        "Area hOc1 (V1, 17, CalcS) left"
    ]
    assert store.is_warm(jba31.id) and not store.is_warm(fsl_statistical.id)
