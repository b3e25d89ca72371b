"""Envelope codecs: JSON/msgpack detection, ndarray frames, base64 arrays, refusal of junk."""

from __future__ import annotations

import base64
import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from siibrad.errors import InvalidParams, InvalidRequest, ParseError
from siibrad.rpc.codec import (
    Encoding,
    decode_arrays,
    decode_envelope,
    detect_encoding,
    encode_envelope,
    encode_json_text,
)
from siibrad.rpc.messages import parse_request

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("encoding", list(Encoding))
@given(value=json_values)
@settings(max_examples=60, deadline=None)
def test_envelope_round_trip(encoding: Encoding, value: object) -> None:
    """Any JSON-like value survives encode -> detect -> decode in both encodings."""
    message = {"jsonrpc": "2.0", "id": 1, "result": value}
    frames = encode_envelope(message, encoding)
    head = bytes(frames[0])
    assert detect_encoding(head) is encoding
    assert decode_envelope(head, encoding) == message


@given(
    array=hnp.arrays(
        dtype=st.sampled_from(["<f8", "<f4", "<i4", "<u2", "|u1", "|b1", ">f8"]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
    )
)
@settings(max_examples=60, deadline=None)
def test_ndarray_frames_round_trip(array: np.ndarray) -> None:
    """An array in a message becomes a descriptor plus a raw frame and decodes to equal bytes."""
    frames = encode_envelope({"result": {"values": array}}, Encoding.MSGPACK)
    envelope = decode_envelope(bytes(frames[0]), Encoding.MSGPACK)
    desc = envelope["result"]["values"]
    assert desc["kind"] == "ndarray" and desc["buffer"] == 1 and desc["shape"] == list(array.shape)
    raw = [memoryview(np.ascontiguousarray(f)).cast("B") for f in frames[1:]]
    decoded = decode_arrays(envelope, raw)["result"]["values"]
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def test_fortran_order_arrays_are_sent_c_contiguous() -> None:
    """A Fortran-ordered array is sent in C order with the same values."""
    array = np.asfortranarray(np.arange(12, dtype="<f8").reshape(3, 4))
    frames = encode_envelope({"a": array}, Encoding.JSON)
    desc = json.loads(bytes(frames[0]))["a"]
    np.testing.assert_array_equal(decode_arrays({"a": desc}, [bytes(frames[1])])["a"], array)


def test_base64_arrays_with_column_major_order() -> None:
    """Text transports send base64 with order "F" (MATLAB, R) and get the same matrix."""
    matrix = np.arange(6, dtype="<f8").reshape(2, 3)
    desc = {
        "kind": "ndarray",
        "dtype": "<f8",
        "shape": [2, 3],
        "order": "F",
        "base64": base64.b64encode(matrix.tobytes(order="F")).decode(),
    }
    np.testing.assert_array_equal(decode_arrays({"p": desc}, [])["p"], matrix)
    inline = json.loads(encode_json_text({"p": matrix}))["p"]
    np.testing.assert_array_equal(decode_arrays({"p": inline}, [])["p"], matrix)


@pytest.mark.parametrize(
    ("desc", "problem"),
    [
        ({"dtype": "<f8", "shape": [2], "buffer": 2}, "does not name"),
        ({"dtype": "<f8", "shape": [3], "buffer": 1}, "do not hold"),
        ({"dtype": "O", "shape": [2], "buffer": 1}, "not a bool"),
        ({"dtype": "nonsense", "shape": [2], "buffer": 1}, "unknown dtype"),
        ({"dtype": "<f8", "shape": [-1], "buffer": 1}, "non-negative"),
        ({"dtype": "<f8", "shape": [2]}, "needs 'buffer'"),
        ({"dtype": "<f8", "shape": [2], "base64": "***"}, "not valid"),
    ],
)
def test_bad_array_descriptors_are_invalid_params(desc: dict[str, object], problem: str) -> None:
    """Descriptors that do not fit their bytes name the field and the problem."""
    with pytest.raises(InvalidParams) as caught:
        decode_arrays({"points": {"kind": "ndarray", **desc}}, [b"\0" * 16])
    assert caught.value.data["fields"][0]["field"] == "params.points"
    assert problem in caught.value.data["fields"][0]["problem"]


@pytest.mark.parametrize(
    ("frame", "encoding"),
    [
        (b"{not json", Encoding.JSON),
        (b"[1, 2", Encoding.JSON),
        (b"\xc1", Encoding.MSGPACK),  # the one never-used msgpack byte
        (msgpack.packb(msgpack.ExtType(1, b"x")), Encoding.MSGPACK),
        (msgpack.packb({"a": 1}) + b"\x00", Encoding.MSGPACK),
        (b"\xa2\xff\xfe", Encoding.MSGPACK),  # a str with invalid UTF-8
        (b"[" * 100_000, Encoding.JSON),
    ],
)
def test_undecodable_frames_are_parse_errors(frame: bytes, encoding: Encoding) -> None:
    """Garbage, extension types, trailing bytes, bad UTF-8 and absurd nesting: ParseError."""
    assert detect_encoding(frame) is encoding
    with pytest.raises(ParseError):
        decode_envelope(frame, encoding)


def test_pickle_is_never_an_encoding() -> None:
    """A pickle frame is neither JSON nor msgpack: refused, never unpickled."""
    import pickle

    frame = pickle.dumps({"jsonrpc": "2.0"})
    encoding = detect_encoding(frame)
    with pytest.raises((ParseError, InvalidRequest)):
        parse_request(decode_envelope(frame, encoding))
