"""The parts of the neuroglancer precomputed reader: codecs, chunk ids, hashes, info, affines."""

from __future__ import annotations

import copy
import gzip
import json
import math
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from siibrad.errors import DataUnavailableError, UnsupportedError
from siibrad.maps.precomputed.chunks import chunk_boxes, chunk_grid, decode_chunk, gunzip
from siibrad.maps.precomputed.compressed_segmentation import decode_compressed_segmentation
from siibrad.maps.precomputed.info import (
    Scale,
    Sharding,
    check_readable,
    choose_scale,
    parse_info,
    parse_transform,
    scale_affine,
)
from siibrad.maps.precomputed.murmurhash import murmurhash3_x86_128, shard_hash
from siibrad.maps.precomputed.sharding import (
    compressed_morton_codes,
    shard_file_name,
    shard_locations,
)

U32 = np.dtype("<u4")
U64 = np.dtype("<u8")


# --- compressed_segmentation ---------------------------------------------------------------------


def encode_compressed_segmentation(
    labels_xyz: np.ndarray, block: tuple[int, int, int], bits: int | None = None
) -> bytes:
    """A plain reference encoder written from the format description (one channel).

    ``bits`` forces every block's encodedBits (at least what its distinct labels need).
    """
    width = labels_xyz.dtype.itemsize // 4
    grid = [math.ceil(n / b) for n, b in zip(labels_xyz.shape, block, strict=True)]
    blocks = math.prod(grid)
    headers = [0] * (2 * blocks)
    data: list[int] = []
    number = 0
    for gz in range(grid[2]):
        for gy in range(grid[1]):
            for gx in range(grid[0]):
                lo = (gx * block[0], gy * block[1], gz * block[2])
                part = labels_xyz[
                    lo[0] : lo[0] + block[0], lo[1] : lo[1] + block[1], lo[2] : lo[2] + block[2]
                ]
                lut = sorted({int(v) for v in part.ravel()})
                need = next(b for b in (0, 1, 2, 4, 8, 16, 32) if len(lut) <= 1 << b)
                used = need if bits is None else max(bits, need)
                values_at = 2 * blocks + len(data)
                if used:
                    packed = [0] * math.ceil(used * math.prod(block) / 32)
                    for z in range(part.shape[2]):
                        for y in range(part.shape[1]):
                            for x in range(part.shape[0]):
                                pos = used * (x + block[0] * (y + block[1] * z))
                                index = lut.index(int(part[x, y, z]))
                                packed[pos // 32] |= index << (pos % 32)
                    data.extend(packed)
                lut_at = 2 * blocks + len(data)
                for value in lut:
                    data.extend([value & 0xFFFFFFFF, value >> 32][:width])
                headers[2 * number] = lut_at | (used << 24)
                headers[2 * number + 1] = values_at
                number += 1
    return np.array([1, *headers, *data], dtype="<u4").tobytes()


@pytest.mark.parametrize("dtype", [U32, U64])
@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16, 32])
def test_compressed_segmentation_every_encoded_bits_with_partial_blocks(
    dtype: np.dtype[Any], bits: int
) -> None:
    """Every encodedBits width decodes; chunk sides that are not block multiples are cropped."""
    rng = np.random.default_rng(bits)
    distinct = min(1 << bits, 40)
    palette = rng.choice(2**40 if dtype == U64 else 2**31, size=distinct, replace=False)
    labels = palette[rng.integers(0, distinct, size=(13, 9, 6))].astype(dtype)
    chunk = encode_compressed_segmentation(labels, (8, 4, 4), bits=bits)
    decoded = decode_compressed_segmentation(chunk, (13, 9, 6), (8, 4, 4), dtype)
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, labels.T)


