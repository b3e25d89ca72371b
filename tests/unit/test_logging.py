"""The daemon's log lines: one per event, JSON in files and pipes, console lines on a terminal."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import pytest
import structlog

from siibrad.logging import configure_logging


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _one_line(log_format: str, stream: io.StringIO, level: str = "info") -> str:
    configure_logging(log_format, level, stream)
    structlog.get_logger("test").info("request", method="map/assign", duration_ms=0.07)
    return stream.getvalue()


def test_auto_writes_json_lines_when_not_on_a_terminal() -> None:
    line = _one_line("auto", io.StringIO())
    record = json.loads(line)
    assert record["event"] == "request" and record["method"] == "map/assign"
    assert record["level"] == "info" and record["timestamp"].endswith("Z")
    assert line.count("\n") == 1


def test_auto_writes_console_lines_on_a_terminal() -> None:
    line = re.sub(r"\x1b\[[0-9;]*m", "", _one_line("auto", _Terminal()))  # colours off
    assert "request" in line and "method=map/assign" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_level_filters_and_unknown_formats_are_refused() -> None:
    assert _one_line("json", io.StringIO(), level="warning") == ""
    with pytest.raises(ValueError, match="auto, json, console"):
        configure_logging("xml", "info", io.StringIO())
