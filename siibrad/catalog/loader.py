"""Read a configuration folder (plus extension folders) into the frozen model, file by file.

Only ``atlases/ spaces/ parcellations/ maps/`` are read (never ``features/``): that is all the
catalogue needs, and it keeps a full load near 0.1 s. Files are read in siibra's order (sorted
paths per folder, extension folders appended after the base configuration, like
``siibra.extend_configuration``), and objects are registered by key like siibra's registries:
a later file with the same key replaces the earlier object in its place.

Bad files never abort the load. A file that is not JSON, has the wrong ``@type`` or a malformed
field, or refers to a space or parcellation that does not exist, becomes a
``ConfigurationProblem`` (path + reason) and is left out; everything else loads.
``load_folders(..., strict=True)`` raises ``ConfigurationError`` naming every problem instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import structlog

from siibrad.catalog import _gc
from siibrad.catalog.model import Atlas, Map, Parcellation, Space
from siibrad.catalog.parse import (
    ATLAS_TYPE,
    MAP_TYPE,
    PARCELLATION_TYPE,
    SPACE_TYPE,
    SpecError,
    build_atlas,
    build_map,
    build_parcellation,
    build_space,
)
from siibrad.errors import ConfigurationError

log = structlog.get_logger(__name__)

FOLDERS = ("atlases", "spaces", "parcellations", "maps")
"""The configuration folders the catalogue reads, in the order it builds them."""


@dataclass(frozen=True, slots=True)
class ConfigurationProblem:
    """One configuration file (or reference) that could not be used, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class LoadedConfiguration:
    """Everything the catalogue was built from: registries in siibra order, plus problems."""

    atlases: tuple[Atlas, ...]
    spaces: tuple[Space, ...]
    parcellations: tuple[Parcellation, ...]
    maps: tuple[Map, ...]
    problems: tuple[ConfigurationProblem, ...]
    files: int


T = TypeVar("T", Atlas, Space, Parcellation, Map)


def _spec_files(root: Path, folder: str) -> list[Path]:
    """JSON files directly in ``root/folder``, sorted; hidden and backup files are skipped."""
    directory = root / folder
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix == ".json" and not p.name.startswith((".", "~")) and p.is_file()
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text: {exc.reason}") from exc
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}") from exc


class _Registry:
    """Objects of one kind by key, in first-registration order (siibra's ``InstanceTable``)."""

    def __init__(self) -> None:
        self.by_key: dict[str, Any] = {}

    def add(self, obj: Any, path: Path) -> None:
        if obj.key in self.by_key:
            log.info("configuration_object_replaced", key=obj.key, path=str(path))
        self.by_key[obj.key] = obj


def load_folders(roots: Sequence[Path], *, strict: bool = False) -> LoadedConfiguration:
    """Build every atlas, space, parcellation and map of ``roots`` (base first, then extensions)."""
    with _gc.paused():
        return _load_folders(roots, strict)


def _load_folders(roots: Sequence[Path], strict: bool) -> LoadedConfiguration:
    if not roots or not any((roots[0] / folder).is_dir() for folder in FOLDERS):
        raise ConfigurationError(
            f"{roots[0] if roots else '(none)'} is not a siibra configuration: it has none of "
            f"the folders {', '.join(f + '/' for f in FOLDERS)}",
            path=str(roots[0]) if roots else None,
        )
    problems: list[ConfigurationProblem] = []
    builders: dict[str, tuple[str, Callable[[Any, Path], Any]]] = {
        "atlases": (ATLAS_TYPE, lambda spec, _path: build_atlas(spec)),
        "spaces": (SPACE_TYPE, lambda spec, _path: build_space(spec)),
        "parcellations": (PARCELLATION_TYPE, lambda spec, _path: build_parcellation(spec)),
        "maps": (MAP_TYPE, lambda spec, path: build_map(spec, str(path))),
    }
    registries = {folder: _Registry() for folder in FOLDERS}
    files = 0
    for root in roots:
        if not root.is_dir():
            problems.append(ConfigurationProblem(str(root), "extension folder does not exist"))
            continue
        for folder in FOLDERS:
            expected_type, build = builders[folder]
            for path in _spec_files(root, folder):
                files += 1
                try:
                    spec = _read_json(path)
                    if not isinstance(spec, dict):
                        raise SpecError("the file must hold one JSON object")
                    if spec.get("@type") != expected_type:
                        raise SpecError(
                            f"@type {spec.get('@type')!r} does not belong in {folder}/ "
                            f"(expected {expected_type!r})"
                        )
                    registries[folder].add(build(spec, path), path)
                except SpecError as exc:
                    problems.append(ConfigurationProblem(str(path), str(exc)))
    spaces = tuple(registries["spaces"].by_key.values())
    parcellations = tuple(registries["parcellations"].by_key.values())
    space_ids = {s.id for s in spaces}
    parcellation_ids = {p.id for p in parcellations}
    maps = tuple(
        _checked_maps(registries["maps"].by_key.values(), space_ids, parcellation_ids, problems)
    )
    atlases = tuple(
        _checked_atlases(registries["atlases"].by_key.values(), space_ids, parcellation_ids)
    )
    for problem in problems:
        log.warning("configuration_problem", path=problem.path, reason=problem.reason)
    if strict and problems:
        raise ConfigurationError(
            f"{len(problems)} configuration problem(s), first: {problems[0].path}: "
            f"{problems[0].reason}",
            problems=[p.to_dict() for p in problems],
        )
    return LoadedConfiguration(atlases, spaces, parcellations, maps, tuple(problems), files)


def _checked_maps(
    maps: Iterable[Map],
    space_ids: set[str],
    parcellation_ids: set[str],
    problems: list[ConfigurationProblem],
) -> Iterable[Map]:
    for m in maps:
        where = m.source_path or m.id
        if m.space_id not in space_ids:
            problems.append(
                ConfigurationProblem(where, f"map refers to unknown space {m.space_id!r}")
            )
        elif m.parcellation_id not in parcellation_ids:
            problems.append(
                ConfigurationProblem(
                    where, f"map refers to unknown parcellation {m.parcellation_id!r}"
                )
            )
        else:
            yield m


def _checked_atlases(
    atlases: Iterable[Atlas],
    space_ids: set[str],
    parcellation_ids: set[str],
) -> Iterable[Atlas]:
    """Atlases keep only references that exist (siibra ignores the others silently)."""
    for configured in atlases:
        atlas = configured
        unknown = [i for i in atlas.space_ids if i not in space_ids]
        unknown += [i for i in atlas.parcellation_ids if i not in parcellation_ids]
        if unknown:
            # Not a problem: the official configuration itself lists a parcellation it lacks.
            log.info("atlas_unknown_references", atlas=atlas.id, ids=unknown)
            atlas = replace(
                atlas,
                space_ids=tuple(i for i in atlas.space_ids if i in space_ids),
                parcellation_ids=tuple(i for i in atlas.parcellation_ids if i in parcellation_ids),
            )
        yield atlas
