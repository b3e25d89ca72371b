"""The ``info`` and ``transform.json`` of a neuroglancer precomputed volume, checked.

Contract: :func:`parse_info` turns the bytes of an ``info`` file into a :class:`VolumeInfo`
or raises ``DataUnavailableError`` when it is malformed (not JSON, a field missing or of the
wrong kind; ``data.field`` names it) and ``UnsupportedError`` when it is well formed but beyond
this reader (several channels, a data type or sharding variant we do not read).
:func:`check_readable` does the same for the one scale about to be read (its encoding), so an
exotic scale nobody reads does not spoil the others. :func:`parse_transform` reads the 4×4
``transform.json`` (nanometres, voxel corners → world), :func:`scale_affine` turns it into the
voxel → mm affine of one scale, and :func:`choose_scale` picks the finest scale whose decoded
array fits a byte budget, as siibra does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from siibrad.errors import DataUnavailableError, UnsupportedError

log = structlog.get_logger(__name__)

DATA_TYPES = {
    "uint8": "<u1",
    "int8": "<i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "uint64": "<u8",
    "float32": "<f4",
}
ENCODINGS = ("raw", "compressed_segmentation", "jpeg")
"""Chunk encodings this reader decodes (the viewer also knows png, compresso and jxl)."""
SHARD_HASHES = ("identity", "murmurhash3_x86_128")
SHARD_ENCODINGS = ("raw", "gzip")
NM_PER_MM = 1e6

Vec3 = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Sharding:
    """A ``neuroglancer_uint64_sharded_v1`` spec."""

    preshift_bits: int
    hash: str
    minishard_bits: int
    shard_bits: int
    minishard_index_encoding: str
    data_encoding: str


@dataclass(frozen=True, slots=True)
class Scale:
    """One resolution level: its folder ``key``, voxel grid, chunking and encoding."""

    key: str
    size: Vec3
    resolution_nm: tuple[float, float, float]
    voxel_offset: Vec3
    chunk_size: Vec3
    encoding: str
    block_size: Vec3 | None
    """``compressed_segmentation_block_size``, for that encoding only."""
    sharding: Sharding | None

    @property
    def voxels(self) -> int:
        return math.prod(self.size)


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """A parsed ``info``: voxel type, channel count, scales finest first."""

    type: str
    dtype: np.dtype[Any]
    num_channels: int
    scales: tuple[Scale, ...]

    def decoded_bytes(self, scale: Scale) -> int:
        """Bytes of the scale's whole array once decoded (siibra's size estimate)."""
        return scale.voxels * self.num_channels * self.dtype.itemsize


def parse_info(raw: bytes, url: str) -> VolumeInfo:
    """The checked content of an ``info`` file (see the module docstring for the errors)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise _malformed(url, "info", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _malformed(url, "info", "not a JSON object")
    kind = doc.get("@type", "neuroglancer_multiscale_volume")
    if kind != "neuroglancer_multiscale_volume":
        raise _unsupported(url, "@type", kind, "not a neuroglancer_multiscale_volume")
    data_type = _field(doc, "data_type", str, url)
    if data_type not in DATA_TYPES:
        raise _unsupported(
            url, "data_type", data_type, "not read by siibrad", supported=sorted(DATA_TYPES)
        )
    channels = _field(doc, "num_channels", int, url)
    if channels < 1:
        raise _malformed(url, "num_channels", f"must be at least 1, got {channels}")
    if channels != 1:
        raise _unsupported(
            url, "num_channels", channels, "siibrad's maps read one-channel volumes only"
        )
    scales_doc = _field(doc, "scales", list, url)
    if not scales_doc:
        raise _unsupported(url, "scales", [], "no volume scales (a mesh-only dataset?)")
    scales = tuple(_parse_scale(s, f"scales[{i}]", url) for i, s in enumerate(scales_doc))
    finest_first = tuple(sorted(scales, key=lambda s: math.prod(s.resolution_nm)))
    return VolumeInfo(
        type=str(doc.get("type", "image")),
        dtype=np.dtype(DATA_TYPES[data_type]),
        num_channels=channels,
        scales=finest_first,
    )


def check_readable(info: VolumeInfo, scale: Scale, url: str) -> None:
    """Raise unless this reader can decode ``scale`` (its encoding and the data type)."""
    where = f"scale {scale.key!r}"
    if scale.encoding not in ENCODINGS:
        raise _unsupported(
            url,
            "encoding",
            scale.encoding,
            f"{where} uses an encoding siibrad does not decode",
            scale=scale.key,
            supported=list(ENCODINGS),
        )
    allowed = {
        "compressed_segmentation": ("uint32", "uint64"),
        "jpeg": ("uint8",),
    }.get(scale.encoding)
    data_type = next(name for name, code in DATA_TYPES.items() if np.dtype(code) == info.dtype)
    if allowed is not None and data_type not in allowed:
        raise _malformed(
            url,
            "data_type",
            f"{scale.encoding} chunks hold {' or '.join(allowed)}, not {data_type}",
        )
    if scale.encoding == "compressed_segmentation" and scale.block_size is None:
        raise _malformed(
            url, "compressed_segmentation_block_size", f"missing in {where}, which needs it"
        )


def choose_scale(info: VolumeInfo, max_bytes: int, url: str) -> Scale:
    """The finest scale whose decoded array is at most ``max_bytes`` (siibra's default rule)."""
    for scale in info.scales:
        size_bytes = info.decoded_bytes(scale)
        if size_bytes <= max_bytes:
            if scale is not info.scales[0]:
                log.info(
                    "precomputed_scale_coarser",
                    url=url,
                    scale=scale.key,
                    finest=info.scales[0].key,
                    size_bytes=size_bytes,
                    max_bytes=max_bytes,
                )
            return scale
    coarsest = info.scales[-1]
    need = info.decoded_bytes(coarsest)
    raise UnsupportedError(
        f"{url}: even its coarsest scale {coarsest.key!r} needs {need / 1024**2:.1f} MiB, over "
        f"the volume budget of {max_bytes / 1024**2:.1f} MiB (SIIBRAD_MAX_VOLUME_MB)",
        url=url,
        scale=coarsest.key,
        size_bytes=need,
        max_bytes=max_bytes,
        setting="SIIBRAD_MAX_VOLUME_MB",
    )


def parse_transform(raw: bytes, url: str) -> npt.NDArray[np.float64]:
    """The 4×4 ``transform.json`` matrix (nm): voxel corners of scale 0 → world."""
    try:
        matrix = np.asarray(json.loads(raw), dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise _malformed(url, "transform.json", f"not a 4×4 matrix of numbers ({exc})") from None
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise _malformed(url, "transform.json", f"not a finite 4×4 matrix: {matrix.tolist()}")
    if not np.array_equal(matrix[3], [0.0, 0.0, 0.0, 1.0]) or np.linalg.det(matrix[:3, :3]) == 0:
        raise _malformed(url, "transform.json", "not an invertible affine matrix")
    return matrix


def scale_affine(transform_nm: npt.NDArray[np.float64], scale: Scale) -> npt.NDArray[np.float64]:
    """The voxel → mm affine of ``scale``'s array (voxel 0 = the scale's ``voxel_offset``).

    ``transform.json`` maps voxel *corners* in nm; NIfTI affines map voxel *centres* in mm, so
    half a voxel of this scale is added along the transform's own axes. For scale 0 this gives
    back the NIfTI affine the dataset was converted from; coarser scales get their own centres.

    >>> t = np.array([[1, 0, 0, -71166603.09], [0, 1, 0, -73010002.14],
    ...               [0, 0, 1, -59277698.52], [0, 0, 0, 1]])
    >>> one = Scale("1mm", (140, 154, 121), (1e6,) * 3, (0, 0, 0), (32,) * 3, "raw", None, None)
    >>> scale_affine(t, one)[:3, 3].round(3).tolist()
    [-70.667, -72.51, -58.778]
    >>> two = Scale("2mm", (70, 77, 61), (2e6,) * 3, (0, 0, 0), (32,) * 3, "raw", None, None)
    >>> scale_affine(t, two)[:3, 3].round(3).tolist()
    [-70.167, -72.01, -58.278]
    """
    resolution = np.asarray(scale.resolution_nm, dtype=np.float64)
    affine = transform_nm @ np.diag([*resolution, 1.0])
    affine[:3, 3] += transform_nm[:3, :3] @ (resolution / 2)
    affine[:3] /= NM_PER_MM
    affine[:3, 3] += affine[:3, :3] @ np.asarray(scale.voxel_offset, dtype=np.float64)
    return affine


def _parse_scale(doc: Any, where: str, url: str) -> Scale:
    if not isinstance(doc, dict):
        raise _malformed(url, where, "not a JSON object")
    key = _field(doc, "key", str, url, where)
    if not key:
        raise _malformed(url, f"{where}.key", "empty")
    chunk_sizes = _field(doc, "chunk_sizes", list, url, where)
    if not chunk_sizes:
        raise _malformed(url, f"{where}.chunk_sizes", "empty")
    sharding_doc = doc.get("sharding")
    sharding = None if sharding_doc is None else _parse_sharding(sharding_doc, where, url)
    if sharding is not None and len(chunk_sizes) != 1:
        raise _malformed(url, f"{where}.chunk_sizes", "a sharded scale has exactly one")
    encoding = _field(doc, "encoding", str, url, where)
    block = doc.get("compressed_segmentation_block_size")
    return Scale(
        key=key,
        size=_vec3(doc.get("size"), f"{where}.size", url, minimum=1),
        resolution_nm=_resolution(doc.get("resolution"), f"{where}.resolution", url),
        voxel_offset=_vec3(doc.get("voxel_offset", [0, 0, 0]), f"{where}.voxel_offset", url),
        chunk_size=_vec3(chunk_sizes[0], f"{where}.chunk_sizes[0]", url, minimum=1),
        encoding=encoding,
        block_size=None
        if block is None
        else _vec3(block, f"{where}.compressed_segmentation_block_size", url, minimum=1),
        sharding=sharding,
    )


def _parse_sharding(doc: Any, where: str, url: str) -> Sharding:
    where = f"{where}.sharding"
    if not isinstance(doc, dict):
        raise _malformed(url, where, "not a JSON object")
    kind = doc.get("@type")
    if kind != "neuroglancer_uint64_sharded_v1":
        raise _unsupported(url, f"{where}.@type", kind, "not neuroglancer_uint64_sharded_v1")
    bits = {
        name: _field(doc, name, int, url, where)
        for name in ("preshift_bits", "minishard_bits", "shard_bits")
    }
    if any(b < 0 for b in bits.values()) or sum(bits.values()) > 64:
        raise _malformed(url, where, f"bit counts must be ≥ 0 and sum to ≤ 64: {bits}")
    choices = {
        "hash": SHARD_HASHES,
        "minishard_index_encoding": SHARD_ENCODINGS,
        "data_encoding": SHARD_ENCODINGS,
    }
    chosen: dict[str, str] = {}
    for name, allowed in choices.items():
        value = doc.get(name, "raw") if name != "hash" else _field(doc, name, str, url, where)
        if value not in allowed:
            raise _unsupported(
                url, f"{where}.{name}", value, "not read by siibrad", supported=list(allowed)
            )
        chosen[name] = str(value)
    return Sharding(
        preshift_bits=bits["preshift_bits"],
        hash=chosen["hash"],
        minishard_bits=bits["minishard_bits"],
        shard_bits=bits["shard_bits"],
        minishard_index_encoding=chosen["minishard_index_encoding"],
        data_encoding=chosen["data_encoding"],
    )


def _field(doc: dict[str, Any], name: str, kind: type, url: str, where: str = "") -> Any:
    path = f"{where}.{name}" if where else name
    if name not in doc:
        raise _malformed(url, path, "missing")
    value = doc[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(url, path, f"must be a JSON {kind.__name__}, got {value!r}")
    return value


def _vec3(value: Any, where: str, url: str, *, minimum: int | None = None) -> Vec3:
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and (minimum is None or all(v >= minimum for v in value))
    )
    if not ok:
        bound = f" of integers ≥ {minimum}" if minimum is not None else " of integers"
        raise _malformed(url, where, f"must be [x, y, z]{bound}, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


def _resolution(value: Any, where: str, url: str) -> tuple[float, float, float]:
    numbers = isinstance(value, list) and len(value) == 3
    numbers = numbers and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in value
    )
    if not numbers:
        raise _malformed(url, where, f"must be [x, y, z] positive nanometres, got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


def _unsupported(url: str, field: str, value: Any, problem: str, **more: Any) -> UnsupportedError:
    return UnsupportedError(
        f"neuroglancer precomputed volume {url}: {field} {value!r}: {problem}",
        url=url,
        field=field,
        value=value,
        **more,
    )


def _malformed(url: str, field: str, problem: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"malformed neuroglancer precomputed volume {url}: {field} {problem}",
        url=url,
        field=field,
        reason=problem,
    )
