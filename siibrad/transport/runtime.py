"""The per-user runtime directory, the daemon lock and the connection file ``daemon.json``.

Contract (protocol/PROTOCOL.md, "Discovery"): the runtime dir is ``$SIIBRAD_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/siibrad``, else ``<tempdir>/siibrad-<uid>``. It must be a real directory (not
a symlink) owned by the current user with no group or world permissions; we create it 0700
and refuse anything else with :class:`RuntimeDirError`, because its permissions are the only
thing keeping other local users off the ipc socket. ``daemon.json`` (0600, written to a temp
file and renamed so readers never see half a file) publishes pid, instance_id, versions,
endpoints, start time and configuration. ``daemon.lock`` is held (flock) for the daemon's life,
so two daemons can never serve one directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONNECTION_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"
SOCKET_FILE = "zmq.sock"
LOG_FILE = "daemon.log"


class RuntimeDirError(OSError):
    """The runtime directory is unsafe or unusable; the message says how to fix it."""


class AlreadyRunningError(RuntimeError):
    """Another daemon holds the lock of this runtime directory."""


def resolve_runtime_dir(explicit: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the daemon of this user lives (not created or checked here)."""
    env = os.environ if env is None else env
    if explicit is not None:
        return Path(explicit)
    if env.get("SIIBRAD_RUNTIME_DIR"):
        return Path(env["SIIBRAD_RUNTIME_DIR"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "siibrad"
    return Path(tempfile.gettempdir()) / f"siibrad-{os.geteuid()}"


def check_private_dir(path: Path) -> None:
    """Raise RuntimeDirError unless ``path`` is a real 0700-style directory of this user."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise RuntimeDirError(f"runtime directory {path} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise RuntimeDirError(
            f"runtime directory {path} is a symbolic link; refusing it (another user could "
            "redirect the socket). Remove the link or point SIIBRAD_RUNTIME_DIR elsewhere"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"runtime directory {path} exists but is not a directory")
    if st.st_uid != os.geteuid():
        raise RuntimeDirError(
            f"runtime directory {path} is owned by uid {st.st_uid}, not by you "
            f"(uid {os.geteuid()}); refusing it. Point SIIBRAD_RUNTIME_DIR at a directory of "
            "your own"
        )
    if st.st_mode & 0o077:
        raise RuntimeDirError(
            f"runtime directory {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be "
            f"private to you (0700): run  chmod 700 {path}"
        )


def ensure_runtime_dir(path: Path) -> Path:
    """Create the runtime dir (0700) if needed, then check it; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    check_private_dir(path)
    return path


MAX_IPC_PATH_BYTES = 107
"""``sizeof(sockaddr_un.sun_path)`` minus the NUL on Linux: longer socket paths cannot bind."""


def zmq_endpoint(runtime_dir: Path) -> str:
    """The ipc endpoint in ``runtime_dir``; RuntimeDirError if the path is too long to bind."""
    path = runtime_dir / SOCKET_FILE
    size = len(os.fsencode(path))
    if size > MAX_IPC_PATH_BYTES:
        raise RuntimeDirError(
            f"the socket path {path} is {size} bytes, longer than the {MAX_IPC_PATH_BYTES} a unix "
            "socket allows; point SIIBRAD_RUNTIME_DIR (or --runtime-dir) at a shorter directory"
        )
    return f"ipc://{path}"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """The content of ``daemon.json``."""

    pid: int
    instance_id: str
    protocol_version: str
    version: str
    endpoints: dict[str, str]
    started_at: str
    configuration: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionInfo:
        known = {"pid", "instance_id", "protocol_version", "version", "endpoints"}
        known |= {"started_at", "configuration"}
        endpoints = data.get("endpoints")
        if not isinstance(endpoints, dict) or not isinstance(data.get("pid"), int):
            raise ValueError("daemon.json lacks pid or endpoints")
        return cls(
            pid=int(data["pid"]),
            instance_id=str(data.get("instance_id", "")),
            protocol_version=str(data.get("protocol_version", "")),
            version=str(data.get("version", "")),
            endpoints={str(k): str(v) for k, v in endpoints.items()},
            started_at=str(data.get("started_at", "")),
            configuration=str(data.get("configuration", "")),
            extra={k: v for k, v in data.items() if k not in known},
        )


def write_connection_file(runtime_dir: Path, info: ConnectionInfo) -> Path:
    """Publish ``daemon.json`` atomically with mode 0600."""
    target = runtime_dir / CONNECTION_FILE
    fd, tmp = tempfile.mkstemp(dir=runtime_dir, prefix=".daemon.json.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info.to_json(), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def read_connection_file(runtime_dir: Path) -> ConnectionInfo | None:
    """The published connection info, or None if absent, foreign or unreadable."""
    path = runtime_dir / CONNECTION_FILE
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        return ConnectionInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def remove_connection_file(runtime_dir: Path, instance_id: str) -> None:
    """Remove ``daemon.json`` if it still describes this instance (a successor may own it)."""
    info = read_connection_file(runtime_dir)
    if info is not None and info.instance_id == instance_id:
        with contextlib.suppress(FileNotFoundError):
            (runtime_dir / CONNECTION_FILE).unlink()


class DaemonLock:
    """``flock`` on ``daemon.lock``: held by exactly one live daemon per runtime dir."""

    def __init__(self, runtime_dir: Path) -> None:
        self.path = runtime_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunningError (never blocks)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = read_connection_file(self.path.parent)
            who = f" (pid {info.pid})" if info else ""
            raise AlreadyRunningError(
                f"a siibrad daemon{who} already serves {self.path.parent}; "
                "use `siibrad status` or `siibrad stop`"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        """True while some daemon holds the lock (used to tell live from stale files)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
