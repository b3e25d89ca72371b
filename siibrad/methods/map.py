"""``map/*``: map metadata (the map engineer adds map/assign, map/values and map/fetch here).

``map/list`` and ``map/get`` answer from the catalogue only: no volume is fetched or decoded.
``map/assign``, ``map/values`` and ``map/fetch`` orchestrate :class:`siibrad.maps.MapStore`
(shared through ``ctx.services``, see :mod:`siibrad.methods._maps`); they run on the worker
pool and report ``$/progress`` for downloads and index builds that last over a second.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from siibrad.catalog.model import Map
from siibrad.errors import InvalidParams
from siibrad.methods import MethodContext, method
from siibrad.methods.model_codec import codec_for


def maps_layer() -> ModuleType:
    """:mod:`siibrad.methods._maps`, imported on first use: it brings nibabel and the maps layer,
    which cost daemon start-up (and so auto-start latency) that catalogue-only work never needs."""
    layer = sys.modules.get("siibrad.methods._maps")
    return layer if layer is not None else importlib.import_module("siibrad.methods._maps")


@dataclass(frozen=True, slots=True)
class MapListParams:
    parcellation: str | None = None
    space: str | None = None
    maptype: Literal["labelled", "statistical"] | None = None


@dataclass(frozen=True, slots=True)
class MapGetParams:
    parcellation: str | None = None
    space: str | None = None
    maptype: Literal["labelled", "statistical"] = "labelled"
    spec: str = ""
    id: str | None = None
    include_regions: bool = False


@method("map/list")
def map_list(ctx: MethodContext, params: MapListParams) -> dict[str, Any]:
    """Every map, filtered by parcellation, space and map type (all optional)."""
    codec = codec_for(ctx)
    maps = ctx.catalog.maps
    if params.parcellation is not None:
        parcellation_id = ctx.catalog.parcellation(params.parcellation).id
        maps = tuple(m for m in maps if m.parcellation_id == parcellation_id)
    if params.space is not None:
        space_id = ctx.catalog.space(params.space).id
        maps = tuple(m for m in maps if m.space_id == space_id)
    if params.maptype is not None:
        maps = tuple(m for m in maps if m.maptype.value == params.maptype)
    return {"maps": [codec.map(m) for m in maps]}


@method("map/get")
def map_get(ctx: MethodContext, params: MapGetParams) -> dict[str, Any]:
    """One map: by ``id`` (or key/name), or as ``siibra.get_map(parcellation, space, maptype)``."""
    if params.id is not None:
        found = ctx.catalog.map_by_spec(params.id)
    elif params.parcellation is not None and params.space is not None:
        found = ctx.catalog.map(params.parcellation, params.space, params.maptype, params.spec)
    else:
        missing = [n for n in ("parcellation", "space") if getattr(params, n) is None]
        raise InvalidParams(
            "map/get needs either id, or parcellation and space",
            fields=[{"field": n, "problem": "missing (or give id)"} for n in missing],
        )
    return codec_for(ctx).map(found, include_regions=params.include_regions)


# --- map/assign, map/values, map/fetch (the maps engineer's part) ------------------------------


@dataclass(frozen=True, slots=True)
class MapAssignParams:
    points: Any
    map: str | None = None
    parcellation: str | None = None
    space: str | None = None
    maptype: Literal["labelled", "statistical"] = "labelled"
    spec: str = ""
    points_space: str | None = None
    sigma_mm: Any = 0.0
    lower_threshold: float = 0.0


@dataclass(frozen=True, slots=True)
class MapValuesParams:
    points: Any
    map: str | None = None
    parcellation: str | None = None
    space: str | None = None
    maptype: Literal["labelled", "statistical"] = "statistical"
    spec: str = ""
    points_space: str | None = None


@dataclass(frozen=True, slots=True)
class MapFetchParams:
    map: str | None = None
    parcellation: str | None = None
    space: str | None = None
    maptype: Literal["labelled", "statistical"] = "labelled"
    spec: str = ""
    region: str | None = None
    volume: int = 0
    fragment: str | None = None
    output: Literal["path", "array"] = "path"


INLINE_MAX_POINTS = 1_000
"""Exact points up to this count on a warm map are answered on the socket thread (microseconds)."""


def _few_points_on_warm_map(ctx: MethodContext, params: MapAssignParams) -> bool:
    """Whether this assignment is cheap: exact points, few, on a map already in memory."""
    if not isinstance(params.sigma_mm, int | float) or params.sigma_mm != 0:
        return False
    if len(params.points) > INLINE_MAX_POINTS:
        return False
    found, _ = select_map(ctx, params)
    return bool(maps_layer().map_store(ctx).is_warm(found.id))


@method("map/assign", heavy=True, inline_if=_few_points_on_warm_map)
def map_assign(ctx: MethodContext, params: MapAssignParams) -> dict[str, Any]:
    """Assign N×3 points (mm, in the map's space) to the map's regions: one row per hit."""
    found, points_space = select_map(ctx, params)
    with maps_layer().map_progress(ctx, f"map {found.name}") as progress:
        result = (
            maps_layer()
            .map_store(ctx)
            .assign(
                found,
                params.points,
                sigma_mm=params.sigma_mm,
                lower_threshold=params.lower_threshold,
                space_id=points_space,
                progress=progress,
            )
        )
    return {
        "map": map_ref(found),
        "count": len(result),
        "columns": result.columns(),
        "missing_regions": list(result.missing_regions),
    }


@method("map/values", heavy=True)
def map_values(ctx: MethodContext, params: MapValuesParams) -> dict[str, Any]:
    """Every region's value at every point: a dense N×R array with the region list."""
    found, points_space = select_map(ctx, params)
    with maps_layer().map_progress(ctx, f"map {found.name}") as progress:
        values, regions, missing = (
            maps_layer()
            .map_store(ctx)
            .values(found, params.points, space_id=points_space, progress=progress)
        )
    count = len(regions)
    return {
        "map": map_ref(found),
        "regions": [
            {"name": regions.names[i], "id": regions.ids[i], "key": regions.keys[i]}
            for i in range(count)
        ],
        "values": values,
        "missing_regions": list(missing),
    }


@method("map/fetch", heavy=True)
def map_fetch(ctx: MethodContext, params: MapFetchParams) -> dict[str, Any]:
    """A region's mask (labelled) or map (statistical), or a whole labelled volume."""
    found, _ = select_map(ctx, params)
    store = maps_layer().map_store(ctx)
    with maps_layer().map_progress(ctx, f"map {found.name}") as progress:
        if params.region is not None:
            array, affine, region = store.region_volume(found, params.region, progress)
        else:
            array, affine = store.map_volume(found, params.volume, params.fragment)
            region = None
    out: dict[str, Any] = {
        "map": map_ref(found),
        "region": region,
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "affine": np.asarray(affine, dtype=np.float64),
    }
    if params.output == "array":
        out["array"] = np.ascontiguousarray(array)
    else:
        key = json.dumps([found.id, region, params.volume, params.fragment])
        out["path"] = str(maps_layer().export_nifti(store.root / "exports", key, array, affine))
    return out


_SELECTIONS = "map_selections"
_SELECTIONS_MAX = 1_024


def select_map(ctx: MethodContext, params: Any) -> tuple[Map, str | None]:
    """The map a request names, and the space its points are declared in (if any).

    Answers are remembered per daemon (the catalogue never changes while it runs), so the
    inline check and the handler of one small assignment resolve the names once; errors are not.
    """
    points_space = getattr(params, "points_space", None)
    key = (params.map, params.parcellation, params.space, params.maptype, params.spec, points_space)
    memo: dict[Any, tuple[Map, str | None]] = ctx.services.setdefault(_SELECTIONS, {})
    found = memo.get(key)
    if found is None:
        found = _resolve_map(ctx, params, points_space)
        if len(memo) >= _SELECTIONS_MAX:
            memo.clear()
        memo[key] = found
    return found


def _resolve_map(
    ctx: MethodContext, params: Any, points_space: str | None
) -> tuple[Map, str | None]:
    if params.map is not None:
        found = ctx.catalog.map_by_spec(params.map)
        # beside an explicit map, ``space`` can only describe the points
        declared = params.space if points_space is None else points_space
    elif params.parcellation is not None and params.space is not None:
        found = ctx.catalog.map(params.parcellation, params.space, params.maptype, params.spec)
        declared = points_space
    else:
        missing = [n for n in ("parcellation", "space") if getattr(params, n) is None]
        raise InvalidParams(
            "give map (an id, key or name), or parcellation and space",
            fields=[{"field": n, "problem": "missing (or give map)"} for n in missing],
        )
    space_id = ctx.catalog.space(declared).id if declared is not None else None
    return found, space_id


def map_ref(found: Map) -> dict[str, Any]:
    return {
        "id": found.id,
        "name": found.name,
        "maptype": found.maptype.value,
        "space_id": found.space_id,
        "parcellation_id": found.parcellation_id,
    }
