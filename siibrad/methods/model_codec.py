"""The one place where model objects become wire objects (snake_case JSON-able dicts).

Contract: :class:`ModelCodec` is built once per catalogue (:func:`codec_for` caches it in the
daemon's services) and turns Atlas, Space, Parcellation, Region, Map and Volume into the
shapes documented in protocol/schema/common.json. A reference to another object is always
``{"id", "name"}``; a region's parent and children are such references, so a reply never
walks a whole tree unless asked (``region/tree``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siibrad.catalog.model import (
    Atlas,
    BoundingBox,
    Map,
    MapIndex,
    Parcellation,
    Region,
    Space,
    Volume,
)

if TYPE_CHECKING:
    from siibrad.catalog import Catalog
    from siibrad.methods import MethodContext

Ref = dict[str, str]


class ModelCodec:
    """Serialiser bound to one catalogue (name lookups and per-parcellation maps precomputed)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._names: dict[str, str] = {}
        for group in (catalog.atlases, catalog.spaces, catalog.parcellations):
            for item in group:
                self._names.setdefault(item.id, item.name)
        self.parcellations_by_id = {p.id: p for p in catalog.parcellations}
        self._maps_of: dict[str, list[Map]] = {}
        for m in catalog.maps:
            self._maps_of.setdefault(m.parcellation_id, []).append(m)

    def ref(self, obj_id: str | None) -> Ref | None:
        if obj_id is None:
            return None
        return {"id": obj_id, "name": self._names.get(obj_id, obj_id)}

    def maps_of(self, parcellation: Parcellation) -> list[Map]:
        return self._maps_of.get(parcellation.id, [])

    # --- concepts ---------------------------------------------------------------------------

    def atlas(self, atlas: Atlas) -> dict[str, Any]:
        return {
            "id": atlas.id,
            "name": atlas.name,
            "key": atlas.key,
            "species": atlas.species,
            "order": atlas.order,
            "spaces": [self.ref(i) for i in atlas.space_ids],
            "parcellations": [self.ref(i) for i in atlas.parcellation_ids],
        }

    def space(self, space: Space) -> dict[str, Any]:
        return {
            "id": space.id,
            "name": space.name,
            "short_name": space.short_name,
            "key": space.key,
            "species": space.species,
            "modality": space.modality,
            "volumes": [self.volume(v) for v in space.volumes],
        }

    def parcellation(self, parcellation: Parcellation) -> dict[str, Any]:
        version = parcellation.version
        return {
            "id": parcellation.id,
            "name": parcellation.name,
            "short_name": parcellation.short_name,
            "key": parcellation.key,
            "species": parcellation.species,
            "modality": parcellation.modality,
            "version": None
            if version is None
            else {
                "name": version.name,
                "prev": self.ref(version.prev_id),
                "next": self.ref(version.next_id),
                "deprecated": version.deprecated,
            },
            "region_count": len(parcellation.regions),
            "root": self.region_ref(parcellation.root) if parcellation.regions else None,
            "maps": [
                {"id": m.id, "space": self.ref(m.space_id), "maptype": m.maptype.value}
                for m in self.maps_of(parcellation)
            ],
        }

    # --- regions ----------------------------------------------------------------------------

    @staticmethod
    def region_ref(region: Region) -> Ref:
        return {"id": region.id, "name": region.name}

    def region(self, region: Region) -> dict[str, Any]:
        nodes = self.parcellations_by_id[region.parcellation_id].regions
        return {
            "id": region.id,
            "name": region.name,
            "configured_name": region.configured_name,
            "key": region.key,
            "parcellation": self.ref(region.parcellation_id),
            "parent": None if region.parent is None else self.region_ref(nodes[region.parent]),
            "children": [self.region_ref(nodes[i]) for i in region.children],
            "depth": region.depth,
            "is_leaf": not region.children,
            "rgb": None if region.rgb is None else list(region.rgb),
            "ontology_ids": dict(region.ontology_ids),
            "granularity": region.granularity,
        }

    def tree(self, region: Region, depth: int | None) -> dict[str, Any]:
        """``region`` and its descendants down to ``depth`` levels (None: all)."""
        nodes = self.parcellations_by_id[region.parcellation_id].regions

        def node(r: Region, left: int | None) -> dict[str, Any]:
            out: dict[str, Any] = {"id": r.id, "name": r.name, "child_count": len(r.children)}
            if left is None or left > 0:
                below = None if left is None else left - 1
                out["children"] = [node(nodes[i], below) for i in r.children]
            else:
                out["children"] = []
            return out

        return node(region, depth)

    # --- maps and volumes -------------------------------------------------------------------

    def volume(self, volume: Volume) -> dict[str, Any]:
        return {
            "name": volume.name,
            "variant": volume.variant,
            "space": self.ref(volume.space_id),
            "formats": list(volume.formats),
            "fragments": list(volume.fragments),
            "providers": [
                {"format": p.format, "url": p.url, "fragment": p.fragment} for p in volume.providers
            ],
            "bounding_box": self.bounding_box(volume.boundingbox),
        }

    def bounding_box(self, box: BoundingBox | None) -> dict[str, Any] | None:
        if box is None:
            return None
        return {
            "space": self.ref(box.space_id),
            "min_mm": list(box.min_mm),
            "max_mm": list(box.max_mm),
        }

    def map(self, m: Map, *, include_regions: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": m.id,
            "name": m.name,
            "key": m.key,
            "space": self.ref(m.space_id),
            "parcellation": self.ref(m.parcellation_id),
            "maptype": m.maptype.value,
            "sparse": m.sparse,
            "region_count": len(m.indices),
            "volumes": [self.volume(v) for v in m.volumes],
        }
        if include_regions:
            out["regions"] = [
                {"name": name, "indices": [self.map_index(i) for i in indices]}
                for name, indices in m.indices
            ]
        return out

    @staticmethod
    def map_index(index: MapIndex) -> dict[str, Any]:
        return {
            "volume": index.volume,
            "label": index.label,
            "fragment": index.fragment,
            "z": index.z,
        }


def codec_for(ctx: MethodContext) -> ModelCodec:
    """The daemon's codec (built on first use; requests that build it run on one thread)."""
    codec = ctx.services.get("model_codec")
    if not isinstance(codec, ModelCodec) or codec.catalog is not ctx.catalog:
        codec = ctx.services["model_codec"] = ModelCodec(ctx.catalog)
    return codec
