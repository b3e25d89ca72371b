"""``parcellation/*``: the configured parcellations (region trees come from ``region/*``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siibrad.methods import MethodContext, method
from siibrad.methods.model_codec import codec_for


@dataclass(frozen=True, slots=True)
class ParcellationListParams:
    atlas: str | None = None
    space: str | None = None
    include_deprecated: bool = True


@dataclass(frozen=True, slots=True)
class ParcellationGetParams:
    parcellation: str


@method("parcellation/list")
def parcellation_list(ctx: MethodContext, params: ParcellationListParams) -> dict[str, Any]:
    """Every parcellation, optionally of one atlas and/or with a map in one space."""
    codec = codec_for(ctx)
    parcellations = ctx.catalog.parcellations
    if params.atlas is not None:
        ids = set(ctx.catalog.atlas(params.atlas).parcellation_ids)
        parcellations = tuple(p for p in parcellations if p.id in ids)
    if params.space is not None:
        space_id = ctx.catalog.space(params.space).id
        parcellations = tuple(
            p for p in parcellations if any(m.space_id == space_id for m in codec.maps_of(p))
        )
    if not params.include_deprecated:
        parcellations = tuple(
            p for p in parcellations if p.version is None or not p.version.deprecated
        )
    return {"parcellations": [codec.parcellation(p) for p in parcellations]}


@method("parcellation/get")
def parcellation_get(ctx: MethodContext, params: ParcellationGetParams) -> dict[str, Any]:
    """One parcellation by spec, as ``siibra.get_parcellation(spec)`` (newest version wins)."""
    return codec_for(ctx).parcellation(ctx.catalog.parcellation(params.parcellation))
