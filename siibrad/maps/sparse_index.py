"""The sparse index of a statistical map: voxel → every (map entry, value) at that voxel.

Contract: :class:`SparseIndexBuilder` takes the per-region maps one at a time (memory stays
bounded by the non-zero voxels, never by regions × volume) and :meth:`finish` lays them out
CSR-style: ``voxel_row`` (a 3D int32 volume, ``-1`` = no region) → ``offsets[row] ..
offsets[row + 1]`` into ``entries`` (index into the map's :class:`RegionTable` entries) and
``values`` (float32). :meth:`SparseIndex.save` writes the arrays as ``.npy`` into a temporary
folder renamed into place; :meth:`SparseIndex.load` maps them back read-only in milliseconds.
Like siibra, only values > 0 are indexed and all region maps must share one voxel grid.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.errors import UnsupportedError
from siibrad.maps.points import inside, voxel_indices

_FORMAT_VERSION = 1
_ARRAYS = ("voxel_row", "offsets", "entries", "values", "entry_max", "entry_voxels")


@dataclass(frozen=True, slots=True)
class Hits:
    """Flat (point, entry, value) triples gathered from the index."""

    point: npt.NDArray[np.int64]
    entry: npt.NDArray[np.int32]
    value: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SparseIndex:
    shape: tuple[int, int, int]
    affine: npt.NDArray[np.float64]
    voxel_row: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    entries: npt.NDArray[np.int32]
    values: npt.NDArray[np.float32]
    entry_max: npt.NDArray[np.float32]
    entry_voxels: npt.NDArray[np.int64]
    """Per map entry: maximum value and number of voxels > 0 (0 for entries not indexed)."""
    included: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return sum(int(getattr(self, name).nbytes) for name in _ARRAYS)

    def rows_at(self, voxels: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        """CSR rows of voxel indices (``-1`` outside the volume or where no region is)."""
        rows = np.full(len(voxels), -1, dtype=np.int32)
        ok = np.flatnonzero(inside(voxels, self.shape))
        ijk = voxels[ok]
        rows[ok] = self.voxel_row[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        return rows

    def gather(self, rows: npt.NDArray[np.int32]) -> Hits:
        """Every (position in ``rows``, entry, value) for rows ≥ 0, in row then entry order."""
        valid = np.flatnonzero(rows >= 0)
        starts = self.offsets[rows[valid]]
        counts = self.offsets[rows[valid] + 1] - starts
        total = int(counts.sum())
        ends = np.cumsum(counts)
        flat = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
        return Hits(
            point=np.repeat(valid.astype(np.int64), counts),
            entry=np.asarray(self.entries[flat], dtype=np.int32),
            value=np.asarray(self.values[flat], dtype=np.float32),
        )

    def lookup(self, points_mm: npt.NDArray[np.float64]) -> Hits:
        """Every (point, entry, value) at the voxels of ``points_mm`` (siibra's rounding)."""
        return self.gather(self.rows_at(voxel_indices(points_mm, self.affine)))

    def entry_volume(self, entry: int) -> npt.NDArray[np.float32]:
        """The dense 3D map of one entry, rebuilt from the index (values ≤ 0 become 0)."""
        out = np.zeros(self.shape, dtype=np.float32, order="F")
        positions = np.flatnonzero(np.asarray(self.entries) == entry)
        if positions.size == 0:
            return out
        row_of_position = np.searchsorted(self.offsets, positions, side="right") - 1
        voxel_of_row = _voxels_by_row(self.voxel_row, len(self.offsets) - 1)
        out.reshape(-1, order="F")[voxel_of_row[row_of_position]] = self.values[positions]
        return out

    def save(self, folder: Path) -> None:
        """Write atomically into ``folder`` (a concurrent writer's finished copy is kept)."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
        try:
            for name in _ARRAYS:
                np.save(tmp / f"{name}.npy", np.asarray(getattr(self, name)), allow_pickle=False)
            meta = {
                **self.meta,
                "version": _FORMAT_VERSION,
                "shape": list(self.shape),
                "affine": self.affine.tolist(),
                "included": list(self.included),
            }
            (tmp / "meta.json").write_text(json.dumps(meta))
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / "meta.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> SparseIndex | None:
        """Map a saved index back (read-only), or ``None`` if absent, partial or outdated."""
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("version") != _FORMAT_VERSION:
                return None
            arrays = {
                name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in _ARRAYS
            }
        except (OSError, ValueError):
            return None
        shape = tuple(int(n) for n in meta["shape"])
        return cls(
            shape=(shape[0], shape[1], shape[2]),
            affine=np.asarray(meta["affine"], dtype=np.float64),
            included=tuple(int(i) for i in meta["included"]),
            meta=meta,
            **arrays,
        )


def _voxels_by_row(voxel_row: npt.NDArray[np.int32], rows: int) -> npt.NDArray[np.int64]:
    flat = np.asarray(voxel_row).reshape(-1, order="F")
    occupied = np.flatnonzero(flat >= 0)
    out = np.empty(rows, dtype=np.int64)
    out[flat[occupied]] = occupied
    return out


class SparseIndexBuilder:
    """Accumulates region maps one by one; :meth:`finish` builds the CSR index."""

    def __init__(self, entry_count: int) -> None:
        self.entry_count = entry_count
        self.shape: tuple[int, int, int] | None = None
        self.affine: npt.NDArray[np.float64] | None = None
        self._voxels: list[npt.NDArray[np.int64]] = []
        self._entries: list[npt.NDArray[np.int32]] = []
        self._values: list[npt.NDArray[np.float32]] = []
        self.entry_max = np.zeros(entry_count, dtype=np.float32)
        self.entry_voxels = np.zeros(entry_count, dtype=np.int64)
        self.included: list[int] = []

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for group in (self._voxels, self._entries, self._values) for a in group)

    def add(self, entry: int, array: np.ndarray[Any, Any], affine: npt.NDArray[np.float64]) -> None:
        """Add the 3D map of one entry (a region in one volume/z)."""
        if array.ndim != 3:
            raise UnsupportedError(f"a statistical region map must be 3D, got {list(array.shape)}")
        shape = (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]))
        if self.shape is None or self.affine is None:
            self.shape, self.affine = shape, np.asarray(affine, dtype=np.float64)
        elif shape != self.shape or not np.allclose(affine, self.affine):
            raise UnsupportedError(
                "the region maps of this statistical map use different voxel grids",
                first_shape=list(self.shape),
                shape=list(shape),
            )
        flat = np.asarray(array).reshape(-1, order="F")
        voxels = np.flatnonzero(flat > 0)
        values = flat[voxels].astype(np.float32)
        self._voxels.append(voxels.astype(np.int64))
        self._entries.append(np.full(voxels.size, entry, dtype=np.int32))
        self._values.append(values)
        self.entry_voxels[entry] = voxels.size
        self.entry_max[entry] = values.max() if values.size else 0.0
        self.included.append(entry)

    def finish(self, meta: dict[str, Any] | None = None) -> SparseIndex:
        if self.shape is None or self.affine is None:
            raise UnsupportedError("no region map could be indexed")
        voxels = np.concatenate(self._voxels)
        self._voxels.clear()
        order = np.argsort(voxels, kind="stable")
        voxels = voxels[order]
        entries = np.concatenate(self._entries)[order]
        self._entries.clear()
        values = np.concatenate(self._values)[order]
        self._values.clear()
        del order
        unique, starts = np.unique(voxels, return_index=True)
        del voxels
        offsets = np.append(starts, entries.size).astype(np.int64)
        voxel_row = np.full(self.shape, -1, dtype=np.int32, order="F")
        voxel_row.reshape(-1, order="F")[unique] = np.arange(unique.size, dtype=np.int32)
        return SparseIndex(
            shape=self.shape,
            affine=self.affine,
            voxel_row=voxel_row,
            offsets=offsets,
            entries=entries,
            values=values,
            entry_max=self.entry_max,
            entry_voxels=self.entry_voxels,
            included=tuple(self.included),
            meta=dict(meta or {}),
        )
