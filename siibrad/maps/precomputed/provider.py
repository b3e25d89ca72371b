"""The ``neuroglancer/precomputed`` volume provider: one scale of a dataset, decoded once.

Contract: :meth:`PrecomputedProvider.load` reads ``<url>/info`` and ``<url>/transform.json``
(absent: the identity, with a warning, as siibra does), picks the finest scale whose decoded
array fits ``max_volume_bytes`` (``SIIBRAD_MAX_VOLUME_MB``, siibra's 0.2 GiB by default) and
returns that scale's whole array with its voxel → mm affine (:func:`info.scale_affine`). The
array is assembled chunk by chunk into one preallocated ``.npy`` of the decoded-array cache,
stored under a key made of the URL, the scale and the exact ``info`` and ``transform.json``
bytes, so every later load (in this process or another) maps it back without reading a chunk.

Chunks come through the :class:`Fetcher` (so they land in the download cache too), a few at a
time (:data:`PARALLEL_FETCHES`; decoding stays on the calling thread and at most twice that many
chunks wait in memory). Unsharded chunk files are ``<scale>/x0-x1_y0-y1_z0-z1`` (the URL form),
tried as named, then with ``.gz``, then in neuroglancer-scripts' default on-disk "deep" layout
``<scale>/x0-x1/y0-y1/z0-z1[.gz]`` (a local copy served from a mirror directory); the first
chunk is read alone, and once a chunk has been found only its layout is tried for the others (so
an absent chunk costs two probes, not four), its form first. A sharded scale fetches each whole
``<shard>.shard`` file once and reads only the indexes and chunks it needs. A chunk or shard
that does not exist (the fetcher's ``data.absent``: HTTP 404/410, not in a local mirror) stays
zero, as in siibra and neuroglancer; any other failure (5xx, timeout, refusal, corrupt bytes)
raises ``DataUnavailableError``, never silent zeros, and so does a scale none of whose chunks
exists (a wrong layout, not an empty volume).
"""

from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin

import numpy as np
import numpy.typing as npt
import structlog

from siibrad.errors import DataUnavailableError
from siibrad.maps.array_cache import DecodedArray, DecodedArrayCache, array_key
from siibrad.maps.nifti_io import narrow_in_place
from siibrad.maps.precomputed.chunks import ChunkBox, chunk_boxes, chunk_grid, decode_chunk
from siibrad.maps.precomputed.info import (
    Scale,
    Sharding,
    VolumeInfo,
    check_readable,
    choose_scale,
    parse_info,
    parse_transform,
    scale_affine,
)
from siibrad.maps.precomputed.sharding import (
    ShardFile,
    compressed_morton_codes,
    shard_file_name,
    shard_locations,
)
from siibrad.settings import DEFAULT_MAX_VOLUME_MB

if TYPE_CHECKING:
    from siibrad.maps.volumes import ByteProgress, Fetcher

log = structlog.get_logger(__name__)

FORMAT = "neuroglancer/precomputed"
_DECODER = "siibrad-precomputed-1"
"""Part of every cache key: change it when decoding changes, so old arrays are not reused."""
_CHUNK_FORMS: tuple[tuple[bool, str], ...] = (
    (False, ""),
    (False, ".gz"),
    (True, ""),
    (True, ".gz"),
)
"""(deep layout, suffix) of chunk files, in the order they are tried."""
PARALLEL_FETCHES = 4
"""Chunk files fetched at once: hides round trips to a remote server, bounded in memory."""


