"""A labelled map held warm: decoded label volumes and label → region lookup arrays.

Contract: :class:`LabelledMap` answers exact-point assignment with one numpy gather per volume
and fragment (siibra reads every volume and fragment too), values > ``lower_threshold`` give a
row, and the label → region step is an array lookup. Uncertain points go through
:mod:`siibrad.maps.uncertain` on a local window. Each part (volume × fragment) keeps its own
affine; siibra uses the first volume's affine for all parts, which agrees whenever the parts
share a grid (every configured fragmented map does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.errors import UnsupportedError
from siibrad.maps.array_cache import DecodedArray
from siibrad.maps.assignment import Assignment, empty_assignment, sort_by_point
from siibrad.maps.points import inside, voxel_indices
from siibrad.maps.regions import RegionTable
from siibrad.maps.volumes import MissingVolume, fragment_matches


@dataclass(frozen=True, slots=True)
class LabelledPart:
    """One decoded file of a labelled map and its label → region row table (``-1`` = none)."""

    volume: int
    fragment: str | None
    data: DecodedArray
    lut: npt.NDArray[np.int32]
    label_voxels: npt.NDArray[np.int64]
    """Voxel count per label value (index = label), for containedness scores."""

    @property
    def array(self) -> np.ndarray[Any, Any]:
        return self.data.array

    @property
    def lookup(self) -> np.ndarray[Any, Any]:
        """The voxels as a plain ndarray view (0.1 µs; indexing the memmap object costs ~7 µs)."""
        return np.asarray(self.data.array)

    @property
    def affine(self) -> npt.NDArray[np.float64]:
        return self.data.affine

    def region_rows(self, labels: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
        """Region rows of label values (out-of-table or negative labels give ``-1``)."""
        as_int = labels.astype(np.int64, copy=False)
        if as_int.size == 0 or (as_int.min() >= 0 and as_int.max() < self.lut.size):
            return self.lut[as_int]
        ok = (as_int >= 0) & (as_int < self.lut.size)
        rows = np.full(as_int.shape, -1, dtype=np.int32)
        rows[ok] = self.lut[as_int[ok]]
        return rows


def build_part(
    volume: int, fragment: str | None, data: DecodedArray, regions: RegionTable
) -> LabelledPart:
    """Index a decoded label volume: LUT from the map's indices, voxel counts per label."""
    if data.array.ndim == 4 and data.array.shape[3] == 1:
        data = DecodedArray(data.array[..., 0], data.affine, data.source_sha256)
    if data.array.ndim != 3:
        raise UnsupportedError(
            f"labelled volume {volume} has shape {list(data.array.shape)}; expected 3D",
            shape=list(data.array.shape),
        )
    array = data.array
    labels = [
        (row, index.label)
        for row, index in regions.entries
        if index.label is not None
        and index.volume == volume
        and fragment_matches(index.fragment, fragment)
    ]
    top = int(array.max()) if array.size else 0
    size = max([top] + [label for _, label in labels]) + 1
    lut = np.full(max(size, 1), -1, dtype=np.int32)
    for row, label in labels:
        if label >= 0:
            lut[label] = row
    flat = np.asarray(array).ravel(order="K")
    positive = flat[flat > 0].astype(np.int64)
    counts = np.bincount(positive, minlength=lut.size)
    return LabelledPart(volume, fragment, data, lut, counts)


class LabelledMap:
    """Exact assignment over every part of a labelled map."""

    labelled = True

    def __init__(self, parts: list[LabelledPart], regions: RegionTable) -> None:
        self.parts = parts
        self.regions = regions
        self.missing: tuple[MissingVolume, ...] = ()

    @property
    def size_bytes(self) -> int:
        return sum(p.data.size_bytes + p.lut.nbytes + p.label_voxels.nbytes for p in self.parts)

    @property
    def affine(self) -> npt.NDArray[np.float64]:
        return self.parts[0].affine

    def labels_at(
        self, points_mm: npt.NDArray[np.float64]
    ) -> Iterator[tuple[LabelledPart, npt.NDArray[np.int64], np.ndarray[Any, Any]]]:
        """Per part: (part, rows of the points inside its grid, the voxel values there).

        Fragments share a grid, so mm → voxel and the bounds test run once per distinct grid.
        """
        grids: dict[tuple[bytes, tuple[int, ...]], tuple[Any, ...]] = {}
        for part in self.parts:
            lookup = part.lookup
            grid = (part.affine.tobytes(), lookup.shape)
            found = grids.get(grid)
            if found is None:
                voxels = voxel_indices(points_mm, part.affine)
                rows = np.flatnonzero(inside(voxels, lookup.shape))
                ijk = voxels[rows]
                found = grids[grid] = (rows, ijk[:, 0], ijk[:, 1], ijk[:, 2])
            rows, i, j, k = found
            yield part, rows, lookup[i, j, k]

    def assign_exact(
        self, points_mm: npt.NDArray[np.float64], lower_threshold: float = 0.0
    ) -> Assignment:
        found: list[dict[str, np.ndarray[Any, Any]]] = []
        for part, inside_rows, labels in self.labels_at(points_mm):
            keep = labels > lower_threshold
            rows, values = (
                (inside_rows, labels) if keep.all() else (inside_rows[keep], labels[keep])
            )
            if rows.size == 0:
                continue
            fragment = np.empty(rows.size, dtype=object)
            fragment[:] = part.fragment
            found.append(
                {
                    "point": rows.astype(np.int64, copy=False),
                    "region_row": part.region_rows(values),
                    "volume": np.full(rows.size, part.volume, dtype=np.int32),
                    "fragment": fragment,
                    "label": values.astype(np.int64),
                }
            )
        if not found:
            return empty_assignment(self.regions, labelled=True)
        # one contributing part is already in point order (flatnonzero); several are merged
        merged = found[0] if len(found) == 1 else sort_by_point(_concat(found))
        return Assignment(
            point=merged["point"],
            region_row=merged["region_row"],
            volume=merged["volume"],
            fragment=merged["fragment"],
            regions=self.regions,
            label=merged["label"],
        )

    def values(self, points_mm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """N×R: 1 where the point's voxel carries the region's label, NaN outside every part."""
        result = np.zeros((len(points_mm), len(self.regions)), dtype=np.float64)
        seen = np.zeros(len(points_mm), dtype=bool)
        for part, rows, labels in self.labels_at(points_mm):
            seen[rows] = True
            region_rows = part.region_rows(labels)
            hit = region_rows >= 0
            result[rows[hit], region_rows[hit]] = 1.0
        result[~seen] = np.nan
        return result

    def region_mask(self, row: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
        """The 0/1 mask of a region over the first part's grid (all its labels and fragments)."""
        base = self.parts[0]
        mask = np.zeros(base.array.shape[:3], dtype=np.uint8, order="F")
        for part in self.parts:
            labels = np.flatnonzero(part.lut == row)
            if labels.size == 0:
                continue
            if part.array.shape[:3] != mask.shape or not np.array_equal(part.affine, base.affine):
                continue
            mask |= np.isin(part.array, labels).astype(np.uint8)
        return mask, base.affine


def _concat(parts: list[dict[str, np.ndarray[Any, Any]]]) -> dict[str, np.ndarray[Any, Any]]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
