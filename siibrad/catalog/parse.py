"""Build the frozen model objects from the JSON specs of siibra-configurations.

One function per ``@type`` (atlas, space, parcellation, map, volume). Each takes the decoded
JSON of one file and returns a model object, or raises ``SpecError`` with a message that says
which field is wrong: the loader turns that into a per-file problem, so one broken file never
takes the rest of a configuration down. Names, keys and ids follow siibra's rules exactly
(``naming``): a region's name is cleaned, its key derived from that name, its id is
``<PARCELLATION_KEY>_<REGION_KEY>``; a ``prerelease`` concept's name gains "[PRERELEASE] ".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from siibrad.catalog.model import (
    Atlas,
    BoundingBox,
    Map,
    MapIndex,
    MapType,
    Parcellation,
    Provider,
    Region,
    Space,
    Version,
    Volume,
)
from siibrad.catalog.naming import clean_name, create_key, species_name

ATLAS_TYPE = "juelich/iav/atlas/v1.0.0"
SPACE_TYPE = "siibra/space/v0.0.1"
PARCELLATION_TYPE = "siibra/parcellation/v0.0.1"
MAP_TYPE = "siibra/map/v0.0.1"

_PRERELEASE_PREFIX = "[PRERELEASE] "
_MAP_ID_PREFIX = "siibra-map-v0.0.1"


class SpecError(ValueError):
    """A configuration spec that cannot be built; the message names the offending field."""


def _field(spec: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in spec:
        raise SpecError(f"{where}: missing field {name!r}")
    value = spec[name]
    if not isinstance(value, kind):
        raise SpecError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _optional_str(spec: Mapping[str, Any], name: str, where: str) -> str | None:
    value = spec.get(name)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{where}: field {name!r} must be a string")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a JSON object, found {type(value).__name__}")
    return value


def _display_name(spec: Mapping[str, Any], name: str) -> str:
    return _PRERELEASE_PREFIX + name if spec.get("prerelease", False) else name


def _species(spec: Mapping[str, Any], where: str) -> str:
    found = species_name(spec.get("species"))
    if found is None:
        raise SpecError(f"{where}: unknown or missing species {spec.get('species')!r}")
    return found


def _ref_id(spec: Mapping[str, Any], name: str, where: str) -> str:
    ref = _object(_field(spec, name, Mapping, where), f"{where}.{name}")
    return str(_field(ref, "@id", str, f"{where}.{name}"))


def build_atlas(spec: Mapping[str, Any]) -> Atlas:
    """An ``Atlas`` from a ``juelich/iav/atlas/v1.0.0`` spec."""
    name = _display_name(spec, _field(spec, "name", str, "atlas"))
    space_ids = _field(spec, "spaces", list, "atlas")
    parcellation_ids = _field(spec, "parcellations", list, "atlas")
    if not all(isinstance(i, str) for i in [*space_ids, *parcellation_ids]):
        raise SpecError("atlas: 'spaces' and 'parcellations' must list @id strings")
    order = spec.get("order", 0)
    return Atlas(
        id=_field(spec, "@id", str, "atlas"),
        name=name,
        key=create_key(name),
        species=_species(spec, "atlas"),
        space_ids=tuple(space_ids),
        parcellation_ids=tuple(parcellation_ids),
        order=order if isinstance(order, int) else 0,
    )


def build_volume(spec: Mapping[str, Any], space_id: str | None, where: str) -> Volume:
    """A ``Volume``: providers per format, each a URL or a fragment → URL object."""
    spec = _object(spec, where)
    providers: list[Provider] = []
    for fmt, target in _object(_field(spec, "providers", Mapping, where), where).items():
        if isinstance(target, str):
            providers.append(Provider(format=fmt, url=target))
        elif isinstance(target, Mapping) and all(isinstance(u, str) for u in target.values()):
            providers.extend(Provider(format=fmt, url=u, fragment=f) for f, u in target.items())
        else:
            raise SpecError(f"{where}: provider {fmt!r} must be a URL or fragment → URL object")
    own_space = spec.get("space")
    if space_id is None and isinstance(own_space, Mapping):
        space_id = _optional_str(own_space, "@id", where)
    return Volume(
        providers=tuple(providers),
        space_id=space_id,
        variant=_optional_str(spec, "variant", where),
        name=_optional_str(spec, "name", where),
        boundingbox=_boundingbox(spec.get("boundingbox"), space_id, where),
    )


def _boundingbox(spec: Any, space_id: str | None, where: str) -> BoundingBox | None:
    if spec is None:
        return None
    spec = _object(spec, f"{where}.boundingbox")
    corners = _field(spec, "coordinates", list, f"{where}.boundingbox")
    try:
        a, b = ([float(x) for x in corner] for corner in corners)
        low = (min(a[0], b[0]), min(a[1], b[1]), min(a[2], b[2]))
        high = (max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]))
    except (TypeError, ValueError, IndexError) as exc:
        raise SpecError(f"{where}.boundingbox: coordinates must be two 3D points") from exc
    box_space = spec.get("space")
    if isinstance(box_space, Mapping) and isinstance(box_space.get("@id"), str):
        space_id = box_space["@id"]
    return BoundingBox(space_id=space_id or "", min_mm=low, max_mm=high)


def build_space(spec: Mapping[str, Any]) -> Space:
    """A ``Space`` with its template volumes."""
    space_id = _field(spec, "@id", str, "space")
    name = _display_name(spec, _field(spec, "name", str, "space"))
    volumes = _field(spec, "volumes", list, "space") if "volumes" in spec else []
    return Space(
        id=space_id,
        name=name,
        short_name=_optional_str(spec, "shortName", "space") or "",
        key=create_key(name),
        species=_species(spec, "space"),
        modality=_optional_str(spec, "modality", "space") or "",
        volumes=tuple(
            build_volume(v, space_id, f"space volume {i}") for i, v in enumerate(volumes)
        ),
    )


def _rgb(value: Any, where: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 7 and value.startswith("#"):
        try:
            return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
        except ValueError:
            pass
    raise SpecError(f"{where}: rgb {value!r} is not a '#RRGGBB' colour")


def _ontology_ids(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        return ()
    pairs: list[tuple[str, str]] = []
    for kind, ids in value.items():
        if isinstance(ids, str):
            pairs.append((kind, ids))
        elif isinstance(ids, list):
            pairs.extend((kind, i) for i in ids if isinstance(i, str))
    return tuple(pairs)


def build_parcellation(spec: Mapping[str, Any]) -> Parcellation:
    """A ``Parcellation`` with its whole region tree, flattened in pre-order."""
    parcellation_id = _field(spec, "@id", str, "parcellation")
    name = _display_name(spec, clean_name(_field(spec, "name", str, "parcellation")))
    key = create_key(name)
    regions: list[Region] = []
    children_of: list[list[int]] = []
    root_spec = {"children": _field(spec, "regions", list, "parcellation"), **spec}
    # Iterative pre-order walk: a recursive closure would be a reference cycle holding every
    # region, which the frozen garbage collector (see _gc) would never free.
    stack: list[tuple[Mapping[str, Any], int | None, int, str]] = [
        (root_spec, None, 0, _field(spec, "name", str, "parcellation"))
    ]
    while stack:
        node, parent, depth, configured = stack.pop()
        where = f"region {configured!r}"
        region_name = name if parent is None else _display_name(node, clean_name(configured))
        region_key = create_key(region_name)
        index = len(regions)
        regions.append(
            Region(
                id=parcellation_id if parent is None else f"{key}_{region_key}",
                name=region_name,
                configured_name=configured,
                key=region_key,
                parcellation_id=parcellation_id,
                index=index,
                parent=parent,
                children=(),
                depth=depth,
                rgb=None if parent is None else _rgb(node.get("rgb"), where),
                ontology_ids=_ontology_ids(node.get("ebrains")),
                granularity=None if parent is None else _optional_str(node, "granularity", where),
            )
        )
        children_of.append([])
        if parent is not None:
            children_of[parent].append(index)
        children = _field(node, "children", list, where) if "children" in node else []
        for child_spec in reversed(children):
            child = _object(child_spec, f"{where} child")
            child_name = _field(child, "name", str, f"{where} child")
            stack.append((child, index, depth + 1, child_name))
    version = spec.get("@version")
    return Parcellation(
        id=parcellation_id,
        name=name,
        short_name=_optional_str(spec, "shortName", "parcellation") or "",
        key=key,
        species=_species(spec, "parcellation"),
        modality=_optional_str(spec, "modality", "parcellation") or "",
        version=_version(version) if version is not None else None,
        regions=tuple(
            replace(region, children=tuple(children)) if children else region
            for region, children in zip(regions, children_of, strict=True)
        ),
    )


def _version(spec: Any) -> Version:
    spec = _object(spec, "parcellation @version")
    name = spec.get("name")
    return Version(
        name=name if isinstance(name, str) else "",
        prev_id=_optional_str(spec, "@prev", "parcellation @version"),
        next_id=_optional_str(spec, "@next", "parcellation @version"),
        deprecated=bool(spec.get("deprecated", False)),
    )


def build_map(spec: Mapping[str, Any], source_path: str | None = None) -> Map:
    """A ``Map``: its volumes and, per configured region name, where the region lives."""
    map_id = _field(spec, "@id", str, "map")
    space_id = _ref_id(spec, "space", "map")
    volume_specs = _field(spec, "volumes", list, "map")
    volumes = tuple(
        build_volume(v, space_id, f"map volume {i}") for i, v in enumerate(volume_specs)
    )
    indices: list[tuple[str, tuple[MapIndex, ...]]] = []
    interned: dict[tuple[Any, ...], MapIndex] = {}
    labels: set[object] = set()
    for region_name, entries in _object(_field(spec, "indices", Mapping, "map"), "map").items():
        if not isinstance(entries, list):
            raise SpecError(f"map indices of {region_name!r} must be a list")
        parsed = tuple(_map_index(e, len(volumes), region_name, interned) for e in entries)
        labels.update(i.label for i in parsed)
        indices.append((region_name, parsed))
    if all(isinstance(label, int) for label in labels):
        maptype = MapType.LABELLED
    elif labels == {None}:
        maptype = MapType.STATISTICAL
    else:
        raise SpecError("map mixes integer labels and unlabelled (statistical) indices")
    name = spec.get("name")
    return Map(
        id=map_id,
        name=_display_name(spec, name if isinstance(name, str) else map_id),
        key=create_key(map_id[len(_MAP_ID_PREFIX) :]),
        space_id=space_id,
        parcellation_id=_ref_id(spec, "parcellation", "map"),
        maptype=maptype,
        volumes=volumes,
        indices=tuple(indices),
        sparse=bool(spec.get("represented_as_sparsemap", False)),
        source_path=source_path,
    )


def _map_index(
    entry: Any, volume_count: int, region_name: str, interned: dict[tuple[Any, ...], MapIndex]
) -> MapIndex:
    """One index entry; equal entries share one ``MapIndex`` (maps repeat them by thousands)."""
    if not isinstance(entry, dict):
        raise SpecError(f"map index of {region_name!r}: expected a JSON object")
    fields = (entry.get("volume", 0), entry.get("label"), entry.get("fragment"), entry.get("z"))
    # Types are part of the key: 1.0 == 1 == True would otherwise share an entry unchecked.
    key = (*fields, type(fields[0]), type(fields[1]), type(fields[3]))
    found = interned.get(key)
    if found is not None:
        return found
    volume, label, fragment, z = fields
    where = f"map index of {region_name!r}"
    if type(volume) is not int or not 0 <= volume < volume_count:
        raise SpecError(f"{where}: volume {volume!r} is not one of the {volume_count} volumes")
    if (label is not None and type(label) is not int) or (z is not None and type(z) is not int):
        raise SpecError(f"{where}: label and z must be integers")
    if fragment is not None and not isinstance(fragment, str):
        raise SpecError(f"{where}: fragment must be a string")
    found = interned[key] = MapIndex(volume=volume, label=label, fragment=fragment, z=z)
    return found
