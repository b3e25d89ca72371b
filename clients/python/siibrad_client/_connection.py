"""One DEALER socket to the daemon, owned by one thread, and the matching of replies to ids.

zmq sockets must not be shared between threads, so the client gives every thread its own
:class:`Connection` (its own zmq identity, hence its own ``initialize`` on the daemon). Replies
may arrive out of order (batches, cancelled requests, the reply to a request that already timed
out): they are parked by id until their waiter asks, and dropped when nobody will. ``$/progress``
notifications go to the callback registered for their token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._codec import decode, encode

log = logging.getLogger("siibrad_client")

SLICE_S = 0.1
"""Longest single blocking receive: bounds how late a cross-thread cancel or a liveness check
runs while a reply is awaited."""

_STASH_LIMIT = 10_000


class Connection:
    """A DEALER connected to ``endpoint``; every method must run on the owner thread."""

    def __init__(self, context: Any, endpoint: str, encoding: str) -> None:
        import zmq  # noqa: PLC0415 (kept out of `import siibrad_client`: 30 ms)

        self._zmq = zmq
        self.endpoint = endpoint
        self.encoding = encoding
        self.owner = threading.get_ident()
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.initialized: Mapping[str, Any] | None = None
        self.cancel_flags: set[Any] = set()  # ids whose cancel was asked from another thread
        self.progress: dict[str, Callable[[Any], None]] = {}
        self._next_id = 0
        self._stash: dict[Any, dict[str, Any]] = {}
        self._waiting: set[Any] = set()
        self._timeout_ms = -2
        self.closed = False

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def send(self, message: Any) -> None:
        frames = encode(message, self.encoding)
        if len(frames) == 1:
            self.socket.send(frames[0])
        else:  # large buffers leave without a copy (pyzmq's copy threshold)
            self.socket.send_multipart(frames, copy=False)

    def expect(self, rid: Any) -> None:
        """Announce that a reply to ``rid`` will be waited for (others get dropped)."""
        self._waiting.add(rid)

    def forget(self, rid: Any) -> None:
        self._waiting.discard(rid)
        self._stash.pop(rid, None)

    def take(self, rid: Any) -> dict[str, Any] | None:
        """The reply for ``rid`` if it has arrived (a batch-wide error is filed under None)."""
        reply = self._stash.pop(rid, None)
        if reply is not None:
            self._waiting.discard(rid)
        return reply

    def has(self, rid: Any) -> bool:
        return rid in self._stash

    def receive(self, timeout_s: float) -> bool:
        """Receive and file one message; False when none came within ``timeout_s``."""
        timeout_ms = max(0, int(timeout_s * 1000))
        if timeout_ms != self._timeout_ms:
            self.socket.setsockopt(self._zmq.RCVTIMEO, timeout_ms)
            self._timeout_ms = timeout_ms
        try:
            frames: list[Any] = [self.socket.recv()]
        except self._zmq.Again:
            return False
        while self.socket.getsockopt(self._zmq.RCVMORE):
            frames.append(self.socket.recv(copy=False))
        try:
            message = decode(frames)
        except Exception as exc:  # a garbled frame must not kill the caller's other requests
            log.warning("siibrad_client: undecodable message dropped: %s", exc)
            return True
        self._file(message)
        return True

    def _file(self, message: Any) -> None:
        if isinstance(message, list):
            for item in message:
                self._file(item)
            return
        if not isinstance(message, dict):
            log.warning("siibrad_client: message of type %s dropped", type(message).__name__)
            return
        if "method" in message:
            self._notification(message)
            return
        rid = message.get("id")
        wanted = rid in self._waiting or (rid is None and self._waiting)
        if wanted and len(self._stash) < _STASH_LIMIT:
            self._stash[rid] = message
        # else: the reply to a request we gave up on (timeout, cancel): nothing waits for it

    def _notification(self, message: Mapping[str, Any]) -> None:
        params = message.get("params")
        if message["method"] == "$/progress" and isinstance(params, Mapping):
            callback = self.progress.get(str(params.get("token")))
            if callback is not None:
                try:
                    callback(params.get("value"))
                except Exception:  # a user callback must not break the reply path
                    log.exception("siibrad_client: progress callback failed")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.socket.close(linger=0)


def deadline_after(timeout_s: float | None) -> float:
    """A monotonic deadline ``timeout_s`` from now (None: effectively never)."""
    return time.monotonic() + (timeout_s if timeout_s is not None else 10.0 * 365 * 86400)
