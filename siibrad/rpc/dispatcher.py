"""The dispatcher: one message in, replies out; the only place exceptions become wire errors.

Contract: :meth:`Dispatcher.handle` is called on the socket thread with a session and the
frames of one message (envelope + buffers). It returns the reply frames to send at once, or
``None`` when nothing is due now (notifications, or work handed to the pool). Pool work calls
the transport's ``post(key, frames, on_loop)`` from a worker thread; the transport runs
``on_loop`` on the socket thread (the only thread that touches sessions) and sends the frames.

Semantics (protocol/PROTOCOL.md): JSON-RPC 2.0 with batches and notifications; ``initialize``
per connection before anything but ``daemon/ping``; ``$/cancelRequest``; ``$/progress`` for
requests carrying ``work_done_token``; Busy past the per-client in-flight limit; ShuttingDown
once shutdown began. Every request is logged once (method, client, duration, outcome).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import structlog

from siibrad import PROTOCOL_VERSION, __version__
from siibrad.errors import (
    Busy,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    PayloadTooLarge,
    ProtocolVersionMismatch,
    RequestCancelled,
    ServerNotInitialized,
    ShuttingDown,
    SiibradError,
)
from siibrad.rpc.batch import BatchCollector, Post
from siibrad.rpc.codec import (
    Encoding,
    Frame,
    decode_arrays,
    decode_envelope,
    detect_encoding,
    encode_envelope,
    has_array_descriptors,
)
from siibrad.rpc.messages import (
    Request,
    RequestId,
    best_effort_id,
    error_message,
    parse_request,
    result_message,
)
from siibrad.rpc.registry import MethodSpec, MethodTable
from siibrad.rpc.session import Job, Limits, RequestScope, Session

ContextFactory = Callable[[RequestScope], Any]
WORK_DONE_TOKEN = "work_done_token"
MAX_SESSIONS = 4096


@dataclass(frozen=True, slots=True)
class ClientInfo:
    name: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class InitializeParams:
    protocol_version: str
    client_info: dict[str, Any] | None = None
    capabilities: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CancelParams:
    id: int | str


def _frame_len(frame: Any) -> int:
    return frame.nbytes if hasattr(frame, "nbytes") else len(frame)


@dataclass(slots=True)
class _Incoming:
    """One received message as the handlers of its items need it."""

    session: Session
    buffers: Sequence[Any]
    with_arrays: bool
    encoding: Encoding
    started_s: float


class Dispatcher:
    """Routes decoded requests to handlers; owns sessions, in-flight jobs and counters."""

    def __init__(
        self,
        table: MethodTable,
        *,
        context_factory: ContextFactory,
        executor: Executor,
        post: Post,
        limits: Limits | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.table = table
        self.limits = limits or Limits()
        self.instance_id = instance_id or uuid.uuid4().hex
        self.sessions: dict[bytes, Session] = {}
        self.shutting_down = False
        self.requests_served = 0
        self.errors_returned = 0
        self.last_activity_s = time.monotonic()
        self._context_factory = context_factory
        self._executor = executor
        self._post = post
        self._queued_total = 0
        self._log = structlog.get_logger("siibrad.rpc")
        self._register_builtins()

    # --- builtins ---------------------------------------------------------------------------

    def _register_builtins(self) -> None:
        # Per dispatcher (not on the shared table): they answer with this instance's state.
        self._builtins = MethodTable()
        register = self._builtins.register
        register("initialize", before_initialize=True, builtin=True)(self._initialize)
        register("$/cancelRequest", before_initialize=True, builtin=True)(self._cancel_request)

    def spec(self, name: str) -> MethodSpec | None:
        """The method called ``name`` (protocol builtins first)."""
        return self._builtins.get(name) or self.table.get(name)

    def method_names(self) -> list[str]:
        """Every request method this dispatcher answers (what ``initialize`` announces)."""
        names = set(self.table.names()) | set(self._builtins.names())
        return sorted(n for n in names if not n.startswith("$/"))

    def _initialize(self, scope: RequestScope, params: InitializeParams) -> dict[str, Any]:
        """Open a session: check the protocol version, announce methods and limits."""
        client_major = params.protocol_version.split(".", 1)[0]
        if not client_major.isdigit():
            raise InvalidParams(
                "protocol_version must look like '1.0.0'",
                fields=[{"field": "protocol_version", "problem": "not MAJOR.MINOR.PATCH"}],
            )
        if client_major != PROTOCOL_VERSION.split(".", 1)[0]:
            raise ProtocolVersionMismatch(
                f"client speaks protocol {params.protocol_version}, this daemon speaks "
                f"{PROTOCOL_VERSION}; upgrade the older side, or stop this daemon (siibrad stop) "
                "and let the client start its own",
                server_version=PROTOCOL_VERSION,
                client_version=params.protocol_version,
            )
        scope.session.initialized = True
        scope.session.client_info = dict(params.client_info or {})
        name = scope.session.client_info.get("name")
        if isinstance(name, str) and name:
            scope.session.label = f"{name[:40]}:{scope.session.key.hex()}"
        return {
            "protocol_version": PROTOCOL_VERSION,
            "server_info": {"name": "siibrad", "version": __version__},
            "instance_id": self.instance_id,
            "capabilities": {
                "methods": self.method_names(),
                "notifications": ["$/cancelRequest", "$/progress"],
                "encodings": ["msgpack", "json"],
                "ndarray_frames": True,
            },
            "limits": self.limits.to_wire(),
        }

    def _cancel_request(self, scope: RequestScope, params: CancelParams) -> None:
        """Cancel a queued request now, or ask a running one to stop at its next check."""
        job = scope.session.in_flight.get(params.id)
        if job is not None:
            self._cancel_job(job)

    def _cancel_job(self, job: Job) -> None:
        job.cancel_event.set()
        if job.future is not None and job.future.cancel():
            # Never started: answer for it here, the worker will not.
            error = RequestCancelled(f"request {job.id!r} cancelled before it started", id=job.id)
            job.finish(error_message(job.id, error))

    # --- lifecycle --------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """From now on every new request gets ShuttingDown; in-flight work may finish."""
        self.shutting_down = True

    def cancel_all(self) -> None:
        """Cancel every queued and (cooperatively) every running request."""
        for session in list(self.sessions.values()):
            for job in list(session.in_flight.values()):
                self._cancel_job(job)

    @property
    def in_flight(self) -> int:
        return sum(len(s.in_flight) for s in self.sessions.values())

    def session(self, key: bytes) -> Session:
        """The session of a connection, created on first contact."""
        session = self.sessions.get(key)
        if session is None:
            if len(self.sessions) >= MAX_SESSIONS:
                self._evict_idle_sessions()
            session = self.sessions[key] = Session(key=key, label=key.hex())
        return session

    def forget(self, key: bytes) -> None:
        """Drop the session of a client that went away (unless it still has work running)."""
        session = self.sessions.get(key)
        if session is not None and not session.in_flight:
            del self.sessions[key]

    def _evict_idle_sessions(self) -> None:
        idle = sorted(
            (s for s in self.sessions.values() if not s.in_flight), key=lambda s: s.last_seen_s
        )
        for session in idle[: max(1, len(idle) // 4)]:
            del self.sessions[session.key]

    # --- messages ---------------------------------------------------------------------------

    def handle(self, session: Session, frames: Sequence[Any]) -> list[Frame] | None:
        """Process one message; the frames to send back now, or None."""
        now = time.monotonic()
        session.last_seen_s = self.last_activity_s = now
        head = bytes(frames[0]) if not isinstance(frames[0], bytes) else frames[0]
        buffers = frames[1:]
        encoding = detect_encoding(head)
        size_bytes = sum(_frame_len(f) for f in frames)
        if size_bytes > self.limits.max_request_bytes:
            error = PayloadTooLarge(
                f"request of {size_bytes} bytes exceeds max_request_bytes="
                f"{self.limits.max_request_bytes}",
                limit="max_request_bytes",
                size_bytes=size_bytes,
                max_bytes=self.limits.max_request_bytes,
            )
            self._log_outcome(session, "?", None, now, error)
            return encode_envelope(error_message(None, error), encoding)
        try:
            envelope = decode_envelope(head, encoding)
        except SiibradError as error:
            self._log_outcome(session, "?", None, now, error)
            return encode_envelope(error_message(None, error), encoding)
        msg = _Incoming(session, buffers, has_array_descriptors(head, len(buffers)), encoding, now)
        if isinstance(envelope, list):
            return self._handle_batch(msg, envelope)
        reply = self._handle_one(msg, envelope, None)
        return None if reply is None else encode_envelope(reply, encoding)

    def _handle_batch(self, msg: _Incoming, batch: list[Any]) -> list[Frame] | None:
        session, encoding = msg.session, msg.encoding
        if not batch:
            error: SiibradError = InvalidRequest("an empty batch is not a request")
        elif len(batch) > self.limits.max_batch_size:
            error = PayloadTooLarge(
                f"batch of {len(batch)} exceeds max_batch_size={self.limits.max_batch_size}",
                limit="max_batch_size",
                size=len(batch),
            )
        else:
            collector = BatchCollector(self._post, session, encoding)
            for envelope in batch:
                reply = self._handle_one(msg, envelope, collector)
                if reply is not None:
                    collector.replies.append(reply)
            return collector.close()
        self._log_outcome(session, "batch", None, msg.started_s, error)
        return encode_envelope(error_message(None, error), encoding)

    def _handle_one(
        self, msg: _Incoming, envelope: Any, collector: BatchCollector | None
    ) -> dict[str, Any] | None:
        session, now = msg.session, msg.started_s
        method = "?"
        request: Request | None = None
        try:
            request = parse_request(envelope)
            method = request.method
            spec = self._builtins.get(method) or self.table.get(method)
            if spec is None:
                raise MethodNotFound(f"no method {method!r}", method=method)
            if self.shutting_down and not spec.builtin:
                raise ShuttingDown("the daemon is shutting down; start a new one and retry")
            if not session.initialized and not spec.before_initialize:
                raise ServerNotInitialized(
                    f"{method} needs initialize first on this connection", method=method
                )
            params = request.params
            token = params.pop(WORK_DONE_TOKEN, None) if WORK_DONE_TOKEN in params else None
            if token is not None and not isinstance(token, (int, str)):
                raise InvalidParams(
                    "work_done_token must be a string or an integer",
                    fields=[{"field": WORK_DONE_TOKEN, "problem": "must be a string or integer"}],
                )
            if msg.with_arrays:
                params = decode_arrays(params, msg.buffers)
            built = spec.build_params(params)
            scope = RequestScope(session, request.id, method, msg.encoding, None, token, None)
            ctx = scope if spec.builtin else self._context_factory(scope)
            if spec.heavy and not request.is_notification and not _cheap(spec, ctx, built):
                self._submit(msg, spec, request, built, token=token, collector=collector)
                return None
            result = spec.handler(ctx, built)
        except Exception as exc:
            failure = exc if isinstance(exc, SiibradError) else self._internal_error(method, exc)
            self._log_outcome(session, method, request, now, failure)
            if request is not None and request.is_notification:
                return None
            return error_message(best_effort_id(envelope), failure)
        self._log_outcome(session, method, request, now, None)
        if request.is_notification:
            return None
        return result_message(request.id, result)

    def _submit(
        self,
        msg: _Incoming,
        spec: MethodSpec,
        request: Request,
        params: Any,
        *,
        token: int | str | None,
        collector: BatchCollector | None,
    ) -> None:
        session, encoding = msg.session, msg.encoding
        if request.id in session.in_flight:
            raise InvalidRequest(f"request id {request.id!r} is already in flight", id=request.id)
        if len(session.in_flight) >= self.limits.max_in_flight_per_client:
            raise Busy(
                f"{len(session.in_flight)} requests already in flight on this connection",
                limit=self.limits.max_in_flight_per_client,
            )
        if self._queued_total >= self.limits.max_queued_total:
            raise Busy("the daemon's work queue is full", limit=self.limits.max_queued_total)
        key = session.key
        rid = request.id

        def on_loop() -> None:
            session.in_flight.pop(rid, None)
            self._queued_total -= 1

        def finish(message: dict[str, Any]) -> None:
            if collector is not None:
                collector.add(message, on_loop)
            else:
                self._post(key, encode_envelope(message, encoding), on_loop)

        def notify(message: dict[str, Any]) -> None:
            self._post(key, encode_envelope(message, encoding), None)

        job = Job(rid, spec.name, threading.Event(), msg.started_s, finish)
        scope = RequestScope(session, rid, spec.name, encoding, job.cancel_event, token, notify)
        session.in_flight[rid] = job
        self._queued_total += 1
        if collector is not None:
            collector.pending += 1
        job.future = self._executor.submit(self._run_job, spec, scope, params, job)

    def _run_job(self, spec: MethodSpec, scope: RequestScope, params: Any, job: Job) -> None:
        """Worker-thread body: run the handler, answer through ``job.finish``."""
        error: SiibradError | None = None
        try:
            scope.check_cancelled()
            ctx = scope if spec.builtin else self._context_factory(scope)
            message = result_message(job.id, spec.handler(ctx, params))
        except SiibradError as exc:
            error = exc
            message = error_message(job.id, exc)
        except Exception as exc:
            error = self._internal_error(spec.name, exc)
            message = error_message(job.id, error)
        self._log_outcome(scope.session, spec.name, job.id, job.started_s, error)
        try:
            job.finish(message)
        except Exception as exc:  # e.g. a result that cannot be serialised
            error = self._internal_error(spec.name, exc)
            job.finish(error_message(job.id, error))

    # --- outcomes ---------------------------------------------------------------------------

    def _internal_error(self, method: str, exc: BaseException) -> InternalError:
        incident = uuid.uuid4().hex[:12]
        self._log.error("handler failed", method=method, incident=incident, exc_info=exc)
        return InternalError(
            f"internal error in {method} (incident {incident}; see the daemon log)",
            incident=incident,
        )

    def _log_outcome(
        self,
        session: Session,
        method: str,
        request: Request | RequestId,
        started_s: float,
        error: SiibradError | None,
    ) -> None:
        # Counters are only approximately thread-safe (+= under the GIL): good enough for status.
        self.requests_served += 1
        session.requests += 1
        rid = request.id if isinstance(request, Request) else request
        if error is None:
            outcome = "ok"
        else:
            self.errors_returned += 1
            outcome = error.type
        self._log.info(
            "request",
            method=method,
            id=rid,
            client=session.label,
            duration_ms=round((time.monotonic() - started_s) * 1000, 3),
            outcome=outcome,
        )


def _cheap(spec: MethodSpec, ctx: Any, params: Any) -> bool:
    """Whether a heavy method's call may run inline: its ``inline_if`` says so, and never raises."""
    if spec.inline_if is None:
        return False
    try:
        return bool(spec.inline_if(ctx, params))
    except Exception:  # a failing check only means "use the worker pool"
        return False
