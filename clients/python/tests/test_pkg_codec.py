"""Envelopes round-trip in both encodings and arrays travel as zero-copy frames."""

from __future__ import annotations

import base64
import json

import msgpack
import numpy as np
import pytest
from siibrad_client._codec import RawArray, decode, encode


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_plain_round_trip(encoding: str) -> None:
    """A message without arrays is one frame and decodes to itself."""
    params = {"region": "hoc1 ü"}
    message = {"jsonrpc": "2.0", "id": 1, "method": "region/resolve", "params": params}
    frames = encode(message, encoding)
    assert len(frames) == 1
    assert frames[0][:1] == (b"{" if encoding == "json" else b"\x84")
    assert decode(frames) == message


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_arrays_become_frames(encoding: str) -> None:
    """numpy arrays (any layout) leave as C-order frames referenced by index."""
    points = np.arange(12, dtype="<f8").reshape(4, 3)
    labels = np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3))
    frames = encode({"params": {"points": points, "nested": [labels, np.float32(2.5)]}}, encoding)
    assert len(frames) == 3
    head = bytes(frames[0])
    envelope = json.loads(head) if encoding == "json" else msgpack.unpackb(head)
    assert envelope["params"]["points"] == {
        "kind": "ndarray",
        "dtype": "<f8",
        "shape": [4, 3],
        "buffer": 1,
    }
    assert envelope["params"]["nested"][1] == 2.5
    back = decode([bytes(f) for f in frames])
    np.testing.assert_array_equal(back["params"]["points"], points)
    np.testing.assert_array_equal(back["params"]["nested"][0], labels)


def test_received_arrays_share_the_frame_memory() -> None:
    """Decoding an ndarray frame does not copy it."""
    data = bytearray(np.arange(6, dtype="<f4").tobytes())
    head = msgpack.packb(
        {"result": {"kind": "ndarray", "dtype": "<f4", "shape": [2, 3], "buffer": 1}},
        use_bin_type=True,
    )
    view = memoryview(data)
    array = decode([head, view])["result"]
    assert array.shape == (2, 3) and np.shares_memory(array, np.frombuffer(view, dtype="<f4"))


def test_base64_arrays_in_fortran_order() -> None:
    """JSON text may carry base64 arrays in column-major order (the MATLAB/R layout)."""
    values = np.arange(6, dtype="<f8").reshape(2, 3)
    text = base64.b64encode(values.tobytes(order="F")).decode()
    head = (
        '{"result":{"kind":"ndarray","dtype":"<f8","shape":[2,3],"order":"F","base64":"'
        + text
        + '"}}'
    ).encode()
    np.testing.assert_array_equal(decode([head])["result"], values)


def test_bad_buffer_index_is_refused() -> None:
    """A stub pointing past the frames is an error, not a crash or garbage."""
    head = msgpack.packb({"kind": "ndarray", "dtype": "<f8", "shape": [1], "buffer": 3})
    with pytest.raises(ValueError, match="frame 3"):
        decode([head, b"\0" * 8])


def test_raw_array_tolist_without_numpy() -> None:
    """RawArray (what a numpy-less install receives) reads back as nested lists."""
    raw = RawArray("<f8", (2, 2), np.array([[1.0, 2.0], [3.0, 4.0]]).tobytes())
    assert raw.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(TypeError, match="numpy"):
        RawArray(">f8", (1,), b"\0" * 8).tolist()


def test_unencodable_values_are_named() -> None:
    """An object the protocol cannot carry raises TypeError naming its type."""
    with pytest.raises(TypeError, match="object"):
        encode({"x": object()})
