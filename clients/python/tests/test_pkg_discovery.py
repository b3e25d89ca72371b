"""Discovery: runtime dir rules, connection file, liveness probe, and auto-start under a lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from siibrad_client import Client, DaemonStartError, DaemonUnavailableError
from siibrad_client.discovery import (
    ensure_private_dir,
    find_executable,
    probe,
    read_connection_file,
    runtime_dir,
)

TESTS = Path(__file__).resolve().parent

# A stand-in `siibrad` program: `serve` records the start in starts.log, then serves the fake
# daemon in the foreground until SIGTERM (the client runs it in its own session).
FAKE_SIIBRAD = """\
#!{python}
import os, signal, sys, threading, time
from pathlib import Path
sys.path.insert(0, {tests!r})
args = sys.argv[1:]
directory = args[args.index("--runtime-dir") + 1]
if os.environ.get("FAKE_SIIBRAD_FAIL"):
    print("configuration unreadable: broken.json", file=sys.stderr)
    sys.exit(3)
with open(os.path.join(directory, "starts.log"), "a") as log:
    log.write(" ".join(args) + "\\n")
time.sleep(0.3)  # widen the window in which racing clients overlap
from fake_siibrad_daemon import FakeDaemon
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
daemon = FakeDaemon(Path(directory))
stop.wait(120)
daemon.stop()
"""


@pytest.fixture
def fake_siibrad(client_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SIIBRAD_EXECUTABLE points at the stand-in program; its daemon is stopped afterwards."""
    program = client_env.parent / f"{client_env.name}-siibrad"
    program.write_text(FAKE_SIIBRAD.format(python=sys.executable, tests=str(TESTS)))
    program.chmod(0o755)
    monkeypatch.setenv("SIIBRAD_EXECUTABLE", str(program))
    monkeypatch.setenv("SIIBRAD_AUTOSTART", "1")
    yield program
    info = read_connection_file(client_env)
    if info is not None and info.pid:
        os.kill(info.pid, signal.SIGTERM)
    program.unlink()


def test_runtime_dir_rules(tmp_path: Path) -> None:
    """SIIBRAD_RUNTIME_DIR, then XDG_RUNTIME_DIR/siibrad, then a per-uid temp dir."""
    assert runtime_dir({"SIIBRAD_RUNTIME_DIR": "/a", "XDG_RUNTIME_DIR": "/b"}) == Path("/a")
    assert runtime_dir({"XDG_RUNTIME_DIR": "/b"}) == Path("/b/siibrad")
    assert runtime_dir({}).name == f"siibrad-{os.getuid()}"


def test_private_dir_is_created_0700_and_loose_ones_refused(tmp_path: Path) -> None:
    """A new runtime dir is 0700; a group-writable one or a symlink is refused."""
    fresh = ensure_private_dir(tmp_path / "fresh")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o775)
    with pytest.raises(DaemonUnavailableError, match="chmod 700"):
        ensure_private_dir(loose)
    link = tmp_path / "link"
    link.symlink_to(fresh)
    with pytest.raises(DaemonUnavailableError, match="symlink"):
        ensure_private_dir(link)


def test_connection_file_absent_or_garbled_reads_as_none(tmp_path: Path) -> None:
    """A missing, half-written or endpoint-less daemon.json means no daemon."""
    assert read_connection_file(tmp_path) is None
    (tmp_path / "daemon.json").write_text('{"pid": 1, "endp')
    assert read_connection_file(tmp_path) is None
    (tmp_path / "daemon.json").write_text('{"pid": 1}')
    assert read_connection_file(tmp_path) is None
    (tmp_path / "daemon.json").write_text(json.dumps({"pid": 7, "endpoints": {"zmq": "ipc://x"}}))
    info = read_connection_file(tmp_path)
    assert info is not None and info.pid == 7 and info.zmq_endpoint == "ipc://x"


def test_probe_tells_a_listening_socket_from_a_stale_file(client_env: Path) -> None:
    """A socket file nobody listens on is dead; a listening one is worth a round trip."""
    path = client_env / "p.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    assert probe(f"ipc://{path}")
    server.close()  # the file stays behind, like after kill -9
    assert path.exists() and not probe(f"ipc://{path}")
    assert not probe(f"ipc://{client_env}/missing.sock")


def test_find_executable_order(tmp_path: Path) -> None:
    """SIIBRAD_EXECUTABLE wins; else the siibrad beside this Python; else PATH; else an error."""
    assert find_executable({"SIIBRAD_EXECUTABLE": "/opt/x/siibrad"}) == "/opt/x/siibrad"
    beside = Path(sys.executable).parent / "siibrad"
    if beside.is_file():
        assert find_executable({"PATH": ""}) == str(beside)
    else:
        on_path = tmp_path / "siibrad"
        on_path.write_text("#!/bin/sh\n")
        on_path.chmod(0o755)
        assert find_executable({"PATH": str(tmp_path)}) == str(on_path)
        with pytest.raises(DaemonStartError, match="SIIBRAD_EXECUTABLE"):
            find_executable({"PATH": ""})


def test_autostart_starts_once_and_connects(fake_siibrad: Path, client_env: Path) -> None:
    """No daemon: the client runs `siibrad serve --detach` with an idle timeout, then connects."""
    with Client(configuration="/data/conf") as client:
        assert client.started_daemon
        assert client.call("test/echo", {"x": 1}) == {"x": 1}
    starts = (client_env / "starts.log").read_text().splitlines()
    assert len(starts) == 1
    assert starts[0].startswith("serve --runtime-dir") and "--idle-timeout 3600" in starts[0]
    assert "--configuration /data/conf" in starts[0]
    with Client() as again:  # the second client finds the running daemon
        assert not again.started_daemon
    assert len((client_env / "starts.log").read_text().splitlines()) == 1


def test_three_racing_processes_start_one_daemon(fake_siibrad: Path, client_env: Path) -> None:
    """Three processes auto-starting at once: exactly one start, one shared instance."""
    code = (
        "from siibrad_client import Client\n"
        "c = Client(connect_timeout_s=20)\n"
        "print(c.instance_id, c.started_daemon)\n"
        "c.close()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({out[0] for out in outputs}) == 1
    assert sorted(out[1] for out in outputs) == ["False", "False", "True"]
    assert len((client_env / "starts.log").read_text().splitlines()) == 1


def test_failed_start_names_the_log(
    fake_siibrad: Path, client_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When serve --detach fails, the error quotes it and names the daemon log."""
    monkeypatch.setenv("FAKE_SIIBRAD_FAIL", "1")
    with pytest.raises(DaemonStartError) as caught:
        Client()
    message = str(caught.value)
    assert "configuration unreadable: broken.json" in message
    assert str(client_env / "daemon.log") in message and "status 3" in message


def test_missing_program_is_explained(client_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIIBRAD_EXECUTABLE that does not exist gives a DaemonStartError naming it."""
    monkeypatch.setenv("SIIBRAD_AUTOSTART", "1")
    monkeypatch.setenv("SIIBRAD_EXECUTABLE", "/nonexistent/siibrad")
    with pytest.raises(DaemonStartError, match="/nonexistent/siibrad"):
        Client()


def test_import_loads_neither_zmq_nor_numpy() -> None:
    """`import siibrad_client` stays cheap: zmq and numpy load on first use only."""
    code = textwrap.dedent(
        """
        import sys, siibrad_client
        print(sorted(m for m in ("zmq", "numpy") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
