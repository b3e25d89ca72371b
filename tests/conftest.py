"""Shared fixtures: the real data beside the project, and an isolated environment per test.

Tests that need ``../shared/data`` fail loudly when it is missing: never skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SIIBRAD_SHARED_DATA", PROJECT.parent / "shared" / "data"))
CONFIGURATION = SHARED_DATA / "siibra-configurations"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real atlas data in ../shared/data (fails, never skips, when it is absent)."""
    if not (SHARED_DATA / "MIRROR.tsv").is_file():
        pytest.fail(
            f"shared data missing: expected {SHARED_DATA} (the ../shared folder beside the project)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def configuration_dir(shared_data: Path) -> Path:
    """The official siibra-configurations export (tag siibra-1.0.1-alpha.20)."""
    path = shared_data / "siibra-configurations"
    if not (path / "parcellations").is_dir():
        pytest.fail(f"configuration missing: {path}")
    return path


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SIIBRAD_* setting leaks in; caches and runtime dirs live under tmp_path."""
    for name in list(os.environ):
        if name.startswith("SIIBRAD_") or name in {"HBP_AUTH_TOKEN", "SIIBRA_USE_CONFIGURATION"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("SIIBRAD_CACHE_DIR", str(tmp_path / "cache"))
    yield
