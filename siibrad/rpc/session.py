"""Per-connection state, request scope, cancellation and limits.

Contract: a :class:`Session` exists per client connection (a zmq routing identity); it is
mutated only on the socket thread. A :class:`RequestScope` is what a running request knows about
itself: its session, id, cancellation flag and ``$/progress`` token. Workers check
``scope.check_cancelled()`` between chunks of work; :func:`RequestScope.progress` may be called
from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from siibrad.errors import RequestCancelled
from siibrad.rpc.codec import Encoding
from siibrad.rpc.messages import RequestId, notification_message


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits announced by ``initialize`` and enforced by the dispatcher and transport."""

    max_request_bytes: int = 256 * 1024**2
    max_in_flight_per_client: int = 64
    max_points: int = 10_000_000
    max_batch_size: int = 1000
    max_queued_total: int = 4096

    def to_wire(self) -> dict[str, int]:
        return {
            "max_request_bytes": self.max_request_bytes,
            "max_in_flight_per_client": self.max_in_flight_per_client,
            "max_points": self.max_points,
            "max_batch_size": self.max_batch_size,
        }


@dataclass(slots=True)
class Job:
    """A request handed to the worker pool; ``future`` is set once it is submitted."""

    id: RequestId
    method: str
    cancel_event: threading.Event
    started_s: float
    finish: Callable[[dict[str, Any]], None]
    future: Future[None] | None = None


@dataclass(slots=True)
class Session:
    """One client connection. ``key`` is the transport's routing identity."""

    key: bytes
    label: str
    initialized: bool = False
    client_info: dict[str, Any] = field(default_factory=dict)
    in_flight: dict[RequestId, Job] = field(default_factory=dict)
    requests: int = 0
    last_seen_s: float = field(default_factory=time.monotonic)


Notify = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class RequestScope:
    """What a running request knows about itself (handed to handlers through their context)."""

    session: Session
    id: RequestId
    method: str
    encoding: Encoding
    cancel_event: threading.Event | None = None
    work_done_token: int | str | None = None
    notify: Notify | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise RequestCancelled if ``$/cancelRequest`` or shutdown asked this request to stop."""
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise RequestCancelled(f"request {self.id!r} ({self.method}) was cancelled", id=self.id)

    def progress(
        self,
        kind: str,
        *,
        title: str | None = None,
        message: str | None = None,
        percentage: int | None = None,
    ) -> None:
        """Send ``$/progress`` (kind begin|report|end) if the client gave a work_done_token."""
        if self.work_done_token is None or self.notify is None:
            return
        value: dict[str, Any] = {"kind": kind}
        if title is not None:
            value["title"] = title
        if message is not None:
            value["message"] = message
        if percentage is not None:
            value["percentage"] = max(0, min(100, int(percentage)))
        self.notify(
            notification_message("$/progress", {"token": self.work_done_token, "value": value})
        )
