"""Decoded volumes persisted on disk as ``.npy`` + affine, mapped back in milliseconds.

Contract: :meth:`DecodedArrayCache.get` returns a :class:`DecodedArray` (a read-only memory
map and its voxel → mm affine) for a source file, decoding it only when no decoded copy keyed
by the source's sha256 (and the zip member, if any) exists. A volume made of many files (a
neuroglancer precomputed scale) is stored under a key its reader computes from everything the
array depends on (:func:`array_key`), through :meth:`DecodedArrayCache.get_or_write`. Entries
are written to a temporary name and renamed (``.npy`` first, then the ``.json`` sidecar that
marks them complete), so a crash or a concurrent writer never leaves a half-written entry that
a reader would use; two processes decoding the same volume at once both succeed and one rename
wins. Nothing here is pickled: ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from siibrad.maps.nifti_io import decode_nifti, extracted_member

log = structlog.get_logger(__name__)

_FORMAT_VERSION = 1
_KEY = re.compile(r"[0-9a-f]{64}")

ArrayWriter = Callable[[Path], tuple[npt.NDArray[np.float64], np.dtype[Any]]]
"""Writes a volume as a ``.npy`` file at the (temporary) path given; returns (affine, dtype)."""


@dataclass(frozen=True, slots=True)
class DecodedArray:
    """A decoded volume: the array (memory-mapped, read-only) and its voxel → mm affine."""

    array: np.ndarray[Any, Any]
    affine: npt.NDArray[np.float64]
    source_sha256: str

    @property
    def size_bytes(self) -> int:
        return int(self.array.nbytes)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's content, memoised by (path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    cached = _SHA_MEMO.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    value = digest.hexdigest()
    _SHA_MEMO[key] = value
    return value


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def array_key(*parts: str | bytes) -> str:
    """A cache key for an array made from several inputs (length-prefixed, so unambiguous).

    >>> array_key("a", b"bc") == array_key("ab", b"c")
    False
    >>> len(array_key("https://example.org/volume", b"{}"))
    64
    """
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class DecodedArrayCache:
    """The ``arrays/`` folder of the per-user cache: decoded volumes by sha256 key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, key: str, member: str | None) -> tuple[Path, Path]:
        name = key
        if member:
            name += "-" + hashlib.sha256(member.encode()).hexdigest()[:16]
        folder = self.root / key[:2]
        return folder / f"{name}.npy", folder / f"{name}.json"

    def get(self, source: Path, member: str | None = None) -> DecodedArray:
        """The decoded array of ``source`` (or of ``member`` inside the zip ``source``)."""

        def decode(target: Path) -> tuple[npt.NDArray[np.float64], np.dtype[Any]]:
            if not member:
                return decode_nifti(source, target)
            with extracted_member(source, member) as extracted:
                return decode_nifti(extracted, target)

        sha = file_sha256(source)
        npy, meta = self._paths(sha, member)
        return self._get(npy, meta, sha, decode, {"source": source.name, "member": member})

    def get_or_write(self, key: str, write: ArrayWriter, **describe: Any) -> DecodedArray:
        """The array stored under ``key``, written by ``write`` first if there is none.

        ``key`` is a sha256 hex digest of everything the array depends on (see
        :func:`array_key`); ``describe`` (JSON values) goes into the sidecar and the log.
        """
        if not _KEY.fullmatch(key):
            raise ValueError(f"an array key is a lower-case sha256 hex digest, not {key!r}")
        npy, meta = self._paths(key, None)
        return self._get(npy, meta, key, write, describe)

    def contains(self, source: Path, member: str | None = None) -> bool:
        return self.contains_key(file_sha256(source), member)

    def contains_key(self, key: str, member: str | None = None) -> bool:
        npy, meta = self._paths(key, member)
        return npy.is_file() and meta.is_file()

    def _get(
        self, npy: Path, meta: Path, key: str, write: ArrayWriter, describe: dict[str, Any]
    ) -> DecodedArray:
        loaded = self._load(npy, meta, key)
        if loaded is not None:
            return loaded
        self._write(npy, meta, key, write, describe)
        loaded = self._load(npy, meta, key)
        if loaded is None:  # pragma: no cover - only if another process deletes it meanwhile
            raise OSError(f"decoded array vanished: {npy}")
        return loaded

    @staticmethod
    def _load(npy: Path, meta: Path, key: str) -> DecodedArray | None:
        try:
            info = json.loads(meta.read_text())
            if info.get("version") != _FORMAT_VERSION:
                return None
            array = np.load(npy, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        affine = np.asarray(info["affine"], dtype=np.float64).reshape(4, 4)
        return DecodedArray(array=array, affine=affine, source_sha256=key)

    @staticmethod
    def _write(
        npy: Path, meta: Path, key: str, write: ArrayWriter, describe: dict[str, Any]
    ) -> None:
        npy.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".decode-", suffix=".npy", dir=npy.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            affine, dtype = write(tmp)
            os.replace(tmp, npy)
        finally:
            tmp.unlink(missing_ok=True)
        info = {
            **describe,
            "version": _FORMAT_VERSION,
            "affine": affine.tolist(),
            "dtype": dtype.str,
            "source_sha256": key,
        }
        fd, tmp_meta = tempfile.mkstemp(prefix=".decode-", suffix=".json", dir=meta.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp_meta, meta)
        log.info("volume_decoded", dtype=dtype.str, **describe)

    def size_bytes(self) -> int:
        """Bytes on disk under this cache folder."""
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