class PrecomputedProvider:
    """``neuroglancer/precomputed``: the URL of a dataset folder (the one holding ``info``)."""

    formats: ClassVar[tuple[str, ...]] = (FORMAT,)

    def load(
        self,
        url: str,
        *,
        fetcher: Fetcher,
        arrays: DecodedArrayCache,
        progress: ByteProgress | None = None,
        max_volume_bytes: int | None = None,
    ) -> DecodedArray:
        root = url.strip().removeprefix("precomputed://").rstrip("/")
        info_raw = fetcher.fetch(f"{root}/info").read_bytes()
        info = parse_info(info_raw, root)
        transform_raw = _read_if_present(fetcher, f"{root}/transform.json")
        if transform_raw is None:
            log.warning("precomputed_transform_missing", url=root, using="identity")
            transform_nm = np.eye(4)
        else:
            transform_nm = parse_transform(transform_raw, root)
        if max_volume_bytes is None:
            max_volume_bytes = int(DEFAULT_MAX_VOLUME_MB * 1024**2)
        scale = choose_scale(info, max_volume_bytes, root)
        check_readable(info, scale, root)
        affine = scale_affine(transform_nm, scale)
        key = array_key(_DECODER, root, scale.key, info_raw, transform_raw or b"")

        def write(target: Path) -> tuple[npt.NDArray[np.float64], np.dtype[Any]]:
            _ScaleReader(fetcher, root, info, scale, progress).write(target)
            return affine, narrow_in_place(target)

        return arrays.get_or_write(key, write, format=FORMAT, url=root, scale=scale.key)


