"""The daemon's lifecycle: load once, bind, publish, serve, and shut down cleanly.

Contract: :class:`Daemon` (``siibrad serve``) takes the runtime-dir lock, loads the catalogue
(``Catalog.load(settings.configuration, settings.extensions)``), binds the zmq endpoint, writes
``daemon.json`` (the readiness signal: clients wait for it and a ``daemon/ping``), then serves.
It stops on SIGTERM/SIGINT, ``daemon/shutdown`` or after ``idle_timeout_s`` without requests
and with nothing in flight. Stopping: new requests get ShuttingDown; in-flight work has
``shutdown_grace_s`` to finish, then it is cancelled (queued work is answered
RequestCancelled, running work is asked to stop); finally the socket file and
``daemon.json`` are removed and the lock released.
"""

from __future__ import annotations

import os
import platform
import resource
import signal
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import structlog

from siibrad import PROTOCOL_VERSION, __version__
from siibrad.catalog import Catalog
from siibrad.methods import MethodContext, load_methods
from siibrad.rpc.dispatcher import Dispatcher
from siibrad.rpc.session import Limits, RequestScope
from siibrad.settings import Settings
from siibrad.transport.runtime import (
    ConnectionInfo,
    DaemonLock,
    ensure_runtime_dir,
    remove_connection_file,
    resolve_runtime_dir,
    write_connection_file,
    zmq_endpoint,
)
from siibrad.transport.zmq_server import ZmqServer

FORCE_EXIT_AFTER_CANCEL_S = 2.0
"""After cancelling at the end of the grace period, how long running handlers may still take."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Daemon knobs that are not configuration knowledge (command line of ``siibrad serve``)."""

    limits: Limits = field(default_factory=Limits)
    workers: int = 2
    shutdown_grace_s: float = 5.0


