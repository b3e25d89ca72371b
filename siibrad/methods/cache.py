"""``cache/*``: what the per-user cache and the warm maps hold.

``cache/status`` reports the download cache (:func:`siibrad.store.cache.cache_status`: entries,
bytes, kinds, location) and the maps in memory (warm maps, bytes, the memory budget, evictions,
decoded arrays and sparse indices on disk). It never fetches or decodes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siibrad.methods import MethodContext, method
from siibrad.methods.map import maps_layer
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
