"""Helpers of the server end-to-end tests: start a real ``siibrad serve`` and talk raw zmq.

``launch_daemon`` starts ``siibrad serve`` in the foreground as a child in a short private
runtime dir and waits for readiness (``daemon.json`` written and ``daemon/ping`` answered),
failing with the daemon's log otherwise. :class:`RawClient` is a DEALER socket with bounded
receives; ``.call(method, params)`` speaks msgpack and initializes on first use.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

READY_TIMEOUT_S = 60.0
RECV_TIMEOUT_S = 10.0


class RawClient:
    """A DEALER connection with bounded receives (every wait ends in ``timeout_s``)."""

    def __init__(self, context: zmq.Context[Any], endpoint: str) -> None:
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self._ids = itertools.count(1)
        self.initialized = False
        self.notifications: list[Any] = []

    def send(self, *frames: bytes) -> None:
        self.socket.send_multipart(list(frames))

    def send_json(self, message: Any, *buffers: bytes) -> None:
        self.send(json.dumps(message).encode(), *buffers)

    def send_msgpack(self, message: Any, *buffers: bytes) -> None:
        self.send(msgpack.packb(message, use_bin_type=True), *buffers)

    def recv_frames(self, timeout_s: float = RECV_TIMEOUT_S) -> list[bytes]:
        if not self.socket.poll(int(timeout_s * 1000)):
            raise TimeoutError(f"no reply within {timeout_s} s")
        return self.socket.recv_multipart()

    def recv(self, timeout_s: float = RECV_TIMEOUT_S) -> Any:
        """The decoded envelope of the next message (JSON or msgpack by its first byte)."""
        head = self.recv_frames(timeout_s)[0]
        if head[:1] in (b"{", b"["):
            return json.loads(head)
        return msgpack.unpackb(head, raw=False)

    def nothing_within(self, timeout_s: float) -> bool:
        """True when no message arrives within ``timeout_s`` (for notifications)."""
        return not self.socket.poll(int(timeout_s * 1000))

    def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        timeout_s: float = RECV_TIMEOUT_S,
        **extra: Any,
    ) -> Any:
        rid = next(self._ids)
        message = {"jsonrpc": "2.0", "id": rid, "method": method, **extra}
        if params is not None:
            message["params"] = params
        self.send_msgpack(message)
        reply = self.recv(timeout_s)
        while "id" not in reply:  # $/progress notifications come before the reply
            self.notifications.append(reply)
            reply = self.recv(timeout_s)
        assert reply["id"] == rid, reply
        return reply

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {"protocol_version": "1.0.0", "client_info": {"name": "e2e", "version": "0"}},
        )
        self.initialized = True
        return dict(reply["result"])

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The whole reply envelope (result or error), initializing first if needed."""
        if not self.initialized and method not in ("initialize", "daemon/ping"):
            self.initialize()
        return self.request(method, params or {})

    def close(self) -> None:
        self.socket.close()


@dataclass
class DaemonProcess:
    """A running ``siibrad serve`` started by a fixture."""

    process: subprocess.Popen[bytes]
    runtime_dir: Path
    log_path: Path
    info: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return str(self.info["endpoints"]["zmq"])

    @property
    def socket_path(self) -> Path:
        return Path(self.endpoint.removeprefix("ipc://"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_exit(self, timeout_s: float = 20.0) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; the temporary runtime dir is removed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def daemon_env(configuration: Path, cache_dir: Path) -> dict[str, str]:
    """The environment of a test daemon: no inherited SIIBRAD_*, offline local configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIIBRAD_")}
    env.pop("HBP_AUTH_TOKEN", None)
    env.update(
        SIIBRAD_CONFIGURATION=str(configuration),
        SIIBRAD_CACHE_DIR=str(cache_dir),
        SIIBRAD_LOG_FORMAT="json",
    )
    return env


def siibrad_command(*args: str) -> list[str]:
    """``siibrad ARGS`` run with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "siibrad", *args]


def launch_daemon(
    configuration: Path, base: Path, *, runtime_dir: Path | None = None, **options: Any
) -> DaemonProcess:
    """Start ``siibrad serve`` in the foreground as a child and wait until it answers."""
    # A short path: unix socket paths are limited to 107 bytes, pytest's tmp paths are long.
    runtime_dir = runtime_dir or Path(tempfile.mkdtemp(prefix="sdt-"))
    log_path = base / "daemon-test.log"
    flags: list[str] = []
    for name, value in options.items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            siibrad_command("serve", "--runtime-dir", str(runtime_dir), *flags),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=daemon_env(configuration, base / "cache"),
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    context = zmq.Context.instance()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"siibrad serve exited with {process.returncode}:\n{log_path.read_text()}")
        conn = runtime_dir / "daemon.json"
        if conn.is_file():
            info = json.loads(conn.read_text())
            client = RawClient(context, info["endpoints"]["zmq"])
            try:
                pong = client.request("daemon/ping", timeout_s=1.0)["result"]
                # A stale daemon.json (killed predecessor) names another pid and instance.
                if info["pid"] == process.pid and pong["instance_id"] == info["instance_id"]:
                    return DaemonProcess(process, runtime_dir, log_path, info)
            except TimeoutError:
                pass
            finally:
                client.close()
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=5)
    pytest.fail(f"siibrad serve not ready in {READY_TIMEOUT_S} s:\n{log_path.read_text()}")
