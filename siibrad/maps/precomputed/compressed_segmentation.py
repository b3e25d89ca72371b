"""Decoding neuroglancer's ``compressed_segmentation`` chunks, vectorised over all blocks.

Contract: :func:`decode_compressed_segmentation` turns one chunk (one channel) into a
``(z, y, x)`` array of uint32 or uint64 labels, or raises ``ValueError`` saying what is
inconsistent (offsets past the end, an ``encodedBits`` value the format does not have). The
chunk does not store its own shape or block size: the caller passes the chunk's true
(edge-truncated) shape and the scale's block size.

Layout (neuroglancer ``src/sliceview/compressed_segmentation/README.md``): a uint32le channel
offset table, then per channel one 64-bit header per block (x fastest): low 24 bits the lookup
table offset, high 8 bits ``encodedBits`` (0, 1, 2, 4, 8, 16 or 32), then the offset of the
packed values, both in 32-bit words from the channel start. Voxel ``(x, y, z)`` of a block is
entry ``x + bx·(y + by·z)``, ``encodedBits`` wide, packed little-endian into uint32 words; it
indexes the block's lookup table of uint32 or uint64 labels. Partial edge blocks are padded.
Everything below is whole-array numpy: a 64³ chunk of 8³ blocks decodes in a few milliseconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

ENCODED_BITS = (0, 1, 2, 4, 8, 16, 32)


def decode_compressed_segmentation(
    data: bytes,
    shape_xyz: tuple[int, int, int],
    block_xyz: tuple[int, int, int],
    dtype: np.dtype[Any],
) -> npt.NDArray[Any]:
    """The ``(z, y, x)`` labels of a one-channel chunk of shape ``shape_xyz``.

    >>> header = [1, 2 | (0 << 24), 0]  # channel at word 1: one block, lut 2 words on, 0 bits
    >>> chunk = np.array(header + [7], dtype="<u4").tobytes()
    >>> decode_compressed_segmentation(chunk, (2, 2, 1), (2, 2, 1), np.dtype("<u4")).tolist()
    [[[7, 7], [7, 7]]]
    """
    if dtype not in (np.dtype("<u4"), np.dtype("<u8")):
        raise ValueError(f"compressed_segmentation holds uint32 or uint64, not {dtype}")
    if len(data) % 4 or len(data) < 4:
        raise ValueError(f"a compressed_segmentation chunk of {len(data)} bytes is not whole words")
    words = np.frombuffer(data, dtype="<u4")
    base = int(words[0])
    grid = [math.ceil(n / b) for n, b in zip(shape_xyz, block_xyz, strict=True)]
    blocks = math.prod(grid)
    if base < 1 or base + 2 * blocks > words.size:
        raise ValueError(
            f"block headers at word {base} (+{2 * blocks}) run past the chunk's {words.size} words"
        )
    headers = words[base : base + 2 * blocks].reshape(blocks, 2).astype(np.int64)
    bits = headers[:, 0] >> 24
    lut_start = base + (headers[:, 0] & 0xFFFFFF)
    values_start = base + headers[:, 1]
    if not np.isin(bits, ENCODED_BITS).all():
        bad = sorted(set(bits.tolist()) - set(ENCODED_BITS))
        raise ValueError(f"encodedBits {bad} is not one of {list(ENCODED_BITS)}")

    block_voxels = math.prod(block_xyz)
    bit_pos = np.arange(block_voxels, dtype=np.int64)[None, :] * bits[:, None]
    word_at = values_start[:, None] + (bit_pos >> 5)
    word_at[bits == 0] = 0  # constant blocks store no values
    if word_at.max() >= words.size:
        raise ValueError("packed values run past the end of the chunk")
    masks = (np.left_shift(np.uint64(1), bits.astype(np.uint64)) - np.uint64(1))[:, None]
    shifts = (bit_pos & 31).astype(np.uint64)
    index = (words[word_at].astype(np.uint64) >> shifts) & masks

    width = dtype.itemsize // 4
    lut_at = lut_start[:, None] + index.astype(np.int64) * width
    if lut_at.max() + width - 1 >= words.size:
        raise ValueError("a lookup table index runs past the end of the chunk")
    if width == 1:
        labels = words[lut_at]
    else:
        labels = words[lut_at].astype(np.uint64) | (
            words[lut_at + 1].astype(np.uint64) << np.uint64(32)
        )
    gx, gy, gz = grid
    bx, by, bz = block_xyz
    padded = (
        labels.reshape(gz, gy, gx, bz, by, bx)
        .transpose(0, 3, 1, 4, 2, 5)
        .reshape(gz * bz, gy * by, gx * bx)
    )
    sx, sy, sz = shape_xyz
    cropped: npt.NDArray[Any] = padded[:sz, :sy, :sx]
    return cropped.astype(dtype, copy=False)