def test_compressed_segmentation_constant_blocks_store_no_values() -> None:
    """encodedBits 0: a block of one label is its lookup table entry alone."""
    labels = np.zeros((6, 4, 4), dtype=U32)
    labels[:4] = 7  # block 0 (x 0..3) constant 7, block 1 (x 4..5, partial) constant 0
    labels[4:] = 2**32 - 1
    chunk = encode_compressed_segmentation(labels, (4, 4, 4))
    words = np.frombuffer(chunk, dtype="<u4")
    assert (words[1::2][:2] >> 24).tolist() == [0, 0]
    assert len(words) == 1 + 4 + 2  # channel offset, two headers, two lookup tables
    decoded = decode_compressed_segmentation(chunk, (6, 4, 4), (4, 4, 4), U32)
    np.testing.assert_array_equal(decoded, labels.T)


def test_compressed_segmentation_rejects_inconsistent_chunks() -> None:
    """A bad encodedBits value, or offsets past the end, raise ValueError saying so."""
    labels = np.arange(64, dtype=U32).reshape(4, 4, 4)
    chunk = bytearray(encode_compressed_segmentation(labels, (4, 4, 4)))
    words = np.frombuffer(chunk, dtype="<u4").copy()
    bad_bits = words.copy()
    bad_bits[1] = (bad_bits[1] & 0xFFFFFF) | (3 << 24)
    with pytest.raises(ValueError, match="encodedBits"):
        decode_compressed_segmentation(bad_bits.tobytes(), (4, 4, 4), (4, 4, 4), U32)
    past_end = words.copy()
    past_end[2] = 10_000
    with pytest.raises(ValueError, match="past the end"):
        decode_compressed_segmentation(past_end.tobytes(), (4, 4, 4), (4, 4, 4), U32)
    with pytest.raises(ValueError, match="past"):
        decode_compressed_segmentation(bytes(chunk[:12]), (4, 4, 4), (4, 4, 4), U32)


def test_compressed_segmentation_decodes_a_real_64_cube_like_its_nifti(shared_data: Path) -> None:
    """A 64³ Julich-Brain chunk (8³ blocks) equals the same voxels of the source NIfTI.

    (Its speed, milliseconds per chunk, is measured by the cold-load numbers in docs/maps.md,
    not asserted here.)
    """
    chunk = gzip.decompress(
        (shared_data / "precomputed/jba31-mpm-lh-cseg/1mm/64-128_64-128_64-128.gz").read_bytes()
    )
    decoded = decode_compressed_segmentation(chunk, (64, 64, 64), (8, 8, 8), U32)
    source = nib.load(shared_data / "julich-brain/v3.1-mpm-mni152/JulichBrainAtlas31_LH.nii.gz")
    expected = np.asarray(source.dataobj)[64:128, 64:128, 64:128].transpose(2, 1, 0)  # z, y, x
    assert decoded.shape == (64, 64, 64)
    assert len(np.unique(decoded)) > 10
    np.testing.assert_array_equal(decoded, expected)


# --- raw, jpeg, gzip -----------------------------------------------------------------------------


def _scale(**changes: Any) -> Scale:
    base = Scale(
        "1mm", (140, 154, 121), (1e6, 1e6, 1e6), (0, 0, 0), (32, 32, 32), "raw", None, None
    )
    fields = {f: getattr(base, f) for f in base.__slots__}
    return Scale(**{**fields, **changes})


def test_raw_chunk_starting_like_gzip_is_kept_when_its_size_is_exact() -> None:
    """Raw voxels 31, 139 look like the gzip magic; the exact raw size tells them apart."""
    raw = bytes([0x1F, 0x8B, 1, 2, 3, 4, 5, 6])
    decoded = decode_chunk(raw, _scale(), np.dtype("u1"), (2, 2, 2))
    assert decoded.T.ravel(order="F").tolist() == list(raw)
    zipped = decode_chunk(gzip.compress(raw), _scale(), np.dtype("u1"), (2, 2, 2))
    np.testing.assert_array_equal(zipped, decoded)


def test_gunzip_accepts_gzip_and_zlib_streams() -> None:
    """neuroglancer-scripts writes "gzip" shard data as zlib: both inflate."""
    payload = b"chunk" * 100
    assert gunzip(gzip.compress(payload)) == payload
    assert gunzip(zlib.compress(payload)) == payload
    with pytest.raises(ValueError, match="gzip"):
        gunzip(b"\x1f\x8b not really")


