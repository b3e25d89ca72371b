"""The siibrad client: discovery, one connection per thread, calls, batches, cancellation.

Contract (protocol/PROTOCOL.md): JSON-RPC 2.0 over a zmq DEALER, msgpack envelopes by default.
``Client()`` finds the daemon (see :mod:`siibrad_client.discovery`), starting it when allowed,
and shakes hands (``initialize`` + ``daemon/ping``: a live daemon is one that answers).

Threads: a :class:`Client` may be shared by any number of threads. Each thread gets its own
DEALER socket on first use (``threading.local``), because zmq sockets are not thread-safe; no
lock is taken on the request path, so threads do not wait for each other. A
:class:`PendingRequest` belongs to the thread that submitted it; only ``cancel()`` may be called
from another thread (it takes effect within :data:`~siibrad_client._connection.SLICE_S`).
After ``os.fork()`` the child builds fresh sockets on first use.

Failures: a remote error is raised as the class named by its ``data.type``. When the daemon goes
away during a call (its socket refuses connections) or answers ServerNotInitialized (it was
restarted behind the same socket), the client reconnects, shakes hands again (a new
``instance_id`` is counted in ``restarts``) and re-sends the request once, unless the method is
``daemon/shutdown``. No reply within ``timeout_s`` cancels the request on the daemon and raises
ReplyTimeoutError; Ctrl-C does the same and re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._codec import ENCODINGS
from ._connection import SLICE_S, Connection, deadline_after
from .discovery import ConnectionInfo, locate_daemon, probe
from .discovery import runtime_dir as default_runtime_dir
from .errors import (
    DaemonUnavailableError,
    ReplyTimeoutError,
    ServerNotInitialized,
    SiibradError,
)
from .queries import AtlasQueries

log = logging.getLogger("siibrad_client")

PROTOCOL_VERSION = "1.0.0"
NOT_RETRIED = frozenset({"daemon/shutdown"})
"""Methods never re-sent after a lost daemon: every other method only reads."""

_LIVENESS_EVERY_S = 1.0
Params = Mapping[str, Any] | None


class _DaemonLost(Exception):
    """Internal: the socket behind a connection refuses connections."""


def _cancel_message(rid: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": rid}}


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "")
    return default if raw == "" else raw.lower() not in {"0", "false", "no", "off"}


class Client(AtlasQueries):
    """A connection to the user's siibrad daemon, shareable between threads.

    ``endpoint``: connect exactly there (also ``$SIIBRAD_ENDPOINT``); never auto-starts.
    ``autostart``: start ``siibrad serve`` in the background when no daemon answers (default on;
    ``SIIBRAD_AUTOSTART=0`` turns it off). A daemon started this way gets ``configuration``
    (default ``$SIIBRAD_CONFIGURATION``) and exits after ``idle_timeout_s`` without clients.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        runtime_dir: str | Path | None = None,
        autostart: bool | None = None,
        configuration: str | None = None,
        timeout_s: float | None = 60.0,
        connect_timeout_s: float = 10.0,
        start_timeout_s: float = 60.0,
        idle_timeout_s: float | None = 3600.0,
        encoding: str = "msgpack",
        client_name: str = "siibrad_client",
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.start_timeout_s = start_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.encoding = encoding
        self.client_name = client_name
        self.configuration = configuration
        self._explicit_endpoint = endpoint or os.environ.get("SIIBRAD_ENDPOINT") or None
        self._runtime_dir = Path(runtime_dir) if runtime_dir else default_runtime_dir()
        self._autostart = _env_flag("SIIBRAD_AUTOSTART", True) if autostart is None else autostart
        self._lock = threading.Lock()  # guards discovery and the shared fields below
        self._local = threading.local()
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._context: Any = None
        self._pid = os.getpid()
        self._closed = False
        self.started_daemon = False
        """True when this client auto-started the daemon it talks to."""
        self.restarts = 0
        """How many times the daemon was seen to restart (a new ``instance_id``)."""
        self.instance_id: str | None = None
        self.server_info: Mapping[str, Any] = {}
        self.capabilities: Mapping[str, Any] = {}
        self.limits: Mapping[str, Any] = {}
        self.connection_info: ConnectionInfo | None = None
        self.endpoint = ""
        try:
            self.endpoint = self._discover()
            self._connection()  # hand shake now: errors surface in the constructor, not later
        except BaseException:
            self.close()
            raise

    # --- public API -----------------------------------------------------------------------

    def call(self, method: str, params: Params = None, *, timeout_s: float | None = -1.0) -> Any:
        """Send one request and return its result; remote errors raise their own class."""
        return self._request(self._connection(), method, params, self._timeout(timeout_s))

    def notify(self, method: str, params: Params = None) -> None:
        """Send a notification (no id, no reply), e.g. ``$/cancelRequest``."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._connection().send(message)

    def batch(
        self, calls: Iterable[tuple[str, Params]], *, timeout_s: float | None = -1.0
    ) -> list[Any]:
        """Send the calls as one JSON-RPC batch; results in order, errors as exception objects.

        The daemon answers the whole batch in one message, so N small calls cost one round trip.
        """
        items = [(str(method), params) for method, params in calls]
        if not items:
            return []
        conn = self._connection()
        deadline = deadline_after(self._timeout(timeout_s))
        for attempt in (1, 2):
            ids = [conn.new_id() for _ in items]
            messages = []
            for rid, (method, params) in zip(ids, items, strict=True):
                message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
                if params is not None:
                    message["params"] = params
                messages.append(message)
                conn.expect(rid)
            conn.expect(None)
            conn.send(messages)
            try:
                replies = self._await_all(conn, ids, deadline, "batch")
            except _DaemonLost:
                if attempt == 2 or any(m in NOT_RETRIED for m, _ in items):
                    raise self._lost(conn) from None
                conn = self._reconnect(conn)
                continue
            results = [self._outcome(reply) for reply in replies]
            if attempt == 1 and all(isinstance(r, ServerNotInitialized) for r in results):
                self._handshake(conn)
                continue
            return results
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(
        self,
        method: str,
        params: Params = None,
        *,
        progress: Callable[[Any], None] | None = None,
    ) -> PendingRequest:
        """Send a request without waiting: the handle can ``result()`` or ``cancel()`` it.

        ``progress`` receives the ``value`` of each ``$/progress`` notification for it (the
        request carries a ``work_done_token``).
        """
        conn = self._connection()
        rid = conn.new_id()
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        body = dict(params or {})
        if progress is not None:
            token = f"{self.client_name}-{id(conn):x}-{rid}"
            conn.progress[token] = progress
            body["work_done_token"] = token
        if body or params is not None:
            message["params"] = body
        conn.expect(rid)
        conn.send(message)
        return PendingRequest(self, conn, rid, method)

    def cancel(self, request_id: Any) -> None:
        """Ask the daemon to cancel a request sent from this thread (``$/cancelRequest``)."""
        self.notify("$/cancelRequest", {"id": request_id})

    def close(self) -> None:
        """Close every socket of this client; the daemon keeps running for others."""
        with self._lock:
            self._closed = True
            for conn in list(self._connections):
                conn.close()
            if self._context is not None and self._pid == os.getpid():
                self._context.term()
            self._context = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(endpoint={self.endpoint!r}, instance_id={self.instance_id!r})"

    # --- connections ----------------------------------------------------------------------

    def _timeout(self, timeout_s: float | None) -> float | None:
        return self.timeout_s if timeout_s == -1.0 else timeout_s

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and self._pid == os.getpid():
            return conn
        if self._closed:
            raise DaemonUnavailableError("this Client is closed")
        return self._open()

    def _open(self) -> Connection:
        import zmq  # noqa: PLC0415 (kept out of `import siibrad_client`: 30 ms)

        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's context must not be touched
                self._pid, self._context = os.getpid(), None
                self._connections = weakref.WeakSet()
            if self._context is None:
                self._context = zmq.Context()
            conn = Connection(self._context, self.endpoint, self.encoding)
            self._connections.add(conn)
        weakref.finalize(conn, conn.socket.close, 0)
        self._local.conn = conn
        try:
            self._handshake(conn)
        except BaseException:
            conn.close()
            self._local.conn = None
            raise
        return conn

    def _handshake(self, conn: Connection) -> None:
        """``initialize`` and ``daemon/ping`` pipelined; no answer in time = no daemon."""
        init_id, ping_id = conn.new_id(), conn.new_id()
        client_info = {"name": self.client_name, "version": __version__}
        conn.expect(init_id)
        conn.expect(ping_id)
        conn.send(
            {
                "jsonrpc": "2.0",
                "id": init_id,
                "method": "initialize",
                "params": {"protocol_version": PROTOCOL_VERSION, "client_info": client_info},
            }
        )
        conn.send({"jsonrpc": "2.0", "id": ping_id, "method": "daemon/ping"})
        try:
            init, _ping = self._await_all(
                conn, [init_id, ping_id], deadline_after(self.connect_timeout_s), "initialize"
            )
        except (ReplyTimeoutError, _DaemonLost):
            raise DaemonUnavailableError(
                f"no siibrad daemon answers at {conn.endpoint} "
                f"(waited {self.connect_timeout_s:g} s)",
                endpoint=conn.endpoint,
            ) from None
        outcome = self._outcome(init)
        if isinstance(outcome, SiibradError):
            raise outcome
        conn.initialized = outcome
        with self._lock:
            instance_id = outcome.get("instance_id")
            if self.instance_id is not None and instance_id != self.instance_id:
                self.restarts += 1
                log.warning(
                    "siibrad daemon restarted (instance %s -> %s); its caches are cold",
                    self.instance_id,
                    instance_id,
                )
            self.instance_id = instance_id
            self.server_info = outcome.get("server_info", {})
            self.capabilities = outcome.get("capabilities", {})
            self.limits = outcome.get("limits", {})

    def _discover(self) -> str:
        if self._explicit_endpoint:
            return self._explicit_endpoint
        found = locate_daemon(
            self._runtime_dir,
            autostart=self._autostart,
            configuration=self.configuration,
            idle_timeout_s=self.idle_timeout_s,
            start_timeout_s=self.start_timeout_s,
        )
        self.connection_info = found.info
        self.started_daemon = self.started_daemon or found.started
        return found.endpoint

    def _reconnect(self, conn: Connection) -> Connection:
        """Drop a dead connection, find (or start) the daemon again, and shake hands."""
        conn.close()
        self._local.conn = None
        with self._lock:
            if not probe(self.endpoint):
                self.endpoint = self._discover()
        deadline = deadline_after(self.connect_timeout_s)
        while True:  # a restarting daemon may need a moment to bind its socket
            try:
                return self._open()
            except DaemonUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _lost(self, conn: Connection) -> DaemonUnavailableError:
        return DaemonUnavailableError(
            f"the siibrad daemon at {conn.endpoint} went away during the request",
            endpoint=conn.endpoint,
        )

    # --- requests -------------------------------------------------------------------------

    def _request(
        self, conn: Connection, method: str, params: Params, timeout_s: float | None
    ) -> Any:
        deadline = deadline_after(timeout_s)
        for attempt in (1, 2):
            rid = conn.new_id()
            message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
            if params is not None:
                message["params"] = params
            conn.expect(rid)
            conn.send(message)
            try:
                reply = self._await(conn, rid, deadline, method)
            except _DaemonLost:
                if attempt == 2 or method in NOT_RETRIED:
                    raise self._lost(conn) from None
                conn = self._reconnect(conn)
                continue
            error = reply.get("error")
            if error is None:
                return reply.get("result")
            exc = SiibradError.from_wire(error)
            if attempt == 1 and isinstance(exc, ServerNotInitialized):
                self._handshake(conn)  # restarted behind the same socket
                continue
            raise exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _await(self, conn: Connection, rid: Any, deadline: float, method: str) -> dict[str, Any]:
        return self._await_all(conn, [rid], deadline, method)[0]

    def _await_all(
        self, conn: Connection, ids: Sequence[Any], deadline: float, method: str
    ) -> list[dict[str, Any]]:
        """The replies to ``ids`` (a batch-wide error stands in for all); see module doc."""
        last_heard = time.monotonic()
        try:
            while True:
                if all(conn.has(rid) for rid in ids):
                    conn.forget(None)
                    return [conn.take(rid) for rid in ids]  # type: ignore[misc]
                if conn.has(None):  # the daemon could not read the request or batch at all
                    batch_error = conn.take(None)
                    for rid in ids:
                        conn.forget(rid)
                    return [batch_error for _ in ids]  # type: ignore[misc]
                now = time.monotonic()
                if now >= deadline:
                    self._give_up(conn, ids)
                    raise ReplyTimeoutError(
                        f"no reply to {method} within the timeout; the request was cancelled",
                        method=method,
                    )
                if conn.receive(min(deadline - now, SLICE_S)):
                    last_heard = time.monotonic()
                    continue
                for rid in conn.cancel_flags & set(ids):
                    conn.cancel_flags.discard(rid)
                    conn.send(_cancel_message(rid))
                if time.monotonic() - last_heard >= _LIVENESS_EVERY_S:
                    last_heard = time.monotonic()
                    if not probe(conn.endpoint, timeout_s=0.5):
                        for rid in ids:
                            conn.forget(rid)
                        raise _DaemonLost
        except KeyboardInterrupt:
            self._give_up(conn, ids)
            raise

    def _give_up(self, conn: Connection, ids: Sequence[Any]) -> None:
        for rid in ids:
            conn.forget(rid)
            if not conn.closed:
                conn.send(_cancel_message(rid))

    @staticmethod
    def _outcome(reply: Mapping[str, Any]) -> Any:
        error = reply.get("error")
        return reply.get("result") if error is None else SiibradError.from_wire(error)


class PendingRequest:
    """A request in flight; ``result()`` waits for it on the thread that submitted it."""

    def __init__(self, client: Client, conn: Connection, rid: int, method: str) -> None:
        self.id = rid
        self.method = method
        self._client = client
        self._conn = conn
        self._reply: dict[str, Any] | None = None

    def cancel(self) -> None:
        """Ask the daemon to stop; ``result()`` then raises RequestCancelled (or has the result
        when it came first). Safe from any thread."""
        if threading.get_ident() == self._conn.owner:
            if not self._conn.closed:
                self._conn.send(_cancel_message(self.id))
        else:
            self._conn.cancel_flags.add(self.id)

    def done(self) -> bool:
        """True once the reply is here (reads what has arrived, never blocks)."""
        self._check_thread()
        while self._reply is None and not self._conn.has(self.id) and self._conn.receive(0):
            pass
        return self._reply is not None or self._conn.has(self.id)

    def result(self, timeout_s: float | None = -1.0) -> Any:
        """The result, or the remote error raised as its class; ReplyTimeoutError on timeout."""
        self._check_thread()
        if self._reply is None:
            deadline = deadline_after(self._client._timeout(timeout_s))
            try:
                self._reply = self._client._await(self._conn, self.id, deadline, self.method)
            except _DaemonLost:
                raise self._client._lost(self._conn) from None
            finally:
                self._conn.progress = {
                    t: cb for t, cb in self._conn.progress.items() if not t.endswith(f"-{self.id}")
                }
        outcome = Client._outcome(self._reply)
        if isinstance(outcome, SiibradError):
            raise outcome
        return outcome

    def _check_thread(self) -> None:
        if threading.get_ident() != self._conn.owner:
            raise RuntimeError("a PendingRequest is read on the thread that submitted it")
