"""Daemon lifecycle seen from the real client: shutdown, restart and reconnect, crash, idle exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_daemons import daemon_dir, wait_until_gone
from siibrad_client import Client, DaemonUnavailableError
from siibrad_client.discovery import read_connection_file


@pytest.fixture
def runtime(configuration_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty runtime dir and the local configuration; any daemon left is stopped."""
    with daemon_dir() as directory:
        monkeypatch.setenv("SIIBRAD_RUNTIME_DIR", str(directory))
        monkeypatch.setenv("SIIBRAD_CONFIGURATION", str(configuration_dir))
        yield directory


def _serve_detached(directory: Path, *extra: str) -> None:
    siibrad = Path(sys.executable).parent / "siibrad"
    subprocess.run(
        [str(siibrad), "serve", "--detach", "--runtime-dir", str(directory), *extra],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_shutdown_stops_the_daemon_and_cleans_up(runtime: Path) -> None:
    """daemon/shutdown answers, then the daemon exits and removes daemon.json and its socket."""
    with Client() as client:
        answer = client.shutdown()
        assert answer["shutting_down"] is True
    assert wait_until_gone(runtime)
    assert not (runtime / "daemon.json").exists() and not (runtime / "zmq.sock").exists()
    with pytest.raises(DaemonUnavailableError):
        Client(autostart=False)


def test_reconnect_after_a_restart(runtime: Path) -> None:
    """The daemon is stopped and a new one started: the same Client goes on, restarts == 1."""
    client = Client()
    try:
        before = client.instance_id
        assert client.get_region("julich 3.1", "hoc1 left").key == "AREA_HOC1_V1_17_CALCS_LEFT"
        with Client(autostart=False) as other:
            other.shutdown()
        assert wait_until_gone(runtime)
        _serve_detached(runtime)
        region = client.get_region("julich 3.1", "hoc2 left")
        assert region.name.startswith("Area hOc2")
        assert client.instance_id != before and client.restarts == 1
    finally:
        client.close()


def test_a_killed_daemon_is_replaced(runtime: Path) -> None:
    """After kill -9 (socket file left behind), the next call auto-starts a new daemon."""
    with Client() as client:
        info = read_connection_file(runtime)
        assert info is not None and info.pid
        os.kill(info.pid, signal.SIGKILL)  # the daemon this test's client started
        assert client.get_region("julich 3.1", "4a left").name == "Area 4a (PreCG) left"
        assert client.restarts == 1
        new = read_connection_file(runtime)
        assert new is not None and new.pid != info.pid


def test_idle_exit(runtime: Path) -> None:
    """A daemon started with a short idle timeout exits on its own once nobody talks to it."""
    with Client(idle_timeout_s=1.0) as client:
        assert client.status()["idle_timeout_s"] == 1.0
    assert wait_until_gone(runtime, timeout_s=60)
    with Client() as again:
        assert again.started_daemon  # nothing was left: the next client starts a new one
