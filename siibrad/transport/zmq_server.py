"""The ZeroMQ ROUTER endpoint and the socket loop.

Contract: :class:`ZmqServer` binds a ROUTER socket (``ROUTER_MANDATORY``, bounded high-water
marks, ``MAXMSGSIZE``), reads ``[identity, (empty,) envelope, buffers...]`` messages, hands them
to the dispatcher and sends replies with ``NOBLOCK``. Only the loop thread touches the socket:
worker threads hand replies over with :meth:`post` (a deque plus a wake-up pipe the poller
watches). A reply to a client that is gone or whose queue is full is dropped and logged, never
waited for, so one slow or dead client cannot stall the others.

A frame larger than ``MAXMSGSIZE`` makes libzmq drop the connection before we see it; the
client's DEALER reconnects with a new identity and its pending request gets no reply (the
client's timeout fires). Smaller over-limit requests get a PayloadTooLarge reply.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
import zmq

from siibrad.rpc.codec import Frame
from siibrad.rpc.dispatcher import Dispatcher

HWM_MESSAGES = 1000
MAX_BATCH_PER_WAKEUP = 256
"""Messages read per poll round before posted replies get their turn (fairness)."""


class ZmqServer:
    """A bound ROUTER socket serving one dispatcher until ``keep_running`` says stop."""

    def __init__(self, endpoint: str, dispatcher: Dispatcher, *, hard_max_frame_bytes: int) -> None:
        self.endpoint = endpoint
        self.dispatcher = dispatcher
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.socket: zmq.Socket[bytes] = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.socket.setsockopt(zmq.SNDHWM, HWM_MESSAGES)
        self.socket.setsockopt(zmq.RCVHWM, HWM_MESSAGES)
        self.socket.setsockopt(zmq.MAXMSGSIZE, hard_max_frame_bytes)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.replies_dropped = 0
        self._posted: collections.deque[tuple[bytes, list[Frame], Callable[[], None] | None]]
        self._posted = collections.deque()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._log = structlog.get_logger("siibrad.transport")
        self._ipc_path: Path | None = None

    def bind(self) -> None:
        """Bind the endpoint; an ipc socket file is created 0600 (umask) and checked."""
        if self.endpoint.startswith("ipc://"):
            self._ipc_path = Path(self.endpoint[len("ipc://") :])
            with contextlib.suppress(FileNotFoundError):
                self._ipc_path.unlink()  # stale: the daemon lock says nobody else serves here
            old_umask = os.umask(0o177)
            try:
                self.socket.bind(self.endpoint)
            finally:
                os.umask(old_umask)
            os.chmod(self._ipc_path, 0o600)
        else:
            self.socket.bind(self.endpoint)
            self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def post(self, key: bytes, frames: list[Frame], on_loop: Callable[[], None] | None) -> None:
        """Queue frames for ``key`` from any thread; the loop sends them promptly."""
        self._posted.append((key, frames, on_loop))
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def wake(self) -> None:
        """Make the loop run its ``keep_running`` check now (safe in signal handlers)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def serve(self, keep_running: Callable[[], bool], tick_s: float = 0.5) -> None:
        """Run the loop until ``keep_running()`` is false (checked at least every ``tick_s``)."""
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        timeout_ms = int(tick_s * 1000)
        while keep_running():
            events = dict(poller.poll(timeout_ms))
            if self._wake_r in events:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 65536)
            self.flush_posted()
            if self.socket in events:
                self._read_messages()

    def _read_messages(self) -> None:
        for _ in range(MAX_BATCH_PER_WAKEUP):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._handle(frames)

    def _handle(self, frames: list[Any]) -> None:
        key: bytes = frames[0].bytes
        # A REQ client puts an empty delimiter before the envelope; echo it back.
        start = 2 if len(frames) > 2 and len(frames[1]) == 0 else 1
        if len(frames) <= start:
            return  # an identity without a body: nothing to answer
        body: list[Any] = [frames[start].bytes]
        body.extend(f.buffer for f in frames[start + 1 :])
        session = self.dispatcher.session(key)
        reply = self.dispatcher.handle(session, body)
        if reply is not None:
            self._send(key, [b""] if start == 2 else [], reply)

    def flush_posted(self) -> None:
        """Send every reply the workers handed over (runs their on-loop callbacks first)."""
        posted = self._posted
        while posted:
            key, frames, on_loop = posted.popleft()
            if on_loop is not None:
                on_loop()
            self._send(key, [], frames)

    def _send(self, key: bytes, delimiter: list[bytes], frames: list[Frame]) -> None:
        try:
            parts: list[Any] = [key, *delimiter, *frames]
            self.socket.send_multipart(parts, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.replies_dropped += 1
            self._log.warning("reply dropped: client not reading", client=key.hex())
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.replies_dropped += 1
            self._log.warning("reply dropped: client gone", client=key.hex())
            self.dispatcher.forget(key)

    def close(self, linger_s: float = 1.0) -> None:
        """Flush what is queued, close the socket (waiting up to ``linger_s``), remove the file."""
        self.flush_posted()
        self.socket.setsockopt(zmq.LINGER, int(linger_s * 1000))
        self.socket.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._ipc_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._ipc_path.unlink()
