"""A minimal blocking zmq client for the command line: discovery, ping, call, auto-start.

Contract: :class:`CliConnection` opens a DEALER on the daemon's endpoint, sends
``initialize`` once, then one JSON-envelope request at a time with a timeout
(:class:`DaemonUnreachable` when nothing answers). :func:`find_daemon` returns the connection
info of a live daemon (connection file + a successful ``daemon/ping``: never a pid check
alone). :func:`start_detached` spawns ``siibrad serve`` in its own session with output to
``daemon.log`` and returns once it is ready or has failed, under ``start.lock`` so that
racing callers start one daemon. The Python client package (clients/python) is the full client.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zmq

from siibrad import PROTOCOL_VERSION, __version__
from siibrad.errors import SiibradError
from siibrad.rpc.codec import Encoding, decode_arrays, encode_envelope
from siibrad.transport.runtime import (
    LOG_FILE,
    ConnectionInfo,
    ensure_runtime_dir,
    read_connection_file,
)

START_LOCK = "start.lock"


class DaemonUnreachable(ConnectionError):
    """No daemon answered at the endpoint within the timeout."""


class DaemonStartFailed(RuntimeError):
    """``siibrad serve`` exited or timed out before it was ready; the message has its log."""


class CliConnection:
    """One DEALER connection speaking JSON envelopes (arrays come back as numpy)."""

    def __init__(self, endpoint: str, timeout_s: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._socket: zmq.Socket[bytes] = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self._ids = itertools.count(1)
        self.initialized: dict[str, Any] | None = None

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> CliConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The raw response object (``result`` or ``error``) of one request."""
        rid = next(self._ids)
        message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
        frames: list[Any] = encode_envelope(message, Encoding.JSON)
        self._socket.send_multipart(frames)
        deadline = time.monotonic() + self.timeout_s
        while (left_s := deadline - time.monotonic()) > 0:
            if not self._socket.poll(int(left_s * 1000) + 1):
                break
            frames = self._socket.recv_multipart()
            reply = json.loads(frames[0])
            if isinstance(reply, dict) and reply.get("id") == rid:
                return dict(decode_arrays(reply, frames[1:], "result"))
        raise DaemonUnreachable(f"no reply from {self.endpoint} within {self.timeout_s:g} s")

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The result of ``method``; a SiibradError subclass for an error reply."""
        if self.initialized is None and method not in ("initialize", "daemon/ping"):
            self.initialized = self.call(
                "initialize",
                {
                    "protocol_version": PROTOCOL_VERSION,
                    "client_info": {"name": "siibrad-cli", "version": __version__},
                },
            )
        reply = self.request(method, params)
        if "error" in reply:
            raise SiibradError.from_wire(reply["error"])
        return reply.get("result")


def ping(endpoint: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The ``daemon/ping`` result, or None if nothing answers in time."""
    with CliConnection(endpoint, timeout_s) as conn:
        try:
            result = conn.call("daemon/ping")
        except (DaemonUnreachable, SiibradError):
            return None
    return result if isinstance(result, dict) else None


def find_daemon(runtime_dir: Path, timeout_s: float = 2.0) -> ConnectionInfo | None:
    """The live daemon of ``runtime_dir`` (its connection file answered a ping), or None."""
    info = read_connection_file(runtime_dir)
    if info is None or "zmq" not in info.endpoints:
        return None
    pong = ping(info.endpoints["zmq"], timeout_s)
    if pong is None or pong.get("instance_id") != info.instance_id:
        return None
    return info


def start_detached(
    runtime_dir: Path, serve_args: list[str], ready_timeout_s: float = 120.0
) -> ConnectionInfo:
    """Spawn ``siibrad serve`` detached and wait until it answers (or report why it did not)."""
    ensure_runtime_dir(runtime_dir)
    lock_fd = os.open(runtime_dir / START_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # racing starters queue here; one spawns
        running = find_daemon(runtime_dir)
        if running is not None:
            return running
        log_path = runtime_dir / LOG_FILE
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        log_start = os.lseek(log_fd, 0, os.SEEK_END)
        argv = [sys.executable, "-m", "siibrad", "serve", "--runtime-dir", str(runtime_dir)]
        proc = subprocess.Popen(
            [*argv, *serve_args],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
        )
        os.close(log_fd)
        return _wait_ready(proc, runtime_dir, log_path, log_start, ready_timeout_s)
    finally:
        os.close(lock_fd)


def _wait_ready(
    proc: subprocess.Popen[bytes],
    runtime_dir: Path,
    log_path: Path,
    log_start: int,
    timeout_s: float,
) -> ConnectionInfo:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = proc.poll()
        if status is not None:
            raise DaemonStartFailed(
                f"siibrad serve exited with status {status} before it was ready; "
                f"its log ({log_path}):\n{_log_tail(log_path, log_start)}"
            )
        info = read_connection_file(runtime_dir)
        if info is not None and info.pid == proc.pid and find_daemon(runtime_dir) is not None:
            # The daemon outlives us on purpose; mark it reaped so Popen does not warn.
            proc.returncode = 0
            return info
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    raise DaemonStartFailed(
        f"siibrad serve was not ready after {timeout_s:g} s; its log ({log_path}):\n"
        f"{_log_tail(log_path, log_start)}"
    )


def _log_tail(path: Path, start: int, max_chars: int = 4000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return text[-max_chars:].rstrip() or "(empty)"
