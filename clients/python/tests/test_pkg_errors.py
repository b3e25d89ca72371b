"""The client's exception classes stay equal to protocol/errors.json and behave on the wire."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import pytest
from siibrad_client import errors

TOOL = Path(__file__).resolve().parents[1] / "tools" / "generate_errors.py"
ERRORS_JSON = Path(__file__).resolve().parents[3] / "protocol" / "errors.json"
TABLE = json.loads(ERRORS_JSON.read_text(encoding="utf-8"))


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("generate_errors", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_module_is_generated_from_the_table() -> None:
    """errors.py is exactly what the generator makes of protocol/errors.json (no drift)."""
    generated = _generator().generate(TABLE)  # type: ignore[attr-defined]
    assert Path(errors.__file__).read_text(encoding="utf-8") == generated


def test_every_row_has_a_class_with_code_parent_and_description() -> None:
    """Each table row is a class of the same type, code, parent and doc."""
    assert set(errors.ERRORS_BY_TYPE) == {row["type"] for row in TABLE["errors"]}
    for row in TABLE["errors"]:
        cls = errors.ERRORS_BY_TYPE[row["type"]]
        assert cls.__name__ == row["type"] and cls.code == row["code"]
        parent = cls.__mro__[1]
        assert (parent.__name__ if parent is not Exception else None) == row["parent"]
        if row["parent"]:
            assert " ".join((cls.__doc__ or "").split()) == row["description"]


@pytest.mark.parametrize("row", TABLE["errors"], ids=lambda r: r["type"])
def test_from_wire_picks_the_class_and_keeps_data(row: dict[str, object]) -> None:
    """A wire error becomes its own class; data fields read as attributes and survive pickle."""
    wire = {"code": row["code"], "message": "boom", "data": {"type": row["type"], "spec": "x"}}
    exc = errors.SiibradError.from_wire(wire)
    assert type(exc) is errors.ERRORS_BY_TYPE[str(row["type"])]
    assert exc.message == "boom" and exc.spec == "x" and exc.to_wire() == wire
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and again.data == exc.data


def test_suggestions_and_candidates() -> None:
    """Not-found errors expose suggestions, ambiguous ones candidates."""
    data = {"type": "RegionNotFoundError", "suggestions": ["a"]}
    nf = errors.SiibradError.from_wire({"code": 1105, "message": "m", "data": data})
    amb = errors.SiibradError.from_wire(
        {"code": 1205, "message": "m", "data": {"type": "AmbiguousRegionError", "candidates": [1]}}
    )
    assert isinstance(nf, errors.NotFoundError) and nf.suggestions == ["a"]
    assert isinstance(amb, errors.AmbiguousError) and amb.candidates == [1]
    with pytest.raises(AttributeError):
        _ = nf.no_such_field


def test_unknown_type_falls_back_to_code_then_root() -> None:
    """A type from a newer daemon maps to the class of its code, else to SiibradError."""
    by_code = errors.SiibradError.from_wire({"code": 1105, "message": "m", "data": {"type": "New"}})
    assert type(by_code) is errors.RegionNotFoundError
    root = errors.SiibradError.from_wire({"code": 4242, "message": "m"})
    assert type(root) is errors.SiibradError


def test_local_errors_are_not_wire_types() -> None:
    """Client-only failures never shadow a wire type and sit under ClientError."""
    assert not errors.LOCAL_ERRORS & set(errors.ERRORS_BY_TYPE)
    assert issubclass(errors.ReplyTimeoutError, TimeoutError)
    assert issubclass(errors.DaemonStartError, errors.DaemonUnavailableError)
