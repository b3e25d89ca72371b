"""Runtime dir resolution and safety, the connection file, and the one-daemon lock."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from siibrad.transport.runtime import (
    AlreadyRunningError,
    ConnectionInfo,
    DaemonLock,
    RuntimeDirError,
    ensure_runtime_dir,
    read_connection_file,
    remove_connection_file,
    resolve_runtime_dir,
    write_connection_file,
    zmq_endpoint,
)


def info(instance_id: str = "abc") -> ConnectionInfo:
    return ConnectionInfo(
        pid=os.getpid(),
        instance_id=instance_id,
        protocol_version="1.0.0",
        version="0.1.0",
        endpoints={"zmq": "ipc:///x/zmq.sock"},
        started_at="2026-01-01T00:00:00+00:00",
        configuration="folder",
    )


def test_resolution_order(tmp_path: Path) -> None:
    """Explicit, then SIIBRAD_RUNTIME_DIR, then XDG_RUNTIME_DIR/siibrad, then tmp/siibrad-uid."""
    env = {"SIIBRAD_RUNTIME_DIR": "/a", "XDG_RUNTIME_DIR": "/b"}
    assert resolve_runtime_dir(tmp_path, env) == tmp_path
    assert resolve_runtime_dir(None, env) == Path("/a")
    assert resolve_runtime_dir(None, {"XDG_RUNTIME_DIR": "/b"}) == Path("/b/siibrad")
    assert resolve_runtime_dir(None, {}).name == f"siibrad-{os.geteuid()}"


def test_created_private(tmp_path: Path) -> None:
    """A new runtime dir is created with mode 0700."""
    path = ensure_runtime_dir(tmp_path / "x" / "rt")
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o755, 0o707, 0o701])
def test_open_modes_are_refused(tmp_path: Path, mode: int) -> None:
    """Any group or world permission bit is refused with the chmod fix in the message."""
    path = tmp_path / "rt"
    path.mkdir()
    os.chmod(path, mode)
    with pytest.raises(RuntimeDirError, match="chmod 700"):
        ensure_runtime_dir(path)


def test_symlinks_and_files_are_refused(tmp_path: Path) -> None:
    """A symlink to a private dir, or a plain file, is not a runtime dir."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(RuntimeDirError, match="symbolic link"):
        ensure_runtime_dir(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(RuntimeDirError, match="not a directory"):
        ensure_runtime_dir(tmp_path / "file")


def test_foreign_owner_is_refused(tmp_path: Path) -> None:
    """A dir owned by another user (chown to nobody, as root) is refused."""
    if os.geteuid() != 0:
        pytest.fail("this test simulates another owner with chown and needs root")
    path = tmp_path / "rt"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(RuntimeDirError, match="not by you"):
        ensure_runtime_dir(path)


def test_too_long_socket_paths_are_explained(tmp_path: Path) -> None:
    """A runtime dir too deep for a unix socket path fails with the limit named."""
    with pytest.raises(RuntimeDirError, match="107"):
        zmq_endpoint(tmp_path / ("d" * 120))
    assert zmq_endpoint(Path("/r")) == "ipc:///r/zmq.sock"


def test_connection_file_round_trip_and_mode(tmp_path: Path) -> None:
    """daemon.json is written 0600, reads back equal, and is removed only by its instance."""
    write_connection_file(tmp_path, info("me"))
    path = tmp_path / "daemon.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_connection_file(tmp_path) == info("me")
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]  # no temp file left
    remove_connection_file(tmp_path, "someone else")
    assert path.exists()
    remove_connection_file(tmp_path, "me")
    assert not path.exists()


def test_broken_connection_files_read_as_absent(tmp_path: Path) -> None:
    """Garbage or a symlinked daemon.json is treated as no daemon."""
    (tmp_path / "daemon.json").write_text("{broken")
    assert read_connection_file(tmp_path) is None
    (tmp_path / "daemon.json").unlink()
    (tmp_path / "elsewhere.json").write_text('{"pid": 1, "endpoints": {}}')
    (tmp_path / "daemon.json").symlink_to(tmp_path / "elsewhere.json")
    assert read_connection_file(tmp_path) is None


def test_one_daemon_per_dir(tmp_path: Path) -> None:
    """The lock is exclusive while held and free again after release."""
    first, second = DaemonLock(tmp_path), DaemonLock(tmp_path)
    first.acquire()
    assert second.is_held_elsewhere()
    with pytest.raises(AlreadyRunningError, match="siibrad stop"):
        second.acquire()
    first.release()
    assert not second.is_held_elsewhere()
    second.acquire()
    second.release()
