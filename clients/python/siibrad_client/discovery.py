"""Finding the user's daemon, probing it, and starting it when it is not there.

Order (protocol/PROTOCOL.md, "Discovery"): an explicit endpoint or ``SIIBRAD_ENDPOINT``; else the
connection file ``<runtime dir>/daemon.json``; else auto-start ``siibrad serve`` (in its own
session, like ``--detach``) while holding ``<runtime dir>/start.lock`` (``flock``, the lock of
``siibrad serve --detach`` and ``siibrad call`` too), so that of several clients racing, exactly
one starts the daemon and the others find it when the lock is theirs. Liveness is never a pid check
(a killed daemon can linger as a zombie): a connect probe on the socket here, then a round trip
in :mod:`siibrad_client.client`.

The runtime dir is ``$SIIBRAD_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/siibrad``, else
``<tempdir>/siibrad-<uid>``: the same rule as the daemon's. It must be a real directory owned
by the user and private to it (no group or other permissions); the client refuses anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DaemonStartError, DaemonUnavailableError

CONNECTION_FILE = "daemon.json"
START_LOCK = "start.lock"
DAEMON_LOG = "daemon.log"


@dataclass(frozen=True, slots=True)
class Located:
    """Where the daemon answers, its connection file, and whether we just started it."""

    endpoint: str
    info: ConnectionInfo
    started: bool


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """The daemon's connection file as the client reads it."""

    path: Path
    endpoints: Mapping[str, str]
    pid: int | None = None
    instance_id: str | None = None
    protocol_version: str | None = None
    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def zmq_endpoint(self) -> str | None:
        """The ``endpoints.zmq`` entry, or None when the daemon publishes no zmq endpoint."""
        return self.endpoints.get("zmq")


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user runtime dir the daemon uses (not created, not checked)."""
    env = os.environ if env is None else env
    if env.get("SIIBRAD_RUNTIME_DIR"):
        return Path(env["SIIBRAD_RUNTIME_DIR"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "siibrad"
    import tempfile  # noqa: PLC0415 (rarely needed; kept off the import path)

    return Path(tempfile.gettempdir()) / f"siibrad-{os.getuid()}"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700 if needed; refuse a symlink, a foreign owner, loose mode."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise DaemonUnavailableError(
            f"runtime dir {path} is a symlink or not a directory; refusing to use it",
            runtime_dir=str(path),
        )
    if st.st_uid != os.getuid():
        raise DaemonUnavailableError(
            f"runtime dir {path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()})",
            runtime_dir=str(path),
        )
    if st.st_mode & 0o077:
        raise DaemonUnavailableError(
            f"runtime dir {path} is open to group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); run  chmod 700 {path}",
            runtime_dir=str(path),
        )
    return path


def read_connection_file(directory: Path) -> ConnectionInfo | None:
    """The connection file in ``directory``, or None when absent or half-written."""
    path = directory / CONNECTION_FILE
    try:
        raw = json.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("endpoints"), dict):
        return None
    pid = raw.get("pid")
    return ConnectionInfo(
        path=path,
        endpoints={str(k): str(v) for k, v in raw["endpoints"].items()},
        pid=pid if isinstance(pid, int) else None,
        instance_id=raw.get("instance_id"),
        protocol_version=raw.get("protocol_version"),
        version=raw.get("version"),
        raw=raw,
    )


def probe(endpoint: str, timeout_s: float = 1.0) -> bool:
    """True when something accepts a connection at ``endpoint`` (ipc:// or tcp://).

    A refused connect is definite (no daemon); True only means a round trip is worth trying.
    """
    if endpoint.startswith("ipc://"):
        family, address = socket.AF_UNIX, endpoint[len("ipc://") :]
    elif endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://") :].rpartition(":")
        family, address = socket.AF_INET, (host.strip("[]"), int(port))  # type: ignore[assignment]
    else:
        return True  # an unknown transport: let the round trip decide
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(address)
        except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError, PermissionError):
            return False
        except OSError:  # a timeout or a full backlog: something is there, maybe busy
            return True
    return True


def find_executable(env: Mapping[str, str] | None = None) -> str:
    """The ``siibrad`` program: $SIIBRAD_EXECUTABLE, else beside sys.executable, else on PATH."""
    env = os.environ if env is None else env
    if env.get("SIIBRAD_EXECUTABLE"):
        return env["SIIBRAD_EXECUTABLE"]
    beside = Path(sys.executable).parent / "siibrad"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    import shutil  # noqa: PLC0415 (only needed to start a daemon)

    found = shutil.which("siibrad", path=env.get("PATH"))
    if found is None:
        raise DaemonStartError(
            "cannot auto-start the daemon: no `siibrad` program beside "
            f"{sys.executable} or on PATH; install siibrad or set SIIBRAD_EXECUTABLE",
        )
    return found


@contextlib.contextmanager
def start_lock(directory: Path, timeout_s: float) -> Iterator[None]:
    """Hold ``<directory>/start.lock`` exclusively (bounded wait; released on process death)."""
    fd = os.open(directory / START_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DaemonStartError(
                        f"another process has held {directory / START_LOCK} for "
                        f"{timeout_s:.0f} s while starting the daemon",
                        runtime_dir=str(directory),
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _log_tail(path: Path, offset: int, limit_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text[-limit_bytes:].strip()


def start_daemon(
    directory: Path,
    *,
    configuration: str | None = None,
    idle_timeout_s: float | None = None,
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> ConnectionInfo:
    """Spawn ``siibrad serve`` in its own session and return once it accepts connections.

    The caller holds :func:`start_lock`, the lock ``siibrad serve --detach`` and ``siibrad
    call`` take too, so every starter excludes the others. (Running ``serve --detach`` from
    here would wait on that same lock, and cost a second interpreter start-up.) Output goes to
    ``<directory>/daemon.log``; a failure raises DaemonStartError quoting the log's new lines.
    """
    import subprocess  # noqa: PLC0415 (only needed to start a daemon: 10 ms saved per import)

    env = dict(os.environ if env is None else env)
    command = [find_executable(env), "serve", "--runtime-dir", str(directory)]
    if configuration:
        command += ["--configuration", configuration]
    if idle_timeout_s is not None and not env.get("SIIBRAD_IDLE_TIMEOUT_S"):
        command += ["--idle-timeout", f"{idle_timeout_s:g}"]
    log_path = directory / DAEMON_LOG
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    log_start = os.lseek(log_fd, 0, os.SEEK_END)
    try:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,  # Ctrl-C in the user's terminal must not reach it
            close_fds=True,
        )
    except OSError as exc:
        raise DaemonStartError(
            f"cannot run `{command[0]}`: {exc}", log_path=str(log_path), command=command
        ) from exc
    finally:
        os.close(log_fd)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = process.poll()
        if status is not None:
            said = _log_tail(log_path, log_start)
            raise DaemonStartError(
                f"`{' '.join(command)}` exited with status {status} before it was ready; "
                f"see {log_path}" + (f":\n{said}" if said else ""),
                log_path=str(log_path),
                command=command,
                exit_code=status,
            )
        info = _live(directory)
        if info is not None:
            # The daemon outlives this process; a thread reaps it if it exits first, so it
            # never lingers as a zombie of ours.
            threading.Thread(target=process.wait, name="siibrad-reaper", daemon=True).start()
            return info
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
    raise DaemonStartError(
        f"`{' '.join(command)}` was not ready after {timeout_s:g} s; see {log_path}",
        log_path=str(log_path),
        command=command,
    )


def _live(directory: Path) -> ConnectionInfo | None:
    info = read_connection_file(directory)
    if info is None or info.zmq_endpoint is None or not probe(info.zmq_endpoint):
        return None
    return info


def locate_daemon(
    directory: Path,
    *,
    autostart: bool,
    configuration: str | None = None,
    idle_timeout_s: float | None = None,
    start_timeout_s: float = 60.0,
) -> Located:
    """The daemon of ``directory``: published and accepting connections, or started now.

    The caller still confirms liveness with a round trip (the handshake).
    """
    info = _live(directory)
    if info is not None:
        return Located(info.zmq_endpoint or "", info, started=False)
    if not autostart:
        raise DaemonUnavailableError(
            f"no siibrad daemon is running for {directory}; start one with "
            "`siibrad serve --detach` (or let the client start it: autostart=True)",
            runtime_dir=str(directory),
        )
    ensure_private_dir(directory)
    with start_lock(directory, start_timeout_s):
        info = _live(directory)  # another client may have started it while we waited
        if info is not None:
            return Located(info.zmq_endpoint or "", info, started=False)
        info = start_daemon(
            directory,
            configuration=configuration,
            idle_timeout_s=idle_timeout_s,
            timeout_s=start_timeout_s,
        )
    return Located(info.zmq_endpoint or "", info, started=True)
