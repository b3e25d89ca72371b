"""End-to-end fixtures: a real ``siibrad serve`` subprocess and raw zmq connections to it.

``siibrad_daemon`` (session scope) is one daemon on the local configuration in a private
temporary runtime dir, shared by tests that do not change its state. ``start_daemon(**opts)``
starts a fresh one per test (for shutdown, idle exit, signals, limits); keyword options
become ``siibrad serve`` flags (``idle_timeout=1`` -> ``--idle-timeout 1``). Both wait until
the daemon answers ``daemon/ping``, fail with its log when it does not come up, and stop it
(SIGTERM, then SIGKILL) afterwards. ``raw_client(endpoint)`` gives a
:class:`server_daemons.RawClient` (closed after the test). Helpers live in server_daemons.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from server_daemons import DaemonProcess, RawClient, launch_daemon


@pytest.fixture(scope="session")
def siibrad_daemon(
    configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """One shared daemon for tests that leave its state alone."""
    daemon = launch_daemon(configuration_dir, tmp_path_factory.mktemp("shared-daemon"))
    yield daemon
    daemon.stop()


@pytest.fixture
def start_daemon(configuration_dir: Path, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory: a fresh daemon for this test (stopped afterwards)."""
    started: list[DaemonProcess] = []

    def start(**options: Any) -> DaemonProcess:
        base = tmp_path / f"daemon{len(started)}"
        base.mkdir()
        daemon = launch_daemon(configuration_dir, base, **options)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture
def raw_client() -> Iterator[Callable[[str], RawClient]]:
    """Factory of raw DEALER clients, closed after the test."""
    clients: list[RawClient] = []

    def connect(endpoint: str) -> RawClient:
        client = RawClient(zmq.Context.instance(), endpoint)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
