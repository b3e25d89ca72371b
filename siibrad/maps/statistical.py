"""A statistical map held warm: its sparse index and the regions it could (not) index.

Contract: :class:`StatisticalMap` answers exact-point assignment with one gather in the
:class:`SparseIndex` (every region with a value > ``lower_threshold`` at the point's voxel, as
siibra's ``SparseMap``), and :meth:`values` gives the dense N×R matrix (NaN for regions whose
data could not be had, and for points outside the map). ``missing`` names every region whose
file was unavailable, with its URL, so results can say precisely what they do not cover.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from siibrad.maps.assignment import Assignment
from siibrad.maps.points import inside, voxel_indices
from siibrad.maps.regions import RegionTable
from siibrad.maps.sparse_index import Hits, SparseIndex
from siibrad.maps.volumes import MissingVolume


class StatisticalMap:
    labelled = False

    def __init__(
        self, index: SparseIndex, regions: RegionTable, missing: tuple[MissingVolume, ...]
    ) -> None:
        self.index = index
        self.regions = regions
        self.missing = missing
        entries = regions.entries
        self.entry_rows = np.array([row for row, _ in entries], dtype=np.int32)
        self.entry_volumes = np.array([ix.volume for _, ix in entries], dtype=np.int32)
        self.entry_fragments = np.empty(len(entries), dtype=object)
        self.entry_fragments[:] = [ix.fragment for _, ix in entries]
        rows = {r for m in missing if (r := regions.row_of(m.region)) is not None}
        self.missing_rows = np.array(sorted(rows), dtype=np.int64)

    @property
    def size_bytes(self) -> int:
        return self.index.size_bytes

    @property
    def affine(self) -> npt.NDArray[np.float64]:
        return self.index.affine

    @property
    def missing_region_names(self) -> tuple[str, ...]:
        return tuple(m.region for m in self.missing)

    def assignment_from_hits(self, hits: Hits, lower_threshold: float) -> Assignment:
        keep = hits.value > lower_threshold
        entry = hits.entry[keep]
        return Assignment(
            point=hits.point[keep],
            region_row=self.entry_rows[entry],
            volume=self.entry_volumes[entry],
            fragment=self.entry_fragments[entry],
            regions=self.regions,
            map_value=hits.value[keep].astype(np.float64),
            missing_regions=self.missing_region_names,
        )

    def assign_exact(
        self, points_mm: npt.NDArray[np.float64], lower_threshold: float = 0.0
    ) -> Assignment:
        return self.assignment_from_hits(self.index.lookup(points_mm), lower_threshold)

    def values(self, points_mm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """N×R region values at the points' voxels (0 where a region has no value there)."""
        result = np.zeros((len(points_mm), len(self.regions)), dtype=np.float64)
        voxels = voxel_indices(points_mm, self.index.affine)
        hits = self.index.gather(self.index.rows_at(voxels))
        np.maximum.at(result, (hits.point, self.entry_rows[hits.entry]), hits.value)
        if self.missing_rows.size:
            result[:, self.missing_rows] = np.nan
        result[~inside(voxels, self.index.shape)] = np.nan
        return result

    def region_map(self, row: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """The dense map of a region (the maximum over its entries), rebuilt from the index."""
        out = np.zeros(self.index.shape, dtype=np.float32, order="F")
        for entry in np.flatnonzero(self.entry_rows == row):
            np.maximum(out, self.index.entry_volume(int(entry)), out=out)
        return out, self.index.affine
