"""Envelope and array codec of the zmq transport (protocol/PROTOCOL.md, contract D).

A message is ``[envelope, buffer, buffer, ...]``. The envelope is msgpack (``use_bin_type``,
decoded with ``raw=False``) or UTF-8 JSON; the daemon tells them apart by the first byte, so the
decoder does the same. An ndarray anywhere in the envelope is the stub
``{"kind": "ndarray", "dtype": "<f8", "shape": [N, 3], "buffer": k}`` whose bytes (C order) are
frame ``k``; JSON text may instead carry ``"base64"`` with ``"order"``. numpy is optional: it is
only imported when an array is actually sent or received, so ``import siibrad_client`` stays
cheap; without numpy a received array is a :class:`RawArray`.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

ENCODINGS = ("msgpack", "json")

# dtype strings whose items memoryview.cast understands (native little-endian machines).
_CAST_FORMATS = {
    "|u1": "B",
    "|i1": "b",
    "|b1": "?",
    "<u2": "H",
    "<i2": "h",
    "<u4": "I",
    "<i4": "i",
    "<u8": "Q",
    "<i8": "q",
    "<f4": "f",
    "<f8": "d",
}


@dataclass(frozen=True, slots=True)
class RawArray:
    """An array received without numpy installed: dtype string, shape and the raw bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes | memoryview
    order: str = "C"

    def tolist(self) -> list[Any]:
        """The values as nested lists (C order), for the common little-endian dtypes.

        >>> data = bytes([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0])
        >>> RawArray("<i4", (2, 2), data).tolist()
        [[1, 2], [3, 4]]
        """
        fmt = _CAST_FORMATS.get(self.dtype)
        if fmt is None or sys.byteorder != "little" or self.order != "C":
            raise TypeError(f"install numpy to read {self.dtype} arrays in {self.order} order")
        flat: list[Any] = memoryview(self.data).cast("B").cast(fmt).tolist()  # type: ignore[call-overload]
        for size in reversed(self.shape[1:]):
            flat = [flat[i : i + size] for i in range(0, len(flat), size)]
        return flat if self.shape else flat[:1]


def _numpy_default(obj: Any) -> Any:
    # numpy scalars (np.float64(1.0), np.int32(5)) are common in user params.
    item = getattr(obj, "item", None)
    if item is not None and type(obj).__module__ == "numpy":
        return item()
    raise TypeError(f"cannot encode {type(obj).__name__} for the siibrad protocol")


def _lift_arrays(value: Any, frames: list[Any], ndarray: type) -> Any:
    """``value`` with every numpy array replaced by a stub; the buffers appended to frames."""
    if isinstance(value, ndarray):
        import numpy as np  # noqa: PLC0415 (numpy is optional and slow to import)

        array = np.ascontiguousarray(value)
        if array.dtype.hasobject:
            raise TypeError("object arrays cannot be sent; use a numeric dtype")
        frames.append(array.data.cast("B") if array.size else b"")
        return {
            "kind": "ndarray",
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "buffer": len(frames),
        }
    if isinstance(value, Mapping):
        return {k: _lift_arrays(v, frames, ndarray) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lift_arrays(v, frames, ndarray) for v in value]
    return value


def encode(message: Any, encoding: str = "msgpack") -> list[Any]:
    """The frames of one message: the envelope, then one frame per numpy array in it."""
    frames: list[Any] = []
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # no numpy imported means the message cannot hold an array
        message = _lift_arrays(message, frames, numpy.ndarray)
    if encoding == "msgpack":
        envelope = msgpack.packb(message, use_bin_type=True, default=_numpy_default)
    elif encoding == "json":
        envelope = json.dumps(
            message, separators=(",", ":"), ensure_ascii=False, default=_numpy_default
        ).encode("utf-8")
    else:
        raise ValueError(f"unknown encoding {encoding!r}; use one of {ENCODINGS}")
    return [envelope, *frames]


def _buffer_of(frame: Any) -> bytes | memoryview:
    buffer = getattr(frame, "buffer", None)  # zmq.Frame: zero-copy view of the message
    return buffer if buffer is not None else frame  # type: ignore[no-any-return]


def _make_array(stub: Mapping[str, Any], frames: Sequence[Any]) -> Any:
    dtype = str(stub["dtype"])
    shape = tuple(int(n) for n in stub["shape"])
    order = str(stub.get("order", "C"))
    if "buffer" in stub:
        index = int(stub["buffer"])
        if not 1 <= index < len(frames):
            raise ValueError(f"ndarray refers to frame {index} of a {len(frames)}-frame message")
        data: bytes | memoryview = _buffer_of(frames[index])
    else:
        data = base64.b64decode(stub["base64"])
    try:
        import numpy as np  # noqa: PLC0415 (numpy is optional and slow to import)
    except ImportError:
        return RawArray(dtype, shape, data, order)
    array = np.frombuffer(data, dtype=np.dtype(dtype))
    return array.reshape(shape, order="F" if order == "F" else "C")


def _lower_arrays(value: Any, frames: Sequence[Any]) -> Any:
    if isinstance(value, dict):
        if (
            value.get("kind") == "ndarray"
            and "dtype" in value
            and "shape" in value
            and ("buffer" in value or "base64" in value)
        ):
            return _make_array(value, frames)
        return {k: _lower_arrays(v, frames) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_arrays(v, frames) for v in value]
    return value


def decode(frames: Sequence[Any]) -> Any:
    """The message in ``frames`` with every ndarray stub replaced by an array (zero copy)."""
    envelope = frames[0]
    raw = envelope if isinstance(envelope, bytes) else bytes(_buffer_of(envelope))
    if raw[:1] in (b"{", b"["):
        message = json.loads(raw)
        has_arrays = len(frames) > 1 or b'"ndarray"' in raw
    else:
        message = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        has_arrays = len(frames) > 1 or b"ndarray" in raw
    return _lower_arrays(message, frames) if has_arrays else message
