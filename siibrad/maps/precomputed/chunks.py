"""The chunk grid of a precomputed scale and the decoding of one chunk's bytes.

Contract: :func:`chunk_boxes` lists the chunks of a scale, x fastest; each :class:`ChunkBox`
knows its voxel range in the scale's array (edge chunks truncated, not padded) and its
unsharded file name ``x0-x1_y0-y1_z0-z1`` (``voxel_offset`` included). :func:`decode_chunk`
turns a chunk's bytes into a ``(z, y, x)`` array (the spec's Fortran ``[x, y, z]`` order read
C-wise), gunzipping first when the body starts with the gzip magic (a ``.gz`` file or a server
that did not say ``Content-Encoding``; zlib streams too, see ``gunzip``), or raises
``ValueError`` saying what does not fit. Encodings: ``raw``, ``jpeg`` (one greyscale channel,
width x, height y·z) and ``compressed_segmentation``.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.maps.precomputed.compressed_segmentation import decode_compressed_segmentation
from siibrad.maps.precomputed.info import Scale, Vec3

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class ChunkBox:
    """One chunk: its grid cell and voxel range ``[start, stop)`` in the scale's array."""

    cell: Vec3
    start: Vec3
    stop: Vec3

    @property
    def shape(self) -> Vec3:
        return (
            self.stop[0] - self.start[0],
            self.stop[1] - self.start[1],
            self.stop[2] - self.start[2],
        )

    def name(self, voxel_offset: Vec3) -> str:
        """The unsharded file name, in the scale's own voxel coordinates.

        >>> ChunkBox((4, 0, 0), (128, 0, 0), (140, 32, 32)).name((0, 0, 0))
        '128-140_0-32_0-32'
        >>> ChunkBox((0, 0, 0), (0, 0, 0), (8, 8, 8)).name((10, -4, 0))
        '10-18_-4-4_0-8'
        """
        return "_".join(
            f"{lo + off}-{hi + off}"
            for lo, hi, off in zip(self.start, self.stop, voxel_offset, strict=True)
        )


def chunk_grid(scale: Scale) -> Vec3:
    """Chunks along x, y and z: ``ceil(size / chunk_size)``."""
    gx, gy, gz = (math.ceil(n / c) for n, c in zip(scale.size, scale.chunk_size, strict=True))
    return (gx, gy, gz)


def chunk_boxes(scale: Scale) -> Iterator[ChunkBox]:
    """Every chunk of ``scale``, x fastest."""
    gx, gy, gz = chunk_grid(scale)
    (cx, cy, cz), (nx, ny, nz) = scale.chunk_size, scale.size
    for z in range(gz):
        for y in range(gy):
            for x in range(gx):
                start = (x * cx, y * cy, z * cz)
                stop = (min(start[0] + cx, nx), min(start[1] + cy, ny), min(start[2] + cz, nz))
                yield ChunkBox((x, y, z), start, stop)


def gunzip(data: bytes) -> bytes:
    """Inflate a gzip stream, or a zlib one (neuroglancer-scripts writes "gzip" shards as zlib)."""
    try:
        return zlib.decompress(data, 15 + 32)
    except zlib.error as exc:
        raise ValueError(f"broken gzip/zlib data: {exc}") from None


def decode_chunk(
    data: bytes,
    scale: Scale,
    dtype: np.dtype[Any],
    shape_xyz: Vec3,
) -> npt.NDArray[Any]:
    """The ``(z, y, x)`` voxels of one chunk of ``scale`` (see the module docstring)."""
    raw_bytes = math.prod(shape_xyz) * dtype.itemsize
    # A raw chunk may start with the magic by chance; its exact size tells it apart.
    if data[:2] == GZIP_MAGIC and not (scale.encoding == "raw" and len(data) == raw_bytes):
        data = gunzip(data)
    sx, sy, sz = shape_xyz
    if scale.encoding == "raw":
        if len(data) != raw_bytes:
            raise ValueError(f"a raw {sx}×{sy}×{sz} chunk has {raw_bytes} bytes, not {len(data)}")
        return np.frombuffer(data, dtype=dtype).reshape(sz, sy, sx)
    if scale.encoding == "jpeg":
        return _decode_jpeg(data, shape_xyz)
    if scale.encoding == "compressed_segmentation":
        assert scale.block_size is not None  # info.check_readable
        return decode_compressed_segmentation(data, shape_xyz, scale.block_size, dtype)
    raise ValueError(f"no decoder for the encoding {scale.encoding!r}")


def _decode_jpeg(data: bytes, shape_xyz: Vec3) -> npt.NDArray[np.uint8]:
    from PIL import Image  # noqa: PLC0415 (8 ms to import; only jpeg volumes need it)

    sx, sy, sz = shape_xyz
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            if image.size != (sx, sy * sz):
                raise ValueError(
                    f"a jpeg {sx}×{sy}×{sz} chunk is a {sx}×{sy * sz} image, not "
                    f"{image.size[0]}×{image.size[1]}"
                )
            if image.mode != "L":
                raise ValueError(f"a {image.mode} jpeg where one greyscale channel is expected")
            pixels = np.asarray(image, dtype=np.uint8)
    except OSError as exc:  # PIL.UnidentifiedImageError and truncated data are OSErrors
        raise ValueError(f"not a readable jpeg: {exc}") from None
    return pixels.reshape(sz, sy, sx)