def hard_frame_limit(limits: Limits) -> int:
    """ZMQ_MAXMSGSIZE: frames past it cost the sender its connection, unread.

    Twice the announced limit (plus 1 MiB), so that moderately oversized requests still get a
    proper PayloadTooLarge reply while absurd ones cannot make the daemon allocate them.
    """
    return limits.max_request_bytes * 2 + 1024**2


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Daemon:
    """One running siibrad: catalogue, dispatcher, zmq server, lifecycle."""

    def __init__(self, settings: Settings, options: ServeOptions | None = None) -> None:
        self.settings = settings
        self.options = options or ServeOptions()
        self.runtime_dir = resolve_runtime_dir(settings.runtime_dir)
        self._instance_id = uuid.uuid4().hex
        self.started_at = datetime.now(UTC)
        self._started_s = time.monotonic()
        self._log = structlog.get_logger("siibrad.daemon")
        self._lock = DaemonLock(self.runtime_dir)
        self._stop_reason: str | None = None
        self._signals = 0
        self.catalog: Catalog | None = None
        self.server: ZmqServer | None = None
        self.dispatcher: Dispatcher | None = None

    @property
    def instance_id(self) -> str:
        return self._instance_id

    # --- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Lock, load, bind, publish. Raises on any failure (nothing is left published)."""
        ensure_runtime_dir(self.runtime_dir)
        self._endpoint = zmq_endpoint(self.runtime_dir)  # fail before the slow catalogue load
        self._lock.acquire()
        try:
            self._start_locked()
        except BaseException:
            self._lock.release()
            raise

    def _start_locked(self) -> None:
        t0 = time.monotonic()
        self.catalog = Catalog.load(
            self.settings.configuration, self.settings.extensions, self.settings
        )
        catalog = self.catalog
        settings = self.settings
        services: dict[str, Any] = {}

        def make_context(scope: RequestScope) -> MethodContext:
            return MethodContext(catalog, settings, self, scope, services)

        self._executor = ThreadPoolExecutor(
            max_workers=self.options.workers, thread_name_prefix="siibrad-worker"
        )
        self.dispatcher = Dispatcher(
            load_methods(),
            context_factory=make_context,
            executor=self._executor,
            post=lambda key, frames, on_loop: server.post(key, frames, on_loop),  # noqa: PLW0108 (server is bound below)
            limits=self.options.limits,
            instance_id=self._instance_id,
        )
        server = self.server = ZmqServer(
            self._endpoint,
            self.dispatcher,
            hard_max_frame_bytes=hard_frame_limit(self.options.limits),
        )
        server.bind()
        write_connection_file(self.runtime_dir, self.connection_info())
        self._log.info(
            "ready",
            pid=os.getpid(),
            endpoint=self.server.endpoint,
            runtime_dir=str(self.runtime_dir),
            instance_id=self._instance_id,
            startup_s=round(time.monotonic() - t0, 3),
            methods=len(self.dispatcher.method_names()),
        )

    def connection_info(self) -> ConnectionInfo:
        assert self.server is not None and self.catalog is not None
        return ConnectionInfo(
            pid=os.getpid(),
            instance_id=self._instance_id,
            protocol_version=PROTOCOL_VERSION,
            version=__version__,
            endpoints={"zmq": self.server.endpoint},
            started_at=self.started_at.isoformat(timespec="seconds"),
            configuration=self.catalog.source.spec,
        )

    # --- serve ------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT begin a graceful stop; a second one cancels in-flight work at once."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.request_shutdown(signal.Signals(signum).name)

    def request_shutdown(self, reason: str) -> None:
        """Begin a graceful stop (safe from handlers and signal handlers)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self.dispatcher is not None:
            # At once, not at the loop's next turn: requests already queued behind
            # daemon/shutdown on the socket must get ShuttingDown too.
            self.dispatcher.begin_shutdown()
        if self.server is not None:
            self.server.wake()

    def serve(self) -> int:
        """Serve until stopped; then clean up. Returns the process exit status."""
        assert self.server is not None and self.dispatcher is not None
        self._grace_deadline: float | None = None
        self._cancel_deadline: float | None = None
        try:
            self.server.serve(self._keep_running)
        finally:
            self._cleanup()
        return 0

    def _keep_running(self) -> bool:
        dispatcher = self.dispatcher
        assert dispatcher is not None
        now = time.monotonic()
        if self._stop_reason is None:
            idle_s = self.settings.idle_timeout_s
            if idle_s <= 0 or dispatcher.in_flight or now - dispatcher.last_activity_s < idle_s:
                return True
            self._stop_reason = "idle"
        if self._grace_deadline is None:
            dispatcher.begin_shutdown()
            self._grace_deadline = now + self.options.shutdown_grace_s
            self._log.info("stopping", reason=self._stop_reason, in_flight=dispatcher.in_flight)
        if not dispatcher.in_flight:
            return False
        assert self._grace_deadline is not None
        if self._cancel_deadline is None and (now >= self._grace_deadline or self._signals > 1):
            self._log.warning("cancelling in-flight requests", in_flight=dispatcher.in_flight)
            dispatcher.cancel_all()
            self._cancel_deadline = now + FORCE_EXIT_AFTER_CANCEL_S
        return self._cancel_deadline is None or now < self._cancel_deadline

    def _cleanup(self) -> None:
        assert self.server is not None and self.dispatcher is not None
        stuck = self.dispatcher.in_flight
        self.server.close()
        remove_connection_file(self.runtime_dir, self._instance_id)
        self._lock.release()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._log.info(
            "stopped",
            reason=self._stop_reason,
            requests=self.dispatcher.requests_served,
            abandoned=stuck,
        )
        if stuck:
            # A handler ignored cancellation; do not let its thread keep the process alive.
            sys.stderr.flush()
            os._exit(0)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The ``daemon/status`` result."""
        assert self.catalog is not None and self.dispatcher is not None
        assert self.server is not None
        dispatcher = self.dispatcher
        source = self.catalog.source
        sessions = list(dispatcher.sessions.values())
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "instance_id": self._instance_id,
            "pid": os.getpid(),
            "python": platform.python_version(),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "uptime_s": round(time.monotonic() - self._started_s, 3),
            "runtime_dir": str(self.runtime_dir),
            "endpoints": {"zmq": self.server.endpoint},
            "configuration": {
                "spec": source.spec,
                "kind": source.kind,
                "tag": source.tag,
                "digest": source.digest,
                "root": str(source.root),
                "extensions": list(self.settings.extensions),
            },
            "catalog": {
                **self.catalog.counts(),
                "problems": [p.to_dict() for p in self.catalog.problems],
            },
            "memory": {"rss_bytes": _rss_bytes(), "peak_rss_bytes": peak_kib * 1024},
            "clients": {
                "connected": len(sessions),
                "initialized": sum(1 for s in sessions if s.initialized),
            },
            "requests": {
                "served": dispatcher.requests_served,
                "errors": dispatcher.errors_returned,
                "in_flight": dispatcher.in_flight,
                "replies_dropped": self.server.replies_dropped,
            },
            "limits": dispatcher.limits.to_wire(),
            "workers": self.options.workers,
            "idle_timeout_s": self.settings.idle_timeout_s,
            "shutting_down": dispatcher.shutting_down,
        }


def run_daemon(settings: Settings, options: ServeOptions | None = None) -> int:
    """Start and serve in the foreground (what ``siibrad serve`` runs)."""
    daemon = Daemon(settings, options)
    daemon.install_signal_handlers()
    daemon.start()
    return daemon.serve()
