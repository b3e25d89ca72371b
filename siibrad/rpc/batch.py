"""Batches: the replies of one JSON-RPC batch, sent as one array once every item is answered.

Contract: the dispatcher appends inline replies to ``replies``, counts pooled items in
``pending``, and calls :meth:`BatchCollector.close` on the socket thread after the last item;
pooled items call :meth:`BatchCollector.add` from worker threads. Whichever comes last sends
the array (with the on-loop callbacks of the pooled items, which run on the socket thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from siibrad.rpc.codec import Encoding, Frame, encode_envelope
from siibrad.rpc.session import Session

Post = Callable[[bytes, list[Frame], Callable[[], None] | None], None]


class BatchCollector:
    """Gathers the replies of one batch; the whole array goes out once the last one is in."""

    __slots__ = (
        "_closed",
        "_encoding",
        "_lock",
        "_on_loops",
        "_post",
        "_session",
        "pending",
        "replies",
    )

    def __init__(self, post: Post, session: Session, encoding: Encoding) -> None:
        self._post = post
        self._session = session
        self._encoding = encoding
        self._lock = threading.Lock()
        self._closed = False
        self._on_loops: list[Callable[[], None]] = []
        self.replies: list[dict[str, Any]] = []
        self.pending = 0

    def close(self) -> list[Frame] | None:
        """Called on the socket thread once the batch is parsed: frames now, or None if pending."""
        with self._lock:
            self._closed = True
            if self.pending:
                return None
        for on_loop in self._on_loops:
            on_loop()
        return encode_envelope(self.replies, self._encoding) if self.replies else None

    def add(self, message: dict[str, Any], on_loop: Callable[[], None]) -> None:
        """A pooled item finished (any thread); the last one after close() posts the batch."""
        with self._lock:
            self.replies.append(message)
            self._on_loops.append(on_loop)
            self.pending -= 1
            done = self.pending == 0 and self._closed
        if done:
            on_loops = list(self._on_loops)

            def run_all() -> None:
                for fn in on_loops:
                    fn()

            self._post(self._session.key, encode_envelope(self.replies, self._encoding), run_all)