def test_raw_and_jpeg_chunks_of_the_wrong_size_are_refused(shared_data: Path) -> None:
    """A raw chunk with missing bytes, or a jpeg of other dimensions, raises ValueError."""
    with pytest.raises(ValueError, match="raw"):
        decode_chunk(bytes(7), _scale(), np.dtype("u1"), (2, 2, 2))
    jpeg = (shared_data / "precomputed/mni152-t1-jpeg/1mm/0-64_0-64_0-64").read_bytes()
    with pytest.raises(ValueError, match="64×4096"):
        decode_chunk(jpeg, _scale(encoding="jpeg"), np.dtype("u1"), (64, 64, 32))
    with pytest.raises(ValueError, match="jpeg"):
        decode_chunk(b"\xff\xd8 broken", _scale(encoding="jpeg"), np.dtype("u1"), (2, 2, 2))


# --- chunk grid, Morton codes, sharding ----------------------------------------------------------


def test_chunk_grid_truncates_edge_chunks_and_names_them_like_the_writer(
    shared_data: Path,
) -> None:
    """BigBrain 1 mm: 5×5×4 chunks tile the volume once; names match the files on disk."""
    scale = _scale()
    boxes = list(chunk_boxes(scale))
    assert chunk_grid(scale) == (5, 5, 4) and len(boxes) == 100
    covered = np.zeros(scale.size, dtype=int)
    for box in boxes:
        covered[
            box.start[0] : box.stop[0], box.start[1] : box.stop[1], box.start[2] : box.stop[2]
        ] += 1
    assert (covered == 1).all()
    names = {box.name(scale.voxel_offset) for box in boxes}
    assert "128-140_128-154_96-121" in names
    on_disk = {
        p.name.removesuffix(".gz")
        for p in (shared_data / "precomputed/bigbrain-cls-1mm-raw-gzip/1mm").iterdir()
    }
    assert names == on_disk


def test_chunk_names_include_the_voxel_offset() -> None:
    """A scale with voxel_offset names its chunks in its own voxel coordinates."""
    scale = _scale(size=(10, 4, 4), chunk_size=(8, 4, 4), voxel_offset=(100, -4, 0))
    assert [b.name(scale.voxel_offset) for b in chunk_boxes(scale)] == [
        "100-108_-4-0_0-4",
        "108-110_-4-0_0-4",
    ]


def test_compressed_morton_code_for_grid_5_5_4() -> None:
    """x and y use 3 bits, z 2, interleaved x, y, z from the lowest bit; ids are unique < 256."""
    grid = (5, 5, 4)
    cells = np.array(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [2, 0, 0], [0, 0, 2], [4, 0, 0], [0, 4, 0], [4, 4, 3]]
    )
    codes = compressed_morton_codes(cells, grid).tolist()
    assert codes == [1, 2, 4, 8, 32, 64, 128, 228]
    every = np.array([[x, y, z] for z in range(4) for y in range(5) for x in range(5)])
    all_codes = compressed_morton_codes(every, grid)
    assert len(set(all_codes.tolist())) == 100 and int(all_codes.max()) < 256
    assert compressed_morton_codes(np.array([[0, 0, 0]]), (1, 1, 1)).tolist() == [0]


