"""Decode NIfTI files (``.nii``, ``.nii.gz``, a member of a ``.zip``) into ``.npy`` files.

Contract: :func:`decode_nifti` streams the voxel data of a NIfTI-1 or NIfTI-2 file straight
into a Fortran-ordered ``.npy`` (the byte layout NIfTI already uses), so a 4D probability
atlas of almost a gigabyte is decoded with a few megabytes of RAM; scaled images
(``scl_slope``/``scl_inter``) become float32. 3D integer-valued arrays are then narrowed to
the smallest integer dtype that holds them exactly. The caller gets the affine (voxel → mm,
nibabel's best affine: sform, else qform) and the written array's dtype and shape. Gzip is
recognised by its magic bytes, not the file name, because cached downloads carry no suffix.
Foreign errors (zip, gzip, nibabel header errors) become :class:`DataUnavailableError`.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import nibabel as nib
import numpy as np
import numpy.typing as npt

from siibrad.errors import DataUnavailableError

_GZIP_MAGIC = b"\x1f\x8b"
_COPY_CHUNK_BYTES = 8 * 1024**2
_NARROW_MAX_VOXELS = 512 * 1024**2
"""Arrays above this many voxels keep their stored dtype (one extra pass is too costly)."""


@contextmanager
def _open_stream(path: Path) -> Iterator[IO[bytes]]:
    with path.open("rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        else:
            yield raw


@contextmanager
def extracted_member(archive: Path, member: str) -> Iterator[Path]:
    """Yield a temporary file holding ``member`` of the zip ``archive`` (deleted afterwards)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            if member not in names:
                raise DataUnavailableError(
                    f"{member!r} is not in the zip archive {archive.name}",
                    member=member,
                    members=names[:20],
                )
            with tempfile.TemporaryDirectory(prefix="siibrad-zip-") as tmp:
                target = Path(tmp) / Path(member).name
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, _COPY_CHUNK_BYTES)
                yield target
    except zipfile.BadZipFile as exc:
        raise DataUnavailableError(f"not a zip archive: {archive}: {exc}") from exc


def _read_header(stream: _Prefixed) -> Any:
    start = stream.read(4)
    sizeof_hdr = int.from_bytes(start, "little")
    if sizeof_hdr not in (348, 540):
        sizeof_hdr = int.from_bytes(start, "big")
    header_class: Any = nib.Nifti2Header if sizeof_hdr == 540 else nib.Nifti1Header
    rest = stream.read(sizeof_hdr - 4)
    return header_class.from_fileobj(_Prefixed(start + rest, stream), check=False)


class _Prefixed:
    """A read-only stream that replays already-read bytes before continuing the source."""

    def __init__(self, prefix: bytes, stream: IO[bytes] | _Prefixed) -> None:
        self._prefix = prefix
        self._stream = stream
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        head = b""
        if self._prefix:
            head = self._prefix if size < 0 else self._prefix[:size]
            self._prefix = self._prefix[len(head) :]
            if size >= 0:
                size -= len(head)
        tail = self._stream.read(size) if size != 0 else b""
        self._pos += len(head) + len(tail)
        return head + tail

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1 and offset >= 0:
            self.read(offset)
        elif whence == 0 and offset >= self._pos:
            self.read(offset - self._pos)
        else:
            raise OSError("backward seek on a NIfTI stream")
        return self._pos


def decode_nifti(source: Path, target: Path) -> tuple[npt.NDArray[np.float64], np.dtype[Any]]:
    """Decode the NIfTI file ``source`` into the ``.npy`` file ``target``; return (affine, dtype).

    ``target`` is written in place (the caller writes to a temporary name and renames it).
    """
    try:
        with _open_stream(source) as raw:
            stream = _Prefixed(b"", raw)
            header = _read_header(stream)
            shape = tuple(int(n) for n in header.get_data_shape())
            dtype = header.get_data_dtype()
            affine = np.asarray(header.get_best_affine(), dtype=np.float64)
            slope, inter = header.get_slope_inter()
            offset = int(header.get_data_offset())
            consumed = stream.tell()
            if offset > consumed:
                stream.read(offset - consumed)
            array = np.lib.format.open_memmap(
                target, mode="w+", dtype=dtype, shape=shape, fortran_order=True
            )
            _copy_into(stream, array)
            array.flush()
            del array
    except (OSError, EOFError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
        raise DataUnavailableError(f"cannot decode NIfTI file {source.name}: {exc}") from exc
    scaled = slope is not None and (slope != 1.0 or (inter is not None and inter != 0.0))
    if scaled:
        return affine, _apply_scaling(target, float(slope), float(inter or 0.0))
    return affine, narrow_in_place(target)


def _copy_into(stream: _Prefixed, array: np.memmap[Any, Any]) -> None:
    flat = array.reshape(-1, order="F")
    view = flat.view(np.uint8)
    total = view.size
    pos = 0
    while pos < total:
        chunk = stream.read(min(_COPY_CHUNK_BYTES, total - pos))
        if not chunk:
            raise EOFError(f"truncated NIfTI data: {pos} of {total} bytes")
        view[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        pos += len(chunk)


def _apply_scaling(target: Path, slope: float, inter: float) -> np.dtype[Any]:
    raw = np.load(target, mmap_mode="r")
    out_dtype = np.dtype(np.float64 if raw.dtype == np.float64 else np.float32)
    scaled_path = target.with_suffix(".scaled.npy")
    out = np.lib.format.open_memmap(
        scaled_path, mode="w+", dtype=out_dtype, shape=raw.shape, fortran_order=True
    )
    src = raw.reshape(-1, order="F")
    dst = out.reshape(-1, order="F")
    step = _COPY_CHUNK_BYTES
    for start in range(0, src.size, step):
        dst[start : start + step] = src[start : start + step] * slope + inter
    out.flush()
    del out, raw, src, dst
    scaled_path.replace(target)
    return out_dtype


def _smallest_integer_dtype(lo: int, hi: int) -> np.dtype[Any] | None:
    for candidate in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return np.dtype(candidate)
    return None


def narrow_in_place(target: Path) -> np.dtype[Any]:
    """Narrow an integer-valued array to its smallest integer dtype (labels stored as float)."""
    array: np.ndarray[Any, Any] = np.load(target, mmap_mode="r")
    dtype: np.dtype[Any] = array.dtype
    if array.size == 0 or array.size > _NARROW_MAX_VOXELS or dtype.itemsize == 1:
        return dtype
    if dtype.kind == "f":
        if not bool(np.all(np.isfinite(array))) or not bool(np.all(np.mod(array, 1) == 0)):
            return dtype
    elif dtype.kind not in "iu":
        return dtype
    narrow = _smallest_integer_dtype(int(array.min()), int(array.max()))
    if narrow is None or (narrow.itemsize >= dtype.itemsize and dtype.kind in "iu"):
        return dtype
    narrowed = np.asfortranarray(array.astype(narrow))
    del array
    tmp = target.with_suffix(".narrow.npy")
    np.save(tmp, narrowed)
    tmp.replace(target)
    return narrow
