"""siibrad/errors.py stays equal to protocol/errors.json, the source of truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siibrad import errors

TABLE = json.loads((Path(__file__).resolve().parents[2] / "protocol" / "errors.json").read_text())


def test_every_table_entry_has_a_class_with_code_and_parent() -> None:
    """Each errors.json row is a class of the same type, code and parent."""
    for row in TABLE["errors"]:
        cls = errors.ERRORS_BY_TYPE[row["type"]]
        assert cls.code == row["code"], row["type"]
        parent = cls.__mro__[1]
        assert (parent.__name__ if row["parent"] else None) == (
            row["parent"] if parent is not Exception else None
        ), row["type"]


def test_no_class_missing_from_table() -> None:
    """No error class exists that the table does not document."""
    assert set(errors.ERRORS_BY_TYPE) == {row["type"] for row in TABLE["errors"]}


def test_types_are_unique_and_class_names_match() -> None:
    """data.type is unique and equals the Python class name."""
    types = [row["type"] for row in TABLE["errors"]]
    assert len(types) == len(set(types))
    for name, cls in errors.ERRORS_BY_TYPE.items():
        assert cls.__name__ == name


@pytest.mark.parametrize("row", TABLE["errors"], ids=lambda r: r["type"])
def test_wire_round_trip(row: dict[str, object]) -> None:
    """to_wire/from_wire keep the class, code, message and data."""
    cls = errors.ERRORS_BY_TYPE[str(row["type"])]
    exc = errors.SiibradError.from_wire(
        {"code": row["code"], "message": "boom", "data": {"type": row["type"], "x": 1}}
    )
    assert type(exc) is cls
    wire = exc.to_wire()
    assert wire["code"] == row["code"] and wire["message"] == "boom"
    assert wire["data"]["type"] == row["type"] and wire["data"]["x"] == 1


def test_not_found_carries_suggestions() -> None:
    """RegionNotFoundError exposes its suggestions and kind on the wire."""
    exc = errors.RegionNotFoundError("no region 'hoc9'", spec="hoc9", suggestions=["hOc1", "hOc2"])
    assert exc.suggestions == ["hOc1", "hOc2"]
    assert exc.to_wire()["data"] == {
        "type": "RegionNotFoundError",
        "spec": "hoc9",
        "kind": "region",
        "suggestions": ["hOc1", "hOc2"],
    }
    assert isinstance(exc, errors.NotFoundError) and isinstance(exc, errors.SiibradError)
