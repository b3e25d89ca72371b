"""``cache/*``: what the per-user cache and the warm maps hold.

``cache/status`` reports the download cache (:func:`siibrad.store.cache.cache_status`: entries,
bytes, kinds, location) and the maps in memory (warm maps, bytes, the memory budget, evictions,
decoded arrays and sparse indices on disk). It never fetches or decodes anything.
``cache/clear`` forgets one map: its warm copy and its persisted sparse index, so that the next
request rebuilds the index and fetches again the region files that were missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from siibrad.methods import MethodContext, method
from siibrad.methods.map import map_ref, maps_layer, select_map
from siibrad.store import cache as store_cache


@dataclass(frozen=True, slots=True)
class CacheStatusParams:
    pass


@method("cache/status", heavy=True)
def cache_status(ctx: MethodContext, params: CacheStatusParams) -> dict[str, Any]:
    """The disk cache and the warm maps: sizes, entries, budget."""
    return {
        "cache": store_cache.cache_status(ctx.settings),
        "maps": maps_layer().map_store(ctx).status(),
    }


@dataclass(frozen=True, slots=True)
class CacheClearParams:
    map: str | None = None
    parcellation: str | None = None
    space: str | None = None
    maptype: Literal["labelled", "statistical"] = "labelled"
    spec: str = ""


@method("cache/clear", heavy=True)
def cache_clear(ctx: MethodContext, params: CacheClearParams) -> dict[str, Any]:
    """Forget one map (warm copy and sparse index); its next use rebuilds and refetches."""
    found, _ = select_map(ctx, params)
    return {"map": map_ref(found), **maps_layer().map_store(ctx).forget(found)}
