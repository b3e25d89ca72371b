"""MurmurHash3 x86 128-bit, the hash that places chunks in ``murmurhash3_x86_128`` shards.

Contract: :func:`murmurhash3_x86_128` is Austin Appleby's public-domain MurmurHash3_x86_128
on bytes (four 32-bit lanes, little-endian), checked against SMHasher's verification value;
:func:`shard_hash` is the sharded format's use of it: the uint64le bytes of a chunk id, seed 0,
the low eight bytes of the digest read as a uint64le. Pure Python: a volume within the decode
budget has at most a few thousand chunks, hashed once each.
"""

from __future__ import annotations

_MASK32 = 0xFFFFFFFF
_C = (0x239B961B, 0xAB0E9789, 0x38B34AE5, 0xA1E38B93)
_ROTATE_K = (15, 16, 17, 18)
_ROTATE_H = (19, 17, 15, 13)
_ADD_H = (0x561CCD1B, 0x0BCAA747, 0x96CD1C35, 0x32AC3B17)


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def _mix_lane(lane: int, k: int) -> int:
    """Scramble one 32-bit input word for lane ``lane`` (k·c[lane], rotate, ·c[lane+1])."""
    k = (k * _C[lane]) & _MASK32
    k = _rotl(k, _ROTATE_K[lane])
    return (k * _C[(lane + 1) % 4]) & _MASK32


def murmurhash3_x86_128(data: bytes, seed: int = 0) -> tuple[int, int, int, int]:
    """The four 32-bit words (h1..h4) of MurmurHash3_x86_128 of ``data``.

    >>> [hex(h) for h in murmurhash3_x86_128(bytes(8))]
    ['0xe028ae41', '0x4772b084', '0x4772b084', '0x4772b084']
    """
    h = [seed & _MASK32] * 4
    blocks = len(data) // 16
    for start in range(0, blocks * 16, 16):
        for lane in range(4):
            word = int.from_bytes(data[start + 4 * lane : start + 4 * lane + 4], "little")
            h[lane] ^= _mix_lane(lane, word)
            h[lane] = _rotl(h[lane], _ROTATE_H[lane])
            h[lane] = (h[lane] + h[(lane + 1) % 4]) & _MASK32
            h[lane] = (h[lane] * 5 + _ADD_H[lane]) & _MASK32
    tail = data[blocks * 16 :]
    for lane in range(4):
        piece = tail[4 * lane : 4 * lane + 4]
        if piece:
            h[lane] ^= _mix_lane(lane, int.from_bytes(piece, "little"))
    h = [v ^ len(data) for v in h]
    h = _combine(h)
    h1, h2, h3, h4 = _combine([_fmix(v) for v in h])
    return h1, h2, h3, h4


def _combine(h: list[int]) -> list[int]:
    h1 = (h[0] + h[1] + h[2] + h[3]) & _MASK32
    return [h1, (h[1] + h1) & _MASK32, (h[2] + h1) & _MASK32, (h[3] + h1) & _MASK32]


def shard_hash(chunk_id: int) -> int:
    """The sharded format's ``murmurhash3_x86_128`` of a (pre-shifted) chunk id, as uint64.

    >>> hex(shard_hash(0))
    '0x4772b084e028ae41'
    """
    h1, h2, _, _ = murmurhash3_x86_128(chunk_id.to_bytes(8, "little"), 0)
    return h1 | (h2 << 32)