def test_murmurhash3_x86_128_matches_published_vectors() -> None:
    """SMHasher's verification value 0xB3ECE62A, and uint64-id vectors from tensorstore's tests."""
    key = bytes(range(256))
    digests = b"".join(
        b"".join(h.to_bytes(4, "little") for h in murmurhash3_x86_128(key[:i], 256 - i))
        for i in range(256)
    )
    assert murmurhash3_x86_128(digests, 0)[0] == 0xB3ECE62A
    vectors = {  # (chunk id, seed) -> (h1, h2); h3 == h4 == h2 for an 8-byte input
        (0, 0): (0xE028AE41, 0x4772B084),
        (0, 1): (0x5AD58A7E, 0x54337108),
        (0, 2): (0x64010DA2, 0x62E8BC17),
        (1, 0): (0x16D4CE9A, 0xE8BD67D6),
        (1, 1): (0x4B7AB8C6, 0xEB555955),
        (1, 2): (0xEB2301BE, 0x48E12494),
        (42, 0): (0x5119F47A, 0xC20B94F9),
        (42, 1): (0xD6B51BCA, 0xA25AD86B),
        (42, 2): (0x2D83D9C7, 0x082115EB),
    }
    for (chunk_id, seed), (h1, h2) in vectors.items():
        assert murmurhash3_x86_128(chunk_id.to_bytes(8, "little"), seed) == (h1, h2, h2, h2)
    assert shard_hash(42) == 0xC20B94F9_5119F47A


def test_shard_and_minishard_of_a_chunk_id() -> None:
    """Identity hash: preshift, then minishard bits, then shard bits; murmur hashes first."""
    identity = Sharding(3, "identity", 1, 4, "gzip", "gzip")
    shards, minishards = shard_locations(np.array([0b1011_0110], dtype=np.uint64), identity)
    assert (int(shards[0]), int(minishards[0])) == (0b1011, 0)
    assert shard_file_name(int(shards[0]), identity) == "b.shard"
    murmur = Sharding(0, "murmurhash3_x86_128", 2, 3, "raw", "raw")
    shards, minishards = shard_locations(np.array([42], dtype=np.uint64), murmur)
    assert (int(shards[0]), int(minishards[0])) == ((shard_hash(42) >> 2) & 7, shard_hash(42) & 3)
    assert shard_file_name(0, Sharding(0, "identity", 0, 0, "raw", "raw")) == "0.shard"


# --- info, transform, scale choice ---------------------------------------------------------------


def _info_doc(shared_data: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (shared_data / "precomputed/bigbrain-cls-1mm-raw-gzip/info").read_bytes()
    )
    return doc


def _raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_info_of_a_real_dataset_parses_finest_first(shared_data: Path) -> None:
    """BigBrain's info: uint8, one channel, scales 1, 2, 4 mm with their grids and chunks."""
    info = parse_info(_raw(_info_doc(shared_data)), "u")
    assert info.dtype == np.dtype("u1") and info.num_channels == 1
    assert [s.key for s in info.scales] == ["1mm", "2mm", "4mm"]
    assert info.scales[1].size == (70, 77, 61) and info.scales[1].chunk_size == (32, 32, 32)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("scales"), "scales"),
        (lambda d: d.update(num_channels="1"), "num_channels"),
        (lambda d: d["scales"][0].update(size=[140, 154]), "scales[0].size"),
        (lambda d: d["scales"][0].update(resolution=[1e6, 0, 1e6]), "scales[0].resolution"),
        (lambda d: d["scales"][0].update(chunk_sizes=[]), "scales[0].chunk_sizes"),
        (lambda d: d["scales"][1].pop("key"), "scales[1].key"),
        (lambda d: d["scales"][0].update(voxel_offset=[0.5, 0, 0]), "scales[0].voxel_offset"),
    ],
)
def test_malformed_info_is_data_unavailable_naming_the_field(
    shared_data: Path, change: Any, field: str
) -> None:
    """A missing or mistyped field raises DataUnavailableError with data.field."""
    doc = copy.deepcopy(_info_doc(shared_data))
    change(doc)
    with pytest.raises(DataUnavailableError) as info:
        parse_info(_raw(doc), "https://example.org/ds")
    assert info.value.data["field"] == field
    assert info.value.data["url"] == "https://example.org/ds"
    with pytest.raises(DataUnavailableError, match="not JSON"):
        parse_info(b"<html>proxy login</html>", "https://example.org/ds")


