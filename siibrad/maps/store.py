"""MapStore: the maps of one daemon, decoded once, held warm within a memory budget.

Contract: :meth:`MapStore.warm` turns a catalogue :class:`Map` into a :class:`LabelledMap` or
:class:`StatisticalMap` (fetching through the :class:`Fetcher`, decoding through the on-disk
array cache, building or mapping back the persisted sparse index) and keeps it in a
least-recently-used table bounded by ``settings.memory_budget_bytes`` (the map in use is never
evicted). Concurrent callers warming the same map wait for one build. :meth:`assign`,
:meth:`values` and :meth:`region_volume` are the operations the wire methods expose. Files
that cannot be had are reported (``missing``) as long as some of the map is usable; when none
is, the fetcher's :class:`DataUnavailableError` (URL, mirror setting) is raised.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from siibrad.catalog.model import Map, MapType
from siibrad.errors import (
    DataUnavailableError,
    InvalidPointsError,
    RegionNotFoundError,
    SpaceMismatchError,
)
from siibrad.maps.array_cache import DecodedArrayCache
from siibrad.maps.assignment import Assignment, concat_assignments, empty_assignment
from siibrad.maps.labelled import LabelledMap, LabelledPart, build_part
from siibrad.maps.points import affine_scaling_mm, as_points_mm
from siibrad.maps.regions import RegionResolver, RegionTable, build_region_table
from siibrad.maps.sparse_index import SparseIndex, SparseIndexBuilder
from siibrad.maps.statistical import StatisticalMap
from siibrad.maps.uncertain import (
    SIGMA_EXACT_BELOW_VOXELS,
    assign_uncertain_labelled,
    assign_uncertain_statistical,
)
from siibrad.maps.volumes import (
    PROVIDERS,
    Fetcher,
    MissingVolume,
    VolumePart,
    fragment_matches,
    volume_parts,
)
from siibrad.settings import Settings

log = structlog.get_logger(__name__)

Progress = Callable[[str, int, int | None], None]
"""``progress(message, done, total)``: downloads in bytes, index builds in region maps."""

WarmMap = LabelledMap | StatisticalMap


class MapStore:
    """Warm maps of one process, shared by every request."""

    def __init__(
        self, settings: Settings, fetcher: Fetcher, resolver: RegionResolver | None = None
    ) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.resolver = resolver
        self.root = settings.cache_dir / "maps"
        self.arrays = DecodedArrayCache(self.root / "arrays")
        self._warm: OrderedDict[str, WarmMap] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.evictions = 0

    # --- warm maps ---------------------------------------------------------------------------

    def warm(self, map_: Map, progress: Progress | None = None) -> WarmMap:
        """The warm form of ``map_``, loading it (once, whatever the concurrency) if needed."""
        with self._lock:
            found = self._warm.get(map_.id)
            if found is not None:
                self._warm.move_to_end(map_.id)
                return found
            build_lock = self._building.setdefault(map_.id, threading.Lock())
        with build_lock:
            with self._lock:
                found = self._warm.get(map_.id)
            if found is None:
                started = time.perf_counter()
                regions = build_region_table(map_, self.resolver)
                if map_.maptype == MapType.STATISTICAL or map_.sparse:
                    found = self._load_statistical(map_, regions, progress)
                else:
                    found = self._load_labelled(map_, regions, progress)
                log.info(
                    "map_warmed",
                    map=map_.id,
                    size_bytes=found.size_bytes,
                    seconds=round(time.perf_counter() - started, 3),
                )
        with self._lock:
            self._warm[map_.id] = found
            self._warm.move_to_end(map_.id)
            self._building.pop(map_.id, None)
            self._evict(keep=map_.id)
        return found

    def _evict(self, keep: str) -> None:
        budget = self.settings.memory_budget_bytes
        while self.warm_bytes() > budget and len(self._warm) > 1:
            victim, warm = next(iter(self._warm.items()))
            if victim == keep:
                break
            del self._warm[victim]
            self.evictions += 1
            log.info("map_evicted", map=victim, size_bytes=warm.size_bytes, budget_bytes=budget)

    def warm_bytes(self) -> int:
        return sum(w.size_bytes for w in self._warm.values())

    def is_warm(self, map_id: str) -> bool:
        with self._lock:
            return map_id in self._warm

    def _fetch_progress(self, progress: Progress | None, url: str) -> Any:
        if progress is None:
            return None
        name = url.rsplit("/", 1)[-1]

        def report(done: int, total: int | None) -> None:
            progress(f"downloading {name}", done, total)

        return report

    def _load_labelled(
        self, map_: Map, regions: RegionTable, progress: Progress | None
    ) -> LabelledMap:
        parts: list[LabelledPart] = []
        failures: list[tuple[VolumePart, DataUnavailableError]] = []
        for part in volume_parts(map_):
            provider = PROVIDERS[part.format]
            try:
                data = provider.load(
                    part.url,
                    fetcher=self.fetcher,
                    arrays=self.arrays,
                    progress=self._fetch_progress(progress, part.url),
                    max_volume_bytes=self.settings.max_volume_bytes,
                )
            except DataUnavailableError as exc:
                failures.append((part, exc))
                log.warning("map_volume_unavailable", map=map_.id, url=part.url, error=str(exc))
                continue
            parts.append(build_part(part.volume, part.fragment, data, regions))
        if not parts:
            raise _unavailable(map_, failures)
        lmap = LabelledMap(parts, regions)
        lmap.missing = tuple(_missing_for(regions, failures))
        return lmap

    def _sparse_folder(self, map_: Map) -> Path:
        spec = json.dumps(
            {
                "map": map_.id,
                "parts": [[p.volume, p.fragment, p.format, p.url] for p in volume_parts(map_)],
                "entries": [[ix.volume, ix.fragment, ix.z] for _, ix in build_entries(map_)],
            },
            sort_keys=True,
        )
        return self.root / "sparse" / hashlib.sha256(spec.encode()).hexdigest()[:32]

    def _load_statistical(
        self, map_: Map, regions: RegionTable, progress: Progress | None
    ) -> StatisticalMap:
        folder = self._sparse_folder(map_)
        index = SparseIndex.load(folder)
        if index is None:
            index = self._build_sparse(map_, regions, progress)
            index.save(folder)
            index = SparseIndex.load(folder) or index
        missing = tuple(
            MissingVolume(m["region"], m["url"], m["reason"]) for m in index.meta.get("missing", [])
        )
        if missing:
            log.warning(
                "map_regions_missing",
                map=map_.id,
                count=len(missing),
                regions=[m.region for m in missing][:20],
            )
        return StatisticalMap(index, regions, missing)

    def _build_sparse(
        self, map_: Map, regions: RegionTable, progress: Progress | None
    ) -> SparseIndex:
        started = time.perf_counter()
        builder = SparseIndexBuilder(len(regions.entries))
        parts = volume_parts(map_)
        failures: list[tuple[VolumePart, DataUnavailableError]] = []
        scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=_ensure(self.root)))
        try:
            for done, part in enumerate(parts):
                if progress is not None:
                    progress(f"indexing {map_.name}", done, len(parts))
                entries = [
                    (i, ix)
                    for i, (_, ix) in enumerate(regions.entries)
                    if ix.volume == part.volume and fragment_matches(ix.fragment, part.fragment)
                ]
                if not entries:
                    continue
                try:
                    data = PROVIDERS[part.format].load(
                        part.url,
                        fetcher=self.fetcher,
                        arrays=DecodedArrayCache(scratch),
                        progress=self._fetch_progress(progress, part.url),
                        max_volume_bytes=self.settings.max_volume_bytes,
                    )
                except DataUnavailableError as exc:
                    failures.append((part, exc))
                    log.warning("map_volume_unavailable", map=map_.id, url=part.url, error=str(exc))
                    continue
                for entry, ix in entries:
                    array = data.array[..., ix.z] if ix.z is not None else data.array
                    if array.ndim == 4 and array.shape[3] == 1:
                        array = array[..., 0]
                    builder.add(entry, array, data.affine)
                del data
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir(parents=True, exist_ok=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not builder.included:
            raise _unavailable(map_, failures)
        missing = _missing_for(regions, failures)
        index = builder.finish(
            meta={
                "map": map_.id,
                "missing": [
                    {"region": m.region, "url": m.url, "reason": m.reason} for m in missing
                ],
                "build_s": round(time.perf_counter() - started, 3),
            }
        )
        if progress is not None:
            progress(f"indexing {map_.name}", len(parts), len(parts))
        log.info(
            "sparse_index_built",
            map=map_.id,
            regions=len(builder.included),
            missing=len(missing),
            nonzero=int(index.entries.size),
            seconds=round(time.perf_counter() - started, 3),
        )
        return index

    # --- operations ----------------------------------------------------------------------------

    def assign(
        self,
        map_: Map,
        points: Any,
        *,
        sigma_mm: Any = 0.0,
        lower_threshold: float = 0.0,
        space_id: str | None = None,
        progress: Progress | None = None,
    ) -> Assignment:
        """Assign points (N×3 mm, in the map's space) to the regions of ``map_``."""
        check_space(map_, space_id)
        points_mm = as_points_mm(points)
        sigma = _sigmas(sigma_mm, len(points_mm))  # None: every point is exact
        if len(points_mm) == 0:
            regions = build_region_table(map_, self.resolver)
            return empty_assignment(regions, labelled=map_.maptype == MapType.LABELLED)
        warm = self.warm(map_, progress)
        sigma_vox = None if sigma is None else sigma / affine_scaling_mm(warm.affine)
        if sigma_vox is None or sigma_vox.max() < SIGMA_EXACT_BELOW_VOXELS:
            result = warm.assign_exact(points_mm, lower_threshold)
        else:
            uncertain = np.flatnonzero(sigma_vox >= SIGMA_EXACT_BELOW_VOXELS)
            exact_rows = np.flatnonzero(sigma_vox < SIGMA_EXACT_BELOW_VOXELS)
            exact = warm.assign_exact(points_mm[exact_rows], lower_threshold)
            exact = _renumber(exact, exact_rows)
            if isinstance(warm, LabelledMap):
                fuzzy = assign_uncertain_labelled(
                    warm, points_mm, uncertain, sigma_vox[uncertain], lower_threshold
                )
            else:
                fuzzy = assign_uncertain_statistical(
                    warm, points_mm, uncertain, sigma_vox[uncertain], lower_threshold
                )
            result = concat_assignments([exact, fuzzy])
        return _with_missing(result, warm)

    def values(
        self,
        map_: Map,
        points: Any,
        *,
        space_id: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[npt.NDArray[np.float64], RegionTable, tuple[str, ...]]:
        """(N×R values, the regions of the columns, names of regions without data)."""
        check_space(map_, space_id)
        points_mm = as_points_mm(points)
        if len(points_mm) == 0:
            regions = build_region_table(map_, self.resolver)
            return np.empty((0, len(regions))), regions, ()
        warm = self.warm(map_, progress)
        return warm.values(points_mm), warm.regions, _missing_names(warm)

    def region_volume(
        self, map_: Map, region: str, progress: Progress | None = None
    ) -> tuple[np.ndarray[Any, Any], npt.NDArray[np.float64], str]:
        """(array, affine, resolved region name): a labelled region's mask or a statistical map."""
        warm = self.warm(map_, progress)
        row = warm.regions.row_of(region)
        if row is None and self.resolver is not None:
            resolved = self.resolver.region(map_.parcellation_id, region)
            row = warm.regions.row_of(resolved.name)
        if row is None:
            raise RegionNotFoundError(
                f"no region {region!r} in map {map_.name}",
                spec=region,
                suggestions=_closest(region, warm.regions.configured_names),
                map=map_.id,
            )
        name = str(warm.regions.names[row])
        if isinstance(warm, LabelledMap):
            mask, affine = warm.region_mask(row)
            return mask, affine, name
        values, affine = warm.region_map(row)
        return values, affine, name

    def map_volume(
        self, map_: Map, volume: int = 0, fragment: str | None = None
    ) -> tuple[np.ndarray[Any, Any], npt.NDArray[np.float64]]:
        """A whole labelled volume (one fragment of it) as decoded (memory-mapped)."""
        warm = self.warm(map_)
        if isinstance(warm, LabelledMap):
            for part in warm.parts:
                if part.volume == volume and fragment_matches(fragment, part.fragment):
                    return part.array, part.affine
        raise RegionNotFoundError(
            f"map {map_.name} has no volume {volume}"
            + (f" fragment {fragment!r}" if fragment else "")
            + (
                ""
                if isinstance(warm, LabelledMap)
                else " (statistical maps are fetched per region)"
            ),
            spec=f"volume {volume}",
        )

    def forget(self, map_: Map) -> dict[str, Any]:
        """Drop ``map_`` from memory and delete its persisted sparse index, if it has one.

        The next request rebuilds the index, fetching again every region file that was missing
        (an upstream that was down, a mirror completed since). Downloads and decoded volumes
        stay: they are verified copies of their sources. The index folder is renamed away before
        it is deleted, so a reader in another process sees the whole index or none.
        """
        with self._lock:
            dropped = self._warm.pop(map_.id, None) is not None
        removed_bytes = 0
        folder = self._sparse_folder(map_)
        if folder.is_dir():
            removed_bytes = _tree_bytes(folder)
            trash = Path(tempfile.mkdtemp(prefix=".forget-", dir=folder.parent))
            try:
                folder.rename(trash / "index")
            except FileNotFoundError:  # another process removed it first
                removed_bytes = 0
            finally:
                shutil.rmtree(trash, ignore_errors=True)
        log.info("map_forgotten", map=map_.id, warm=dropped, removed_bytes=removed_bytes)
        return {"dropped_warm": dropped, "removed_bytes": removed_bytes}

    def status(self) -> dict[str, Any]:
        """Warm maps, their sizes and the budget (for ``cache/status``)."""
        with self._lock:
            warm = [
                {
                    "map": map_id,
                    "kind": "labelled" if isinstance(w, LabelledMap) else "statistical",
                    "size_bytes": w.size_bytes,
                    "missing_regions": len(_missing_names(w)),
                }
                for map_id, w in self._warm.items()
            ]
        return {
            "warm_maps": warm,
            "warm_bytes": sum(w["size_bytes"] for w in warm),
            "memory_budget_bytes": self.settings.memory_budget_bytes,
            "evictions": self.evictions,
            "decoded_arrays_bytes": self.arrays.size_bytes(),
            "sparse_indices_bytes": _tree_bytes(self.root / "sparse"),
        }


def build_entries(map_: Map) -> list[tuple[str, Any]]:
    return [(name, ix) for name, indices in map_.indices for ix in indices]


def check_space(map_: Map, space_id: str | None) -> None:
    """Points must be in the map's space (no warping yet)."""
    if space_id is not None and space_id != map_.space_id:
        raise SpaceMismatchError(
            f"the points are in space {space_id!r} but map {map_.name!r} is in {map_.space_id!r};"
            " warping between spaces is not available, give points in the map's space",
            points_space=space_id,
            map_space=map_.space_id,
        )


def _sigmas(sigma_mm: Any, count: int) -> npt.NDArray[np.float64] | None:
    """One valid sigma (mm) per point, or ``None`` for the common call: every point exact."""
    if type(sigma_mm) in (int, float) and sigma_mm == 0:
        return None
    try:
        sigma = np.asarray(sigma_mm, dtype=np.float64)
        sigma = np.broadcast_to(sigma, (count,)) if sigma.ndim == 0 else sigma
    except (TypeError, ValueError) as exc:
        raise InvalidPointsError(f"sigma_mm must be a number or one per point: {exc}") from exc
    if sigma.shape != (count,):
        raise InvalidPointsError(
            f"sigma_mm must be one number or one per point ({count}), got shape {list(sigma.shape)}"
        )
    bad = np.flatnonzero(~np.isfinite(sigma) | (sigma < 0))
    if bad.size:
        raise InvalidPointsError(
            "sigma_mm must be finite and ≥ 0", rows=bad[:20].tolist(), count=int(bad.size)
        )
    return sigma


def _renumber(result: Assignment, rows: npt.NDArray[np.int64]) -> Assignment:
    return replace(result, point=rows[result.point])


def _missing_names(warm: WarmMap) -> tuple[str, ...]:
    return tuple(m.region for m in getattr(warm, "missing", ()))


def _with_missing(result: Assignment, warm: WarmMap) -> Assignment:
    names = _missing_names(warm)
    return replace(result, missing_regions=names) if names != result.missing_regions else result


def _missing_for(
    regions: RegionTable, failures: list[tuple[VolumePart, DataUnavailableError]]
) -> list[MissingVolume]:
    missing: list[MissingVolume] = []
    for part, exc in failures:
        for row, ix in regions.entries:
            if ix.volume == part.volume and fragment_matches(ix.fragment, part.fragment):
                name = regions.configured_names[row]
                missing.append(MissingVolume(name, part.url, exc.message))
    return missing


def _unavailable(
    map_: Map, failures: list[tuple[VolumePart, DataUnavailableError]]
) -> DataUnavailableError:
    urls = [part.url for part, _ in failures]
    first = failures[0][1] if failures else None
    return DataUnavailableError(
        f"none of the {len(urls)} file(s) of map {map_.name!r} could be had"
        + (f": {first.message}" if first else ""),
        map=map_.id,
        url=urls[0] if urls else None,
        urls=urls[:20],
        mirrors_setting="SIIBRAD_MIRRORS",
    )


def _closest(spec: str, names: tuple[str, ...]) -> list[str]:
    return difflib.get_close_matches(spec, list(names), n=5, cutoff=0.4)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tree_bytes(root: Path) -> int:
    if not root.is_dir():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
