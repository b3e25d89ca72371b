"""The result of assigning points to a map, as columns (one row per point × region hit).

Contract: :class:`Assignment` holds numpy columns of equal length ``K`` sorted by input point
(then volume/fragment order); ``region_row`` indexes the map's :class:`RegionTable` (``-1`` =
a voxel label no region claims). Score columns are ``None`` when the assignment did not
compute them (exact points have no containedness). :meth:`Assignment.columns` gives the
wire-ready mapping: arrays for numbers, lists for names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.maps.regions import RegionTable

SCORE_COLUMNS = (
    "map_value",
    "map_weighted_mean",
    "map_containedness",
    "input_containedness",
    "intersection_over_union",
)


@dataclass(frozen=True, slots=True)
class Assignment:
    point: npt.NDArray[np.int64]
    region_row: npt.NDArray[np.int32]
    volume: npt.NDArray[np.int32]
    fragment: npt.NDArray[np.object_]
    regions: RegionTable
    label: npt.NDArray[np.int64] | None = None
    map_value: npt.NDArray[np.float64] | None = None
    map_weighted_mean: npt.NDArray[np.float64] | None = None
    map_containedness: npt.NDArray[np.float64] | None = None
    input_containedness: npt.NDArray[np.float64] | None = None
    intersection_over_union: npt.NDArray[np.float64] | None = None
    missing_regions: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.point.size)

    def region_names(self) -> list[str | None]:
        return list(self.regions.names[self.region_row].tolist())

    def columns(self) -> dict[str, Any]:
        """Columns for the wire: ``point``, ``region``, ``region_id``, ``region_key``, ..."""
        out: dict[str, Any] = {
            "point": self.point,
            "region": self.region_names(),
            "region_id": self.regions.ids[self.region_row].tolist(),
            "region_key": self.regions.keys[self.region_row].tolist(),
            "volume": self.volume,
            "fragment": self.fragment.tolist(),
        }
        if self.label is not None:
            out["label"] = self.label
        for name in SCORE_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def empty_assignment(regions: RegionTable, *, labelled: bool) -> Assignment:
    """An assignment with no rows (every point outside the map or below the threshold)."""
    return Assignment(
        point=np.empty(0, np.int64),
        region_row=np.empty(0, np.int32),
        volume=np.empty(0, np.int32),
        fragment=np.empty(0, object),
        regions=regions,
        label=np.empty(0, np.int64) if labelled else None,
        map_value=None if labelled else np.empty(0, np.float64),
    )


def sort_by_point(columns: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
    """Reorder equal-length columns by ``point``, keeping the order within a point (stable)."""
    order = np.argsort(columns["point"], kind="stable")
    return {name: column[order] for name, column in columns.items()}


def concat_assignments(parts: list[Assignment]) -> Assignment:
    """Rows of several assignments of one map, merged and re-sorted by point.

    Score columns missing from some parts are filled with NaN for their rows.
    """
    parts = [p for p in parts if len(p)] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    columns: dict[str, np.ndarray[Any, Any]] = {
        name: np.concatenate([getattr(p, name) for p in parts])
        for name in ("point", "region_row", "volume", "fragment")
    }
    if first.label is not None:
        columns["label"] = np.concatenate([p.label for p in parts if p.label is not None])
    optional = [n for n in SCORE_COLUMNS if any(getattr(p, n) is not None for p in parts)]
    for name in optional:
        columns[name] = np.concatenate(
            [
                getattr(p, name) if getattr(p, name) is not None else np.full(len(p), np.nan)
                for p in parts
            ]
        )
    merged = sort_by_point(columns)
    return Assignment(
        regions=first.regions,
        missing_regions=first.missing_regions,
        **merged,
    )