def test_beyond_this_reader_is_unsupported_naming_what(shared_data: Path) -> None:
    """Several channels, an unknown data type, encoding or shard hash raise UnsupportedError."""
    doc = _info_doc(shared_data)
    with pytest.raises(UnsupportedError) as err:
        parse_info(_raw({**doc, "num_channels": 3}), "u")
    assert err.value.data["field"] == "num_channels" and err.value.data["value"] == 3
    with pytest.raises(UnsupportedError, match="complex64"):
        parse_info(_raw({**doc, "data_type": "complex64"}), "u")
    with pytest.raises(UnsupportedError, match="no volume scales"):
        parse_info(_raw({**doc, "scales": []}), "u")
    png = copy.deepcopy(doc)
    png["scales"][0]["encoding"] = "png"
    info = parse_info(_raw(png), "u")  # other scales stay readable
    with pytest.raises(UnsupportedError) as err:
        check_readable(info, info.scales[0], "u")
    assert err.value.data["field"] == "encoding" and err.value.data["value"] == "png"
    assert "'png'" in err.value.message
    check_readable(info, info.scales[1], "u")
    sharded = copy.deepcopy(doc)
    sharded["scales"][0]["sharding"] = {
        "@type": "neuroglancer_uint64_sharded_v1",
        "hash": "xxhash",
        "preshift_bits": 0,
        "minishard_bits": 1,
        "shard_bits": 1,
    }
    with pytest.raises(UnsupportedError, match="xxhash"):
        parse_info(_raw(sharded), "u")


def test_encoding_and_data_type_must_agree(shared_data: Path) -> None:
    """compressed_segmentation holds uint32/uint64 only: a uint8 one is malformed."""
    doc = copy.deepcopy(_info_doc(shared_data))
    doc["scales"][0].update(
        encoding="compressed_segmentation", compressed_segmentation_block_size=[8, 8, 8]
    )
    info = parse_info(_raw(doc), "u")
    with pytest.raises(DataUnavailableError) as err:
        check_readable(info, info.scales[0], "u")
    assert err.value.data["field"] == "data_type"


def test_scale_affine_puts_voxel_centres_where_the_transform_says() -> None:
    """For rotated, flipped axes and a voxel offset: A·ijk = T·((ijk + offset + ½)·res) / 1e6."""
    transform = np.array(
        [[0, -1, 0, 5e6], [0, 0, 1, -2e6], [-1, 0, 0, 3e6], [0, 0, 0, 1]], dtype=float
    )
    scale = _scale(resolution_nm=(2e6, 3e6, 4e6), voxel_offset=(1, 2, 3))
    affine = scale_affine(transform, scale)
    rng = np.random.default_rng(0)
    for ijk in rng.integers(0, 50, size=(10, 3)):
        corner_nm = (ijk + np.array(scale.voxel_offset) + 0.5) * np.array(scale.resolution_nm)
        expected = (transform @ [*corner_nm, 1.0])[:3] / 1e6
        np.testing.assert_allclose((affine @ [*ijk, 1.0])[:3], expected, atol=1e-9)


def test_transform_must_be_an_invertible_4x4_matrix() -> None:
    """A transform.json that is not a finite, invertible affine is malformed."""
    for raw in (b"[[1,0],[0,1]]", b'{"a": 1}', b"[[0,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]"):
        with pytest.raises(DataUnavailableError) as err:
            parse_transform(raw, "u")
        assert err.value.data["field"] == "transform.json"
    np.testing.assert_array_equal(parse_transform(_raw(np.eye(4).tolist()), "u"), np.eye(4))


def test_scale_choice_is_the_finest_within_the_budget(shared_data: Path) -> None:
    """1 mm if it fits, else 2 mm, else 4 mm; below that UnsupportedError naming the setting."""
    info = parse_info(_raw(_info_doc(shared_data)), "u")
    assert choose_scale(info, 140 * 154 * 121, "u").key == "1mm"
    assert choose_scale(info, 140 * 154 * 121 - 1, "u").key == "2mm"
    assert choose_scale(info, 35 * 39 * 31, "u").key == "4mm"
    with pytest.raises(UnsupportedError) as err:
        choose_scale(info, 1000, "u")
    assert err.value.data["setting"] == "SIIBRAD_MAX_VOLUME_MB"
    assert err.value.data["size_bytes"] == 35 * 39 * 31
