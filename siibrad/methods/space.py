"""``space/*``: the configured reference spaces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siibrad.methods import MethodContext, method
from siibrad.methods.model_codec import codec_for


@dataclass(frozen=True, slots=True)
class SpaceListParams:
    atlas: str | None = None


@dataclass(frozen=True, slots=True)
class SpaceGetParams:
    space: str


@method("space/list")
def space_list(ctx: MethodContext, params: SpaceListParams) -> dict[str, Any]:
    """Every space, or those of one atlas (``{"atlas": "human"}``)."""
    codec = codec_for(ctx)
    spaces = ctx.catalog.spaces
    if params.atlas is not None:
        ids = set(ctx.catalog.atlas(params.atlas).space_ids)
        spaces = tuple(s for s in spaces if s.id in ids)
    return {"spaces": [codec.space(s) for s in spaces]}


@method("space/get")
def space_get(ctx: MethodContext, params: SpaceGetParams) -> dict[str, Any]:
    """One space by spec, as ``siibra.get_space(spec)`` (e.g. "mni152", "bigbrain")."""
    return codec_for(ctx).space(ctx.catalog.space(params.space))
