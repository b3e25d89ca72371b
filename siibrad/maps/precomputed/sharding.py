"""Sharded precomputed scales (``neuroglancer_uint64_sharded_v1``): where a chunk lives.

Contract: :func:`compressed_morton_codes` gives the chunk ids of grid cells,
:func:`shard_locations` the (shard, minishard) of each id under a :class:`Sharding` spec
(identity or ``murmurhash3_x86_128`` hash), :func:`shard_file_name` the file of a shard.
:class:`ShardFile` reads a local copy of one shard file: :meth:`ShardFile.minishard` the chunk
id → byte range table of a minishard, :meth:`ShardFile.chunk` the (decoded) bytes of one chunk.
Ranges that leave the file, or indexes that do not decode, raise ``ValueError``.

Format (neuroglancer ``src/datasource/precomputed/sharded.md``): the file opens with the shard
index, ``2**minishard_bits`` pairs of uint64le ``[start, end)`` relative to the end of that
index. A minishard index is a ``[3, n]`` uint64le array: chunk ids (delta-coded), data offsets
(each relative to the end of the previous chunk) and sizes. "gzip" index and data encodings are
inflated with automatic header detection, because neuroglancer-scripts 1.2 writes zlib streams
under that name.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from siibrad.maps.precomputed.chunks import gunzip
from siibrad.maps.precomputed.info import Sharding, Vec3
from siibrad.maps.precomputed.murmurhash import shard_hash

_U64 = np.uint64


def compressed_morton_codes(cells: npt.NDArray[np.int64], grid: Vec3) -> npt.NDArray[np.uint64]:
    """Chunk ids of grid cells (``N×3``): bit ``i`` of x, y, z in turn, while ``2**i < grid``.

    >>> compressed_morton_codes(np.array([[1, 0, 0], [0, 0, 1], [4, 4, 3]]), (5, 5, 4)).tolist()
    [1, 4, 228]
    """
    codes = np.zeros(len(cells), dtype=np.uint64)
    out_bit = 0
    for bit in range(max(math.ceil(math.log2(n)) if n > 1 else 0 for n in grid)):
        for dim in range(3):
            if (1 << bit) < grid[dim]:
                digit = (cells[:, dim].astype(np.uint64) >> _U64(bit)) & _U64(1)
                codes |= digit << _U64(out_bit)
                out_bit += 1
    return codes


def shard_locations(
    chunk_ids: npt.NDArray[np.uint64], sharding: Sharding
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(shard, minishard) of every chunk id."""
    shifted = chunk_ids >> _U64(sharding.preshift_bits)
    if sharding.hash == "identity":
        hashed = shifted
    else:
        hashed = np.array([shard_hash(int(c)) for c in shifted], dtype=np.uint64)
    minishards = hashed & _U64((1 << sharding.minishard_bits) - 1)
    shards = (hashed >> _U64(sharding.minishard_bits)) & _U64((1 << sharding.shard_bits) - 1)
    return shards, minishards


def shard_file_name(shard: int, sharding: Sharding) -> str:
    """``<shard>.shard``, lower-case hex padded to ``ceil(shard_bits / 4)`` digits.

    >>> spec = Sharding(0, "identity", 2, 5, "raw", "raw")
    >>> shard_file_name(10, spec)
    '0a.shard'
    """
    return f"{shard:0{math.ceil(sharding.shard_bits / 4)}x}.shard"


class ShardFile:
    """One shard file on disk (read piecewise: only the indexes and chunks asked for)."""

    def __init__(self, path: Path, sharding: Sharding) -> None:
        self.sharding = sharding
        self.size_bytes = path.stat().st_size
        self.index_bytes = 16 << sharding.minishard_bits
        self._file = path.open("rb")
        if self.size_bytes < self.index_bytes:
            self._file.close()
            raise ValueError(
                f"a shard of {self.size_bytes} bytes is shorter than its "
                f"{self.index_bytes}-byte shard index"
            )
        self._index = np.frombuffer(self._read(0, self.index_bytes), dtype="<u8").reshape(-1, 2)

    def __enter__(self) -> ShardFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._file.close()

    def _read(self, start: int, end: int) -> bytes:
        if not 0 <= start <= end <= self.size_bytes:
            raise ValueError(f"bytes [{start}, {end}) lie outside the shard's {self.size_bytes}")
        self._file.seek(start)
        return self._file.read(end - start)

    def _decode(self, data: bytes, encoding: str) -> bytes:
        return gunzip(data) if encoding == "gzip" else data

    def minishard(self, number: int) -> dict[int, tuple[int, int]]:
        """Chunk id → ``(start, end)`` byte range in the file, for one minishard."""
        start, end = (int(v) for v in self._index[number])
        if start == end:
            return {}
        raw = self._read(self.index_bytes + start, self.index_bytes + end)
        data = self._decode(raw, self.sharding.minishard_index_encoding)
        if len(data) % 24:
            raise ValueError(f"a minishard index of {len(data)} bytes is not a [3, n] uint64 array")
        table: npt.NDArray[Any] = np.frombuffer(data, dtype="<u8").reshape(3, -1)
        with np.errstate(over="ignore"):
            ids = np.cumsum(table[0], dtype=np.uint64)
            ends = np.cumsum(table[1] + table[2], dtype=np.uint64)
        starts = ends - table[2]
        return {
            int(i): (self.index_bytes + int(s), self.index_bytes + int(e))
            for i, s, e in zip(ids, starts, ends, strict=True)
        }

    def chunk(self, byte_range: tuple[int, int]) -> bytes:
        """The bytes of one chunk, with the shard's data encoding undone."""
        return self._decode(self._read(*byte_range), self.sharding.data_encoding)
