"""Uncertain points (``sigma_mm``): a Gaussian window around each point, scored per region.

Semantics (siibra-python 1.0's, made local): a point whose sigma is below 3 voxels
(``sigma_mm / affine_scaling_mm(affine) < 3``) is exact. Otherwise the point's voxel (siibra's
rounding) is the centre of a cube of radius ``r = int(3 * sigma_vox)`` voxels holding a
sampled Gaussian ``exp(-d² / 2 sigma_vox²)`` normalised to sum 1 (siibra's
``create_gaussian_kernel``), clipped to the volume. For each region touching the window:

- ``map_weighted_mean``: Σ kernel·map / Σ kernel over the window. For a labelled map the map is
  the region's 0/1 mask, so this is the kernel-weighted share of the region; for a statistical
  map it is the kernel-weighted mean value of the region.
- ``input_containedness``: window voxels inside the region / window voxels.
- ``map_containedness``: region voxels inside the window / region voxels.
- ``intersection_over_union``: the two voxel sets' IoU.
- ``map_value`` (statistical): the region's largest value in the window.

A labelled region is reported when its IoU exceeds ``lower_threshold`` (siibra's rule); for a
statistical map, values ≤ ``lower_threshold`` count as 0 first. Rows of a point are sorted by
``map_weighted_mean``, largest first. The cost is one window per point, never a whole volume.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.maps.assignment import Assignment
from siibrad.maps.labelled import LabelledMap
from siibrad.maps.points import voxel_indices
from siibrad.maps.statistical import StatisticalMap

SIGMA_EXACT_BELOW_VOXELS = 3.0


@lru_cache(maxsize=32)
def gaussian_kernel(sigma_vox: float) -> npt.NDArray[np.float64]:
    """The normalised (2r+1)³ Gaussian kernel of siibra, r = int(3·sigma_vox).

    >>> k = gaussian_kernel(3.0)
    >>> k.shape, round(float(k.sum()), 12), bool(k[9, 9, 9] == k.max())
    ((19, 19, 19), 1.0, True)
    """
    r = int(3 * sigma_vox)
    d = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(d**2) / (2.0 * sigma_vox**2))
    kernel = g[:, None, None] * g[None, :, None] * g[None, None, :]
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def _window(
    center: npt.NDArray[np.int64], r: int, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    lo = np.maximum(center - r, 0)
    hi = np.minimum(center + r + 1, np.asarray(shape[:3]))
    if np.any(hi <= lo):
        return None
    volume = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    kernel = tuple(
        slice(int(a - c + r), int(b - c + r)) for a, b, c in zip(lo, hi, center, strict=True)
    )
    return volume, kernel


_COLUMNS = (
    "point",
    "region_row",
    "volume",
    "fragment",
    "label",
    "map_value",
    "map_weighted_mean",
    "map_containedness",
    "input_containedness",
    "intersection_over_union",
)


def _finish(rows: list[dict[str, Any]], template: Assignment, labelled: bool) -> Assignment:
    if rows:
        cols = {name: [row[name] for row in rows] for name in _COLUMNS}
    else:
        cols = {name: [] for name in _COLUMNS}
    fragment = np.empty(len(rows), dtype=object)
    fragment[:] = cols["fragment"]
    point = np.asarray(cols["point"], dtype=np.int64)
    weight = np.asarray(cols["map_weighted_mean"], dtype=np.float64)
    order = np.lexsort((-weight, point))

    def f64(name: str) -> npt.NDArray[np.float64]:
        return np.asarray(cols[name], dtype=np.float64)[order]

    return Assignment(
        point=point[order],
        region_row=np.asarray(cols["region_row"], dtype=np.int32)[order],
        volume=np.asarray(cols["volume"], dtype=np.int32)[order],
        fragment=fragment[order],
        regions=template.regions,
        label=np.asarray(cols["label"], dtype=np.int64)[order] if labelled else None,
        map_value=None if labelled else f64("map_value"),
        map_weighted_mean=weight[order],
        map_containedness=f64("map_containedness"),
        input_containedness=f64("input_containedness"),
        intersection_over_union=f64("intersection_over_union"),
        missing_regions=template.missing_regions,
    )


def assign_uncertain_labelled(
    lmap: LabelledMap,
    points_mm: npt.NDArray[np.float64],
    point_rows: npt.NDArray[np.int64],
    sigma_vox: npt.NDArray[np.float64],
    lower_threshold: float,
) -> Assignment:
    """Window scores of the points ``point_rows`` (with their sigma in voxels) per region."""
    rows: list[dict[str, Any]] = []
    for part in lmap.parts:
        centers = voxel_indices(points_mm[point_rows], part.affine)
        for point, center, sigma in zip(point_rows, centers, sigma_vox, strict=True):
            kernel = gaussian_kernel(float(sigma))
            r = kernel.shape[0] // 2
            window = _window(center, r, part.array.shape)
            if window is None:
                continue
            labels = np.asarray(part.array[window[0]]).ravel().astype(np.int64)
            weights = kernel[window[1]].ravel()
            n_window = labels.size
            total = float(weights.sum())
            known = (labels >= 0) & (labels < part.lut.size)
            region_of_voxel = np.where(known, part.lut[np.where(known, labels, 0)], -1)
            for label in np.unique(labels[region_of_voxel >= 0]):
                inside_region = labels == label
                overlap = int(inside_region.sum())
                region_voxels = int(part.label_voxels[label])
                iou = overlap / (n_window + region_voxels - overlap)
                if iou <= lower_threshold:
                    continue
                rows.append(
                    {
                        "point": int(point),
                        "region_row": int(part.lut[label]),
                        "volume": part.volume,
                        "fragment": part.fragment,
                        "label": int(label),
                        "map_value": float(label),
                        "map_weighted_mean": float(weights[inside_region].sum()) / total,
                        "map_containedness": overlap / region_voxels,
                        "input_containedness": overlap / n_window,
                        "intersection_over_union": iou,
                    }
                )
    template = Assignment(
        point=np.empty(0, np.int64),
        region_row=np.empty(0, np.int32),
        volume=np.empty(0, np.int32),
        fragment=np.empty(0, object),
        regions=lmap.regions,
    )
    return _finish(rows, template, labelled=True)


def assign_uncertain_statistical(
    smap: StatisticalMap,
    points_mm: npt.NDArray[np.float64],
    point_rows: npt.NDArray[np.int64],
    sigma_vox: npt.NDArray[np.float64],
    lower_threshold: float,
) -> Assignment:
    """Window scores of uncertain points in a statistical map, via its sparse index."""
    index = smap.index
    rows: list[dict[str, Any]] = []
    entry_count = len(smap.entry_rows)
    centers = voxel_indices(points_mm[point_rows], index.affine)
    for point, center, sigma in zip(point_rows, centers, sigma_vox, strict=True):
        kernel = gaussian_kernel(float(sigma))
        r = kernel.shape[0] // 2
        window = _window(center, r, index.shape)
        if window is None:
            continue
        csr_rows = np.asarray(index.voxel_row[window[0]]).ravel()
        weights = kernel[window[1]].ravel()
        n_window = csr_rows.size
        total = float(weights.sum())
        hits = index.gather(csr_rows)
        value = hits.value.astype(np.float64)
        value[value <= lower_threshold] = 0.0
        positive = value > 0
        weighted = np.bincount(
            hits.entry, weights=weights[hits.point] * value, minlength=entry_count
        )
        overlap = np.bincount(hits.entry[positive], minlength=entry_count)
        peak = np.zeros(entry_count)
        np.maximum.at(peak, hits.entry, value)
        for entry in np.flatnonzero(overlap):
            region_voxels = _region_voxels(smap, int(entry), lower_threshold)
            ov = int(overlap[entry])
            rows.append(
                {
                    "point": int(point),
                    "region_row": int(smap.entry_rows[entry]),
                    "volume": int(smap.entry_volumes[entry]),
                    "fragment": smap.entry_fragments[entry],
                    "label": 0,
                    "map_value": float(peak[entry]),
                    "map_weighted_mean": float(weighted[entry]) / total,
                    "map_containedness": ov / region_voxels,
                    "input_containedness": ov / n_window,
                    "intersection_over_union": ov / (n_window + region_voxels - ov),
                }
            )
    template = smap.assignment_from_hits(
        index.gather(np.empty(0, np.int32)), lower_threshold=lower_threshold
    )
    return _finish(rows, template, labelled=False)


def _region_voxels(smap: StatisticalMap, entry: int, lower_threshold: float) -> int:
    if lower_threshold <= 0:
        return int(smap.index.entry_voxels[entry])
    mine = np.asarray(smap.index.entries) == entry
    return int(np.count_nonzero(np.asarray(smap.index.values)[mine] > lower_threshold))
