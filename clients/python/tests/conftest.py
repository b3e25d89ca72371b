"""Fixtures of the client package's tests: a clean environment and a short private runtime dir.

ipc:// socket paths must stay under ~100 bytes, so runtime dirs are made directly under the
system temp dir rather than under pytest's long ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_siibrad_daemon import FakeDaemon

REPO = Path(__file__).resolve().parents[3]
ERRORS_JSON = REPO / "protocol" / "errors.json"


@pytest.fixture(autouse=True)
def client_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No SIIBRAD_* setting leaks in; the runtime dir is a fresh 0700 dir of our own."""
    for name in list(os.environ):
        if name.startswith("SIIBRAD_"):
            monkeypatch.delenv(name)
    directory = Path(tempfile.mkdtemp(prefix="sdc-"))
    monkeypatch.setenv("SIIBRAD_RUNTIME_DIR", str(directory))
    monkeypatch.setenv("SIIBRAD_AUTOSTART", "0")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fake_daemon(client_env: Path) -> Iterator[FakeDaemon]:
    """A stand-in daemon (real ROUTER socket) published in the runtime dir."""
    daemon = FakeDaemon(client_env)
    yield daemon
    daemon.stop()
