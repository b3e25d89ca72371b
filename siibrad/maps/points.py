"""Points in mm: validation of client input and siibra's mm → voxel rounding.

Contract: :func:`as_points_mm` accepts an N×3 array-like of real numbers (or one 3-vector) and
returns a float64 C-ordered array, or raises :class:`InvalidPointsError` naming the offending
rows or the shape/dtype problem. :func:`voxel_indices` converts mm to voxel indices exactly
as siibra-python 1.0 does (``(inv(affine) @ [x, y, z, 1] + 0.5).astype(int)``: add one half,
then truncate toward zero), so a coordinate lands in the same voxel in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.errors import InvalidPointsError

_MAX_LISTED_ROWS = 20
_INVERSE_MEMO_SIZE = 64
_inverse_memo: dict[bytes, npt.NDArray[np.float64]] = {}


def as_points_mm(points: Any) -> npt.NDArray[np.float64]:
    """Validate ``points`` (N×3 real numbers, or one point) and return them as float64 N×3.

    >>> as_points_mm([[1, 2, 3]]).tolist()
    [[1.0, 2.0, 3.0]]
    >>> as_points_mm([1.5, 2, 3]).shape
    (1, 3)
    >>> as_points_mm([]).shape
    (0, 3)
    """
    try:
        array = np.asarray(points)
    except (ValueError, TypeError) as exc:
        raise InvalidPointsError(f"points are not a numeric N×3 array: {exc}") from exc
    if array.size == 0 and array.ndim <= 2 and (array.ndim < 2 or array.shape[1] in (0, 3)):
        return np.empty((0, 3), dtype=np.float64)  # no points: an empty answer, nothing fetched
    if array.dtype.kind not in "iuf":
        raise InvalidPointsError(
            f"points must be real numbers, got dtype {array.dtype}", dtype=str(array.dtype)
        )
    if array.ndim == 1 and array.shape[0] == 3:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[1] != 3:
        raise InvalidPointsError(
            f"points must have shape [N, 3] (x, y, z in mm), got {list(array.shape)}",
            shape=list(array.shape),
        )
    result = np.ascontiguousarray(array, dtype=np.float64)
    bad = ~np.isfinite(result).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InvalidPointsError(
            f"{rows.size} point(s) have NaN or infinite coordinates, e.g. row(s) "
            f"{rows[:_MAX_LISTED_ROWS].tolist()}",
            rows=rows[:_MAX_LISTED_ROWS].tolist(),
            count=int(rows.size),
        )
    return result


def voxel_indices(
    points_mm: npt.NDArray[np.float64], affine: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Voxel indices (N×3) of points in mm under ``affine`` (voxel → mm), siibra's rounding.

    Truncating ``v + 0.5`` toward zero rounds half up for v ≥ -0.5 and maps (-1.5, -0.5) to 0,
    exactly as siibra-python (``astype(int)``) does.

    >>> aff = np.diag([2.0, 2.0, 2.0, 1.0])
    >>> voxel_indices(np.array([[1.0, 2.9, -1.2]]), aff).tolist()
    [[1, 1, 0]]
    """
    phys2vox = inverse_affine(affine)
    homogeneous = np.empty((len(points_mm), 4), dtype=np.float64)
    homogeneous[:, :3] = points_mm
    homogeneous[:, 3] = 1.0
    voxels = np.dot(phys2vox, homogeneous.T)[:3].T + 0.5
    result: npt.NDArray[np.int64] = voxels.astype(np.int64)
    return result


def inverse_affine(affine: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The mm → voxel matrix of ``affine``, computed once per distinct affine (maps share few)."""
    key = affine.tobytes()
    found = _inverse_memo.get(key)
    if found is not None:
        return found
    if len(_inverse_memo) >= _INVERSE_MEMO_SIZE:
        _inverse_memo.clear()
    inverse = np.linalg.inv(affine).astype(np.float64, copy=False)
    inverse.setflags(write=False)
    _inverse_memo[key] = inverse
    return inverse


def inside(voxels: npt.NDArray[np.int64], shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Which voxel rows lie inside a volume of ``shape`` (first three dimensions)."""
    bounds = np.asarray(shape[:3], dtype=np.int64)
    result: npt.NDArray[np.bool_] = np.all((voxels >= 0) & (voxels < bounds), axis=1)
    return result


def affine_scaling_mm(affine: npt.NDArray[np.float64]) -> float:
    """siibra's voxel size for the sigma rule: the mean length of the affine's three columns.

    >>> affine_scaling_mm(np.diag([1.0, 2.0, 3.0, 1.0]))
    2.0
    """
    return float(np.mean([np.linalg.norm(affine[:, i]) for i in range(3)]))
