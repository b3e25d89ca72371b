"""A real HTTP server on 127.0.0.1 that can misbehave on purpose, for tests that fetch.

Start it as a context manager (or use the ``http_server`` pytest fixture, see below); it
binds a free port and serves from a background thread until closed::

    with LoopbackServer() as server:
        server.add("/a.bin", b"bytes")                   # serve bytes (any path, query kept)
        server.add_file("/x.nii.gz", path)               # serve a file
        server.add_directory("/data-proxy.ebrains.eu", folder)  # a tree under a prefix
        url = server.url + "/a.bin"                      # "http://127.0.0.1:PORT/a.bin"

Faults queue up per path and apply to the next requests, ``times`` of them (``None`` =
every request from now on), before the path behaves normally again:

    server.fail(path, status=500, times=2, retry_after="1", body=b"")  # 5xx / 429 / 404 ...
    server.hang(path, times=None)        # accept, read the request, never answer
    server.reset(path, times=1)          # close the connection without an answer
    server.truncate(path, keep_bytes=10, times=1)  # full Content-Length, fewer bytes, close
    server.wrong(path, b"other bytes", times=None)  # serve other content (right length)
    server.slow(path, chunk_bytes=4096, delay_s=0.05)  # drip the body
    server.redirect(path, "http://localhost:PORT/elsewhere", status=302)

Observation: ``server.requests`` (every request: ``method``, ``path`` with query, ``headers``,
``at`` = time.monotonic()), ``server.hits(path)`` (GETs of a path), ``server.sent_bytes(path)``
(body bytes written so far for a path), ``server.wait_for(predicate, timeout_s)``.
Paths are matched exactly (path plus query), then without the query, then by the longest
``add_directory`` prefix. Unknown paths get 404. ``close()`` releases hung handlers, so a test
never leaves threads blocked behind it.

The pytest fixture: ``from helpers.http_server import http_server`` in a test module (or list
``helpers.http_server`` in ``pytest_plugins``) gives a fresh started server per test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

__all__ = ["LoopbackServer", "Recorded", "http_server"]


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class _Fault:
    kind: str
    times: int | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Content:
    body: bytes | None = None
    file: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def read(self) -> bytes:
        return self.body if self.body is not None else self.file.read_bytes()  # type: ignore[union-attr]


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with scripted faults (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._content: dict[str, _Content] = {}
        self._directories: dict[str, Path] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._sent: dict[str, int] = {}
        self._release = threading.Event()
        self.requests: list[Recorded] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- content ----------------------------------------------------------------------------

    def add(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` at ``path``; returns the full URL."""
        with self._lock:
            self._content[path] = _Content(body=body, headers=dict(headers or {}))
        return self.url + path

    def add_file(self, path: str, file: Path, headers: dict[str, str] | None = None) -> str:
        """Serve the file ``file`` at ``path``; returns the full URL."""
        with self._lock:
            self._content[path] = _Content(file=Path(file), headers=dict(headers or {}))
        return self.url + path

    def add_directory(self, prefix: str, folder: Path) -> str:
        """Serve the files below ``folder`` under the URL path ``prefix``; returns the base URL."""
        with self._lock:
            self._directories[prefix.rstrip("/")] = Path(folder)
        return self.url + prefix.rstrip("/")

    # --- faults -----------------------------------------------------------------------------

    def _queue(self, path: str, fault: _Fault) -> None:
        with self._lock:
            self._faults.setdefault(path, []).append(fault)

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: str | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer ``status`` (with ``Retry-After`` if given) to the next ``times`` requests."""
        self._queue(
            path,
            _Fault("status", times, {"status": status, "retry_after": retry_after, "body": body}),
        )

    def hang(self, path: str, *, times: int | None = None) -> None:
        """Accept and read the request, then never answer (until ``close``)."""
        self._queue(path, _Fault("hang", times))

    def reset(self, path: str, *, times: int | None = 1) -> None:
        """Close the connection without any answer."""
        self._queue(path, _Fault("reset", times))

    def truncate(self, path: str, keep_bytes: int, *, times: int | None = 1) -> None:
        """Announce the full Content-Length, send ``keep_bytes`` of the body, close."""
        self._queue(path, _Fault("truncate", times, {"keep_bytes": keep_bytes}))

    def wrong(self, path: str, body: bytes, *, times: int | None = None) -> None:
        """Serve ``body`` instead of the real content (with a matching Content-Length)."""
        self._queue(path, _Fault("wrong", times, {"body": body}))

    def slow(
        self, path: str, *, chunk_bytes: int = 4096, delay_s: float = 0.05, times: int | None = None
    ) -> None:
        """Send the body in ``chunk_bytes`` pieces with ``delay_s`` pauses."""
        self._queue(path, _Fault("slow", times, {"chunk_bytes": chunk_bytes, "delay_s": delay_s}))

    def redirect(
        self, path: str, location: str, *, status: int = 302, times: int | None = None
    ) -> None:
        """Answer with a redirect to ``location`` (an absolute URL)."""
        self._queue(path, _Fault("redirect", times, {"location": location, "status": status}))

    def clear_faults(self, path: str | None = None) -> None:
        """Forget queued faults (of one path, or all)."""
        with self._lock:
            if path is None:
                self._faults.clear()
            else:
                self._faults.pop(path, None)

    # --- observation ------------------------------------------------------------------------

    def hits(self, path: str) -> int:
        """How many GET requests reached ``path`` (query included if given)."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == "GET" and _same(r.path, path))

    def sent_bytes(self, path: str) -> int:
        """Body bytes written so far for ``path``."""
        with self._lock:
            return sum(n for p, n in self._sent.items() if _same(p, path))

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        """Poll ``predicate`` until true or ``timeout_s`` passes; the last result."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # --- used by the handler ----------------------------------------------------------------

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for key in (path, urlsplit(path).path):
                queue = self._faults.get(key, [])
                while queue:
                    fault = queue[0]
                    if fault.times is None:
                        return fault
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            queue.pop(0)
                        return fault
                    queue.pop(0)
        return None

    def _find(self, path: str) -> _Content | None:
        with self._lock:
            for key in (path, urlsplit(path).path):
                if key in self._content:
                    return self._content[key]
            bare = unquote(urlsplit(path).path)
            for prefix in sorted(self._directories, key=len, reverse=True):
                if bare.startswith(prefix + "/"):
                    rel = bare[len(prefix) + 1 :]
                    query = urlsplit(path).query
                    folder = self._directories[prefix]
                    file = folder / (f"{rel}?{query}" if query else rel)
                    if not file.is_file():
                        file = folder / rel
                    root = folder.resolve()
                    if file.is_file() and file.resolve().is_relative_to(root):
                        return _Content(file=file)
        return None

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self._sent[path] = self._sent.get(path, 0) + n


def _same(recorded: str, wanted: str) -> bool:
    return recorded == wanted or ("?" not in wanted and urlsplit(recorded).path == wanted)


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body at once: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = self.path
            with server._lock:
                server.requests.append(
                    Recorded(self.command, path, dict(self.headers.items()), time.monotonic())
                )
            fault = server._take_fault(path)
            kind = fault.kind if fault else ""
            if kind == "hang":
                server._release.wait()
                self.close_connection = True
                return
            if kind == "reset":
                self.close_connection = True
                return
            if kind == "redirect":
                assert fault is not None
                self.send_response(fault.params["status"])
                self.send_header("Location", fault.params["location"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if kind == "status":
                assert fault is not None
                body = fault.params["body"]
                self.send_response(fault.params["status"])
                if fault.params["retry_after"] is not None:
                    self.send_header("Retry-After", fault.params["retry_after"])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                return
            content = server._find(path)
            if content is None and kind != "wrong":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = fault.params["body"] if kind == "wrong" and fault else content.read()  # type: ignore[union-attr]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            for name, value in (content.headers if content else {}).items():
                self.send_header(name, value)
            self.end_headers()
            if head:
                return
            try:
                if kind == "truncate" and fault:
                    part = body[: fault.params["keep_bytes"]]
                    self.wfile.write(part)
                    self.wfile.flush()
                    server._count(path, len(part))
                    self.close_connection = True
                    return
                if kind == "slow" and fault:
                    step = int(fault.params["chunk_bytes"])
                    for start in range(0, len(body), step):
                        if server._release.is_set():
                            self.close_connection = True
                            return
                        self.wfile.write(body[start : start + step])
                        self.wfile.flush()
                        server._count(path, len(body[start : start + step]))
                        time.sleep(float(fault.params["delay_s"]))
                    return
                self.wfile.write(body)
                server._count(path, len(body))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A started loopback server, closed (hung handlers released) after the test."""
    with LoopbackServer() as server:
        yield server
