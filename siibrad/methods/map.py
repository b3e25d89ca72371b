"""``map/*``: map metadata (the map engineer adds map/assign, map/values and map/fetch here).

``map/list`` and ``map/get`` answer from the catalogue only: no volume is fetched or decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from siibrad.errors import InvalidParams
from siibrad.methods import MethodContext, method
from siibrad.methods.model_codec import codec_for


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
