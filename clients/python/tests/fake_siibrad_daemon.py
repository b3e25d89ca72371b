"""A small stand-in daemon for the client's own tests: a real zmq ROUTER speaking contract D.

It exists so that the client package can be tested without siibrad installed (the package must
not depend on it); the end-to-end tests in tests/e2e/ drive the real daemon. It implements the
handshake (initialize before anything else, per zmq identity), replies in the request's
encoding, batches, notifications, ``$/cancelRequest`` for its delayed replies, ``$/progress``,
ndarray frames, and writes a connection file like the daemon's.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq

Handler = Callable[[dict[str, Any], list[Any]], Any]


class FakeDaemon:
    """ROUTER on ipc://<dir>/zmq.sock serving a few test methods in a background thread."""

    def __init__(self, directory: Path, *, write_connection_file: bool = True) -> None:
        self.directory = directory
        self.endpoint = f"ipc://{directory}/zmq.sock"
        self.instance_id = uuid.uuid4().hex
        self.received: list[tuple[bytes, Any]] = []  # (identity, decoded envelope)
        self.initialized: set[bytes] = set()
        self.delayed: dict[tuple[bytes, Any], tuple[float, dict[str, Any], bool]] = {}
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.bind(self.endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if write_connection_file:
            (directory / "daemon.json").write_text(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "instance_id": self.instance_id,
                        "protocol_version": "1.0.0",
                        "version": "0.0-fake",
                        "endpoints": {"zmq": self.endpoint},
                    }
                )
            )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket (the ipc file goes away with it)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._context.term()

    def methods_seen(self) -> list[str]:
        out = []
        for _, env in self.received:
            for item in env if isinstance(env, list) else [env]:
                if isinstance(item, dict):
                    out.append(str(item.get("method")))
        return out

    # --- serving ------------------------------------------------------------------------

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if poller.poll(10):
                    frames = self._socket.recv_multipart()
                    self._handle(frames[0], frames[1:])
                self._flush_delayed()
        finally:
            self._socket.close(linger=0)

    def _send(self, identity: bytes, message: Any, is_json: bool, buffers: list[Any]) -> None:
        if is_json:
            head = json.dumps(message).encode()
        else:
            head = msgpack.packb(message, use_bin_type=True)
        with contextlib.suppress(zmq.ZMQError):  # the client is gone
            self._socket.send_multipart([identity, head, *buffers])

    def _handle(self, identity: bytes, frames: list[bytes]) -> None:
        head = frames[0]
        is_json = head[:1] in (b"{", b"[")
        envelope = json.loads(head) if is_json else msgpack.unpackb(head, raw=False)
        self.received.append((identity, envelope))
        buffers: list[Any] = []
        if isinstance(envelope, list):
            answers = (self._reply(identity, e, frames, buffers) for e in envelope)
            replies = [r for r in answers if r]
            if replies:
                self._send(identity, replies, is_json, buffers)
            return
        reply = self._reply(identity, envelope, frames, buffers, is_json=is_json)
        if reply is not None:
            self._send(identity, reply, is_json, buffers)

    def _error(self, rid: Any, code: int, type_: str, message: str, **data: Any) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": rid,
            "error": {"code": code, "message": message, "data": {"type": type_, **data}},
        }

    def _reply(
        self,
        identity: bytes,
        env: dict[str, Any],
        frames: list[bytes],
        buffers: list[Any],
        is_json: bool = False,
    ) -> dict[str, Any] | None:
        method = env.get("method")
        params = env.get("params") or {}
        rid = env.get("id")
        notification = "id" not in env
        if method == "$/cancelRequest":
            key = (identity, params.get("id"))
            if key in self.delayed:
                _, _, was_json = self.delayed.pop(key)
                self._send(
                    identity,
                    self._error(key[1], -32800, "RequestCancelled", "cancelled"),
                    was_json,
                    [],
                )
            return None
        if notification:
            return None
        if method == "initialize":
            self.initialized.add(identity)
            return {
                "jsonrpc": "2.0",
                "id": rid,
                "result": {
                    "protocol_version": "1.0.0",
                    "server_info": {"name": "siibrad", "version": "0.0-fake"},
                    "instance_id": self.instance_id,
                    "capabilities": {"methods": ["test/echo", "test/slow"]},
                    "limits": {"max_request_bytes": 1 << 20},
                },
            }
        if method == "daemon/ping":
            return {"jsonrpc": "2.0", "id": rid, "result": {"instance_id": self.instance_id}}
        if identity not in self.initialized:
            return self._error(rid, -32002, "ServerNotInitialized", "initialize first")
        if method == "test/echo":
            return {"jsonrpc": "2.0", "id": rid, "result": params}
        if method == "test/arrays":  # doubles every array sent as a frame
            out = {}
            for key, desc in params.items():
                arr = np.frombuffer(frames[desc["buffer"]], dtype=desc["dtype"]).reshape(
                    desc["shape"]
                )
                buffers.append((arr * 2).tobytes())
                out[key] = {**desc, "buffer": len(buffers)}
            return {"jsonrpc": "2.0", "id": rid, "result": out}
        if method == "test/missing":
            return self._error(
                rid,
                1105,
                "RegionNotFoundError",
                "no region 'hoc9'",
                spec="hoc9",
                kind="region",
                suggestions=["hOc1", "hOc2"],
            )
        if method == "test/slow":
            token = params.get("work_done_token")
            if token:
                self._send(
                    identity,
                    {
                        "jsonrpc": "2.0",
                        "method": "$/progress",
                        "params": {"token": token, "value": {"kind": "begin"}},
                    },
                    is_json,
                    [],
                )
            due = time.monotonic() + float(params.get("seconds", 1.0))
            reply = {"jsonrpc": "2.0", "id": rid, "result": "slept"}
            self.delayed[(identity, rid)] = (due, reply, is_json)
            return None
        return self._error(rid, -32601, "MethodNotFound", f"no method {method}", method=method)

    def _flush_delayed(self) -> None:
        now = time.monotonic()
        for key, (due, reply, is_json) in list(self.delayed.items()):
            if due <= now:
                del self.delayed[key]
                self._send(key[0], reply, is_json, [])
