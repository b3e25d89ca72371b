"""``atlas/*``: the configured atlases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siibrad.methods import MethodContext, method
from siibrad.methods.model_codec import codec_for


@dataclass(frozen=True, slots=True)
class AtlasListParams:
    species: str | None = None


@dataclass(frozen=True, slots=True)
class AtlasGetParams:
    atlas: str


@method("atlas/list")
def atlas_list(ctx: MethodContext, params: AtlasListParams) -> dict[str, Any]:
    """Every atlas, in siibra's registry order (optionally of one species, e.g. "human")."""
    codec = codec_for(ctx)
    wanted = None if params.species is None else params.species.lower()
    return {
        "atlases": [
            codec.atlas(a)
            for a in ctx.catalog.atlases
            if wanted is None or wanted in a.species.lower()
        ]
    }


@method("atlas/get")
def atlas_get(ctx: MethodContext, params: AtlasGetParams) -> dict[str, Any]:
    """One atlas by spec (name words, key or id), as ``siibra.atlases[spec]``."""
    return codec_for(ctx).atlas(ctx.catalog.atlas(params.atlas))
