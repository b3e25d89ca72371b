"""``region/*``: resolve, find, get, walk and complete regions of the parcellations' trees.

Errors travel as data: RegionNotFoundError carries ``suggestions`` (closest names),
AmbiguousRegionError carries ``candidates``; both come from the catalogue unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siibrad.errors import InvalidParams
from siibrad.methods import MethodContext, method
from siibrad.methods._completion import CompletionIndex
from siibrad.methods.model_codec import codec_for

MAX_FIND_LIMIT = 10_000
MAX_COMPLETE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class RegionResolveParams:
    parcellation: str
    region: str


@dataclass(frozen=True, slots=True)
class RegionFindParams:
    region: str
    parcellation: str | None = None
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class RegionGetParams:
    id: str


@dataclass(frozen=True, slots=True)
class RegionTreeParams:
    parcellation: str | None = None
    region: str | None = None
    id: str | None = None
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class RegionCompleteParams:
    text: str
    parcellation: str | None = None
    limit: int = 20


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidParams(
            f"{name} must be between {low} and {high}",
            fields=[{"field": name, "problem": f"must be in [{low}, {high}]"}],
        )


@method("region/resolve")
def region_resolve(ctx: MethodContext, params: RegionResolveParams) -> dict[str, Any]:
    """Exactly one region, as ``siibra.get_region(parcellation, region)``."""
    return codec_for(ctx).region(ctx.catalog.region(params.parcellation, params.region))


@method("region/find")
def region_find(ctx: MethodContext, params: RegionFindParams) -> dict[str, Any]:
    """Every region matching a spec, as ``siibra.find_regions`` (in one or all parcellations)."""
    _check_range("limit", params.limit, 1, MAX_FIND_LIMIT)
    found = ctx.catalog.find_regions(params.region, params.parcellation)
    codec = codec_for(ctx)
    return {
        "regions": [codec.region(r) for r in found[: params.limit]],
        "count": len(found),
        "truncated": len(found) > params.limit,
    }


@method("region/get")
def region_get(ctx: MethodContext, params: RegionGetParams) -> dict[str, Any]:
    """One region by siibra's id (``<PARCELLATION_KEY>_<REGION_KEY>``)."""
    return codec_for(ctx).region(ctx.catalog.region_by_id(params.id))


@method("region/tree")
def region_tree(ctx: MethodContext, params: RegionTreeParams) -> dict[str, Any]:
    """A subtree (by id, or parcellation + region spec; the root by default), depth-limited."""
    _check_range("depth", params.depth, 0, 1000)
    if params.id is not None:
        region = ctx.catalog.region_by_id(params.id)
    elif params.parcellation is not None:
        parcellation = ctx.catalog.parcellation(params.parcellation)
        region = (
            parcellation.root
            if params.region is None
            else ctx.catalog.region(parcellation, params.region)
        )
    else:
        raise InvalidParams(
            "region/tree needs id, or parcellation (and optionally region)",
            fields=[{"field": "parcellation", "problem": "missing (or give id)"}],
        )
    codec = codec_for(ctx)
    return {
        "parcellation": codec.ref(region.parcellation_id),
        "depth": params.depth,
        "root": codec.tree(region, params.depth),
    }


@method("region/complete")
def region_complete(ctx: MethodContext, params: RegionCompleteParams) -> dict[str, Any]:
    """Ranked completions of region names for editors (prefix, then word, then substring)."""
    _check_range("limit", params.limit, 1, MAX_COMPLETE_LIMIT)
    indexes: dict[str | None, CompletionIndex] = ctx.services.setdefault("region_completion", {})
    key = None if params.parcellation is None else ctx.catalog.parcellation(params.parcellation).id
    index = indexes.get(key)
    if index is None:
        if key is None:
            # Newest versions first, so a name shared by versions completes to the newest one.
            newest_first = sorted(
                ctx.catalog.parcellations,
                key=lambda p: p.version is not None and p.version.next_id is not None,
            )
            regions = [r for p in newest_first for r in p.regions[1:]]
        else:
            regions = list(ctx.catalog.parcellation(key).regions[1:])
        index = indexes[key] = CompletionIndex(regions)
    codec = codec_for(ctx)
    found = index.complete(params.text, params.limit + 1)
    return {
        "items": [
            {
                "label": c.region.name,
                "id": c.region.id,
                "parcellation": codec.ref(c.region.parcellation_id),
                "depth": c.region.depth,
                "is_leaf": not c.region.children,
                "match": c.match,
            }
            for c in found[: params.limit]
        ],
        "is_incomplete": len(found) > params.limit,
    }
