"""Helpers of the client end-to-end tests: short runtime dirs and stopping the daemons we start.

Every daemon here is started by the code under test (the client's auto-start) in a runtime dir
made by these helpers, so the helpers stop exactly those daemons: politely with
``daemon/shutdown``, then SIGTERM to the pid in that dir's own connection file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from siibrad_client import Client, SiibradError
from siibrad_client.discovery import probe, read_connection_file

STOP_WAIT_S = 30.0


def wait_until_gone(directory: Path, timeout_s: float = STOP_WAIT_S) -> bool:
    """True once no daemon answers in ``directory`` and its connection file is gone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = read_connection_file(directory)
        socket_path = directory / "zmq.sock"
        if info is None and not (socket_path.exists() and probe(f"ipc://{socket_path}")):
            return True
        time.sleep(0.05)
    return False


def stop_daemon(directory: Path) -> None:
    """Stop the daemon of ``directory`` if one runs (shutdown request, then SIGTERM)."""
    info = read_connection_file(directory)
    if info is None:
        return
    with (
        contextlib.suppress(SiibradError),
        Client(runtime_dir=directory, autostart=False, connect_timeout_s=5) as client,
    ):
        client.shutdown()
    if not wait_until_gone(directory, 15) and info.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
        wait_until_gone(directory, 15)
    for _ in range(300):  # bounded: let the process finish its exit before the dir goes
        try:
            os.kill(info.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@contextlib.contextmanager
def daemon_dir() -> Iterator[Path]:
    """A fresh private runtime dir with a short path (ipc paths are limited to ~100 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="sde-"))
    try:
        yield directory
    finally:
        stop_daemon(directory)
        shutil.rmtree(directory, ignore_errors=True)
