"""Envelope codecs: JSON and msgpack frames, and n-dimensional arrays as extra frames.

Contract (protocol/PROTOCOL.md, "Encodings"): frame 0 of a message is the envelope, UTF-8 JSON
when its first byte is ``{``, ``[`` or JSON whitespace, msgpack otherwise; a reply uses the
encoding of its request. An array anywhere in an envelope is the descriptor
``{"kind": "ndarray", "dtype": "<f8", "shape": [N, 3], "buffer": k}`` whose raw C-order bytes are
frame ``k`` (k >= 1), or, where no frames exist, ``"base64"`` text with an ``"order"``.

Decoding never executes anything (no pickle, no msgpack extension types) and every failure is a
:class:`~siibrad.errors.ParseError`; array descriptors that do not fit their bytes are
:class:`~siibrad.errors.InvalidParams`. Encoding turns numpy arrays into frames through the
serialisers' ``default`` hook, so replies without arrays pay nothing for the feature.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import msgpack
import numpy as np

from siibrad.errors import InvalidParams, ParseError

Frame = bytes | memoryview | np.ndarray[Any, Any]
"""Anything pyzmq can send as one frame without a copy."""

_JSON_FIRST_BYTES = frozenset(b"{[ \t\r\n")
_ARRAY_DTYPE_KINDS = frozenset("biuf")
MAX_ARRAY_DIMS = 32


class Encoding(StrEnum):
    """How an envelope frame is serialised."""

    JSON = "json"
    MSGPACK = "msgpack"


def detect_encoding(frame: bytes) -> Encoding:
    """JSON when the frame starts like a JSON document, else msgpack.

    >>> detect_encoding(b'{"jsonrpc": "2.0"}'), detect_encoding(b"\\x84")
    (<Encoding.JSON: 'json'>, <Encoding.MSGPACK: 'msgpack'>)
    """
    return Encoding.JSON if frame[:1] and frame[0] in _JSON_FIRST_BYTES else Encoding.MSGPACK


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


def decode_envelope(frame: bytes, encoding: Encoding) -> Any:
    """The envelope as plain Python data; :class:`ParseError` for anything undecodable."""
    try:
        if encoding is Encoding.JSON:
            return json.loads(frame)
        return msgpack.unpackb(
            frame, raw=False, use_list=True, strict_map_key=True, ext_hook=_refuse_ext
        )
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError, ExtraData and msgpack's
        # FormatError/StackError; the reason helps a client author find their framing bug.
        raise ParseError(
            f"frame 0 is not a valid {encoding.value} envelope: {exc}", encoding=encoding.value
        ) from None


class _FrameCollector:
    """``default`` hook of the serialisers: arrays become descriptors plus frames."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in _ARRAY_DTYPE_KINDS:
                raise TypeError(f"cannot send an array of dtype {obj.dtype}")
            # ascontiguousarray would turn a 0-d array into shape (1,)
            array = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)
            self.frames.append(array)
            return {
                "kind": "ndarray",
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "buffer": len(self.frames),
            }
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (set, frozenset)):
            return sorted(obj)
        raise TypeError(f"cannot serialise {type(obj).__name__}")


def encode_envelope(message: Any, encoding: Encoding) -> list[Frame]:
    """Frames of one message: the envelope, then one frame per array found in it."""
    collector = _FrameCollector()
    if encoding is Encoding.JSON:
        head: bytes = json.dumps(
            message, default=collector, ensure_ascii=False, separators=(",", ":")
        ).encode()
    else:
        head = msgpack.packb(message, default=collector, use_bin_type=True)
    return [head, *collector.frames]


def encode_json_text(message: Any) -> str:
    """One JSON document with arrays inlined as base64 descriptors (for text transports)."""

    def inline(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            array = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)
            return {
                "kind": "ndarray",
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "order": "C",
                "base64": base64.b64encode(array.tobytes()).decode("ascii"),
            }
        return _FrameCollector()(obj)

    return json.dumps(message, default=inline, ensure_ascii=False, separators=(",", ":"))


def has_array_descriptors(frame: bytes, buffer_count: int) -> bool:
    """Cheap pre-check so that plain requests skip the descriptor walk."""
    return buffer_count > 0 or b"ndarray" in frame


def decode_arrays(value: Any, buffers: Sequence[bytes | memoryview], path: str = "params") -> Any:
    """``value`` with every ndarray descriptor replaced by a (read-only) numpy array."""
    if isinstance(value, dict):
        if value.get("kind") == "ndarray":
            return _decode_array(value, buffers, path)
        return {k: decode_arrays(v, buffers, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [decode_arrays(v, buffers, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _bad_array(path: str, problem: str) -> InvalidParams:
    fields = [{"field": path, "problem": problem}]
    return InvalidParams(f"invalid array at {path}: {problem}", fields=fields)


def _decode_array(
    desc: dict[str, Any], buffers: Sequence[bytes | memoryview], path: str
) -> np.ndarray[Any, Any]:
    try:
        dtype = np.dtype(desc.get("dtype"))
    except TypeError:
        raise _bad_array(path, f"unknown dtype {desc.get('dtype')!r}") from None
    if dtype.kind not in _ARRAY_DTYPE_KINDS or dtype.hasobject:
        raise _bad_array(path, f"dtype {dtype.str} is not a bool, integer or float type")
    shape = desc.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_DIMS
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise _bad_array(path, "shape must be a list of non-negative integers")
    count = 1
    for n in shape:
        count *= n
    if "buffer" in desc:
        index = desc["buffer"]
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= len(buffers):
            problem = f"buffer {index!r} does not name one of frames 1..{len(buffers)}"
            raise _bad_array(path, problem)
        raw: bytes | memoryview = buffers[index - 1]
        order = "C"
    elif "base64" in desc:
        text = desc["base64"]
        if not isinstance(text, str):
            raise _bad_array(path, "base64 must be a string")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _bad_array(path, "base64 text is not valid") from None
        order = desc.get("order", "C")
        if order not in ("C", "F"):
            raise _bad_array(path, "order must be 'C' or 'F'")
    else:
        raise _bad_array(path, "an ndarray needs 'buffer' (a frame index) or 'base64'")
    if len(raw) != count * dtype.itemsize:
        expected = count * dtype.itemsize
        problem = f"{len(raw)} bytes do not hold shape {shape} of {dtype.str} ({expected})"
        raise _bad_array(path, problem)
    flat: np.ndarray[Any, Any] = np.frombuffer(raw, dtype=dtype)
    return flat.reshape(tuple(shape), order="F" if order == "F" else "C")