class _ScaleReader:
    """Reads every chunk of one scale into a preallocated Fortran-ordered ``.npy``."""

    def __init__(
        self,
        fetcher: Fetcher,
        root: str,
        info: VolumeInfo,
        scale: Scale,
        progress: ByteProgress | None,
    ) -> None:
        self.fetcher = fetcher
        self.info = info
        self.scale = scale
        self.scale_url = urljoin(f"{root}/", scale.key).rstrip("/")
        self.progress = progress
        self.forms = _CHUNK_FORMS
        self.total_bytes = info.decoded_bytes(scale)
        self.done_bytes = 0
        self.chunks = 0
        self.absent = 0

    def write(self, target: Path) -> None:
        started = time.perf_counter()
        out = np.lib.format.open_memmap(
            target, mode="w+", dtype=self.info.dtype, shape=self.scale.size, fortran_order=True
        )
        try:
            if self.scale.sharding is None:
                self._read_unsharded(out)
            else:
                self._read_sharded(out, self.scale.sharding)
            out.flush()
        finally:
            del out
        if self.absent == self.chunks:
            raise DataUnavailableError(
                f"none of the {self.chunks} chunks of {self.scale_url} exists (chunk files "
                "x0-x1_y0-y1_z0-z1[.gz] or x0-x1/y0-y1/z0-z1[.gz], or <shard>.shard files)",
                url=self.scale_url,
                chunks=self.chunks,
            )
        log.info(
            "precomputed_scale_read",
            url=self.scale_url,
            shape=list(self.scale.size),
            chunks=self.chunks,
            absent_chunks=self.absent,
            seconds=round(time.perf_counter() - started, 3),
        )

    # --- unsharded -----------------------------------------------------------------------------

    def _read_unsharded(self, out: np.memmap[Any, Any]) -> None:
        boxes = chunk_boxes(self.scale)
        first = next(boxes)
        self._take(out, first, self._fetch_chunk(first.name(self.scale.voxel_offset)))
        pending: deque[tuple[ChunkBox, Future[tuple[bytes, str] | None]]] = deque()
        with ThreadPoolExecutor(PARALLEL_FETCHES, thread_name_prefix="siibrad-chunk") as pool:
            try:
                for box in boxes:
                    name = box.name(self.scale.voxel_offset)
                    pending.append((box, pool.submit(self._fetch_chunk, name)))
                    if len(pending) >= 2 * PARALLEL_FETCHES:
                        self._take(out, *_result(pending.popleft()))
                while pending:
                    self._take(out, *_result(pending.popleft()))
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise

    def _take(
        self, out: np.memmap[Any, Any], box: ChunkBox, found: tuple[bytes, str] | None
    ) -> None:
        if found is None:
            self.absent += 1
        else:
            self._place(out, box, *found)
        self._advance(box)

    def _fetch_chunk(self, name: str) -> tuple[bytes, str] | None:
        """(bytes, URL) of one chunk file, or ``None`` if it exists in neither form."""
        forms = self.forms
        for deep, suffix in forms:
            url = f"{self.scale_url}/{name.replace('_', '/') if deep else name}{suffix}"
            path = _fetch_if_present(self.fetcher, url)
            if path is not None:
                if len(forms) > 2 or (deep, suffix) != forms[0]:
                    # one assignment (safe with the fetching threads): this layout only, this
                    # form first
                    self.forms = ((deep, suffix), (deep, ".gz" if suffix == "" else ""))
                return path.read_bytes(), url
        return None

    # --- sharded -------------------------------------------------------------------------------

    def _read_sharded(self, out: np.memmap[Any, Any], sharding: Sharding) -> None:
        boxes = list(chunk_boxes(self.scale))
        cells = np.array([box.cell for box in boxes], dtype=np.int64)
        ids = compressed_morton_codes(cells, chunk_grid(self.scale))
        shards, minishards = shard_locations(ids, sharding)
        for shard in np.unique(shards).tolist():
            members = np.flatnonzero(shards == shard)
            url = f"{self.scale_url}/{shard_file_name(shard, sharding)}"
            path = _fetch_if_present(self.fetcher, url)
            if path is None:
                self.absent += members.size
                for i in members.tolist():
                    self._advance(boxes[i])
                continue
            try:
                with ShardFile(path, sharding) as shard_file:
                    for minishard in np.unique(minishards[members]).tolist():
                        table = shard_file.minishard(minishard)
                        for i in members[minishards[members] == minishard].tolist():
                            chunk_id = int(ids[i])
                            byte_range = table.get(chunk_id)
                            if byte_range is None:
                                self.absent += 1
                            else:
                                data = shard_file.chunk(byte_range)
                                self._place(out, boxes[i], data, f"{url} chunk {chunk_id}")
                            self._advance(boxes[i])
            except ValueError as exc:
                raise DataUnavailableError(
                    f"corrupt shard {url}: {exc}", url=url, reason=str(exc)
                ) from None

    # --- both ----------------------------------------------------------------------------------

    def _place(self, out: np.memmap[Any, Any], box: ChunkBox, data: bytes, where: str) -> None:
        try:
            voxels = decode_chunk(data, self.scale, self.info.dtype, box.shape)
        except ValueError as exc:
            raise DataUnavailableError(
                f"corrupt chunk {where}: {exc}",
                url=where.split(" ", 1)[0],
                encoding=self.scale.encoding,
                reason=str(exc),
            ) from None
        (x0, y0, z0), (x1, y1, z1) = box.start, box.stop
        out[x0:x1, y0:y1, z0:z1] = voxels.T  # (z, y, x) C order is (x, y, z) Fortran order

    def _advance(self, box: ChunkBox) -> None:
        self.chunks += 1
        self.done_bytes += math.prod(box.shape) * self.info.dtype.itemsize
        if self.progress is not None:
            self.progress(self.done_bytes, self.total_bytes)


def _result(
    pending: tuple[ChunkBox, Future[tuple[bytes, str] | None]],
) -> tuple[ChunkBox, tuple[bytes, str] | None]:
    box, fetched = pending
    return box, fetched.result()


def _fetch_if_present(fetcher: Fetcher, url: str) -> Path | None:
    """The local copy of ``url``, or ``None`` if the file does not exist (never if unreachable)."""
    try:
        return fetcher.fetch(url)
    except DataUnavailableError as exc:
        if type(exc) is DataUnavailableError and exc.data.get("absent") is True:
            return None
        raise


def _read_if_present(fetcher: Fetcher, url: str) -> bytes | None:
    path = _fetch_if_present(fetcher, url)
    return None if path is None else path.read_bytes()
