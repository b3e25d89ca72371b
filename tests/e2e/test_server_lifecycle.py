"""A real daemon's lifecycle and safety: files and modes, signals, shutdown, idle exit, CLI."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from server_daemons import DaemonProcess, RawClient, daemon_env, siibrad_command

Connect = Callable[[str], RawClient]
RESOLVE = {"parcellation": "julich 3.1", "region": "hoc1 left"}
CLI_TIMEOUT_S = 90


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def run_cli(configuration: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        siibrad_command(*args),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=daemon_env(configuration, tmp / "cache"),
        check=False,
    )


def test_runtime_files_are_private(siibrad_daemon: DaemonProcess) -> None:
    """Runtime dir 0700, socket and daemon.json 0600; daemon.json describes this daemon."""
    assert mode(siibrad_daemon.runtime_dir) == 0o700
    assert mode(siibrad_daemon.socket_path) == 0o600
    connection = siibrad_daemon.runtime_dir / "daemon.json"
    assert mode(connection) == 0o600
    info = json.loads(connection.read_text())
    assert info["pid"] == siibrad_daemon.process.pid
    assert info["protocol_version"] == "1.0.0"
    assert set(info) >= {"instance_id", "version", "endpoints", "started_at", "configuration"}


def test_sigterm_removes_connection_file_and_socket(
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """SIGTERM: exit status 0, daemon.json and zmq.sock gone."""
    daemon = start_daemon()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert not (daemon.runtime_dir / "daemon.json").exists()
    assert not daemon.socket_path.exists()
    assert '"event": "stopped"' in daemon.log()


def test_shutdown_lets_work_finish_and_refuses_new_requests(
    start_daemon: Callable[..., DaemonProcess], raw_client: Connect
) -> None:
    """daemon/shutdown replies; in-flight work finishes; new requests get ShuttingDown."""
    daemon = start_daemon(shutdown_grace=20)
    worker = raw_client(daemon.endpoint)
    worker.initialize()
    worker.send_msgpack(
        {"jsonrpc": "2.0", "id": "w", "method": "daemon/sleep", "params": {"duration_s": 4}}
    )
    time.sleep(0.2)
    other = raw_client(daemon.endpoint)
    assert other.call("daemon/shutdown")["result"]["shutting_down"] is True
    late = other.request("region/resolve", RESOLVE)["error"]
    assert (late["code"], late["data"]["type"]) == (-32020, "ShuttingDown")
    assert worker.recv()["result"]["slept_s"] >= 4.0
    assert daemon.wait_exit() == 0
    assert not (daemon.runtime_dir / "daemon.json").exists()


def test_shutdown_grace_cancels_stuck_work(
    start_daemon: Callable[..., DaemonProcess], raw_client: Connect
) -> None:
    """Work outlasting the grace period is cancelled (RequestCancelled) and the daemon exits."""
    daemon = start_daemon(shutdown_grace=0.5)
    worker = raw_client(daemon.endpoint)
    worker.initialize()
    worker.send_msgpack(
        {"jsonrpc": "2.0", "id": "w", "method": "daemon/sleep", "params": {"duration_s": 60}}
    )
    time.sleep(0.2)
    daemon.process.send_signal(signal.SIGINT)
    assert worker.recv()["error"]["data"]["type"] == "RequestCancelled"
    assert daemon.wait_exit() == 0


def test_idle_exit(start_daemon: Callable[..., DaemonProcess]) -> None:
    """With --idle-timeout the daemon exits by itself after that long without requests."""
    daemon = start_daemon(idle_timeout=1)
    assert daemon.wait_exit(timeout_s=30) == 0
    assert not (daemon.runtime_dir / "daemon.json").exists()
    assert '"reason": "idle"' in daemon.log()


def test_second_daemon_in_the_same_dir_is_refused(
    siibrad_daemon: DaemonProcess, configuration_dir: Path, tmp_path: Path
) -> None:
    """Only one daemon serves a runtime dir; the second says so and exits 2."""
    done = run_cli(
        configuration_dir, tmp_path, "serve", "--runtime-dir", str(siibrad_daemon.runtime_dir)
    )
    assert done.returncode == 2
    assert "already serves" in done.stderr


@pytest.mark.parametrize("problem", ["group-writable", "symlink", "other-owner"])
def test_unsafe_runtime_dirs_are_refused(
    configuration_dir: Path, tmp_path: Path, problem: str
) -> None:
    """A group/world-writable dir, a symlink, or another user's dir: refused with the reason."""
    target = tmp_path / "rt"
    target.mkdir(mode=0o700)
    if problem == "group-writable":
        os.chmod(target, 0o770)
        expected = "chmod 700"
    elif problem == "symlink":
        link = tmp_path / "link"
        link.symlink_to(target)
        target = link
        expected = "symbolic link"
    else:
        if os.geteuid() != 0:
            pytest.fail("simulating another user's dir needs root (chown to nobody)")
        os.chown(target, 65534, 65534)
        expected = "not by you"
    done = run_cli(configuration_dir, tmp_path, "serve", "--runtime-dir", str(target))
    assert done.returncode == 2
    assert expected in done.stderr
    assert not (target / "daemon.json").exists()


def test_cli_call_status_stop(configuration_dir: Path, tmp_path: Path) -> None:
    """call auto-starts and prints JSON; errors go to stderr with exit 1; status; stop."""
    import tempfile

    runtime = Path(tempfile.mkdtemp(prefix="sdc-"))
    rt = ["--runtime-dir", str(runtime)]
    try:
        done = run_cli(
            configuration_dir, tmp_path, "call", *rt, "region/resolve", json.dumps(RESOLVE)
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["name"] == "Area hOc1 (V1, 17, CalcS) left"
        bad = run_cli(
            configuration_dir,
            tmp_path,
            "call",
            *rt,
            "region/resolve",
            '{"parcellation": "julich 3.1", "region": "no such area"}',
        )
        assert bad.returncode == 1 and bad.stdout == ""
        assert bad.stderr.startswith("error RegionNotFoundError (1105)")
        status = run_cli(configuration_dir, tmp_path, "status", *rt, "--json")
        assert status.returncode == 0
        assert json.loads(status.stdout)["requests"]["served"] >= 2
        human = run_cli(configuration_dir, tmp_path, "status", *rt)
        assert "running, pid" in human.stdout
        stopped = run_cli(configuration_dir, tmp_path, "stop", *rt)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not (runtime / "daemon.json").exists()
        gone = run_cli(configuration_dir, tmp_path, "status", *rt)
        assert gone.returncode == 1 and "not running" in gone.stdout
    finally:
        run_cli(configuration_dir, tmp_path, "stop", *rt)


def test_detach_returns_when_ready_or_explains_failure(
    configuration_dir: Path, tmp_path: Path
) -> None:
    """serve --detach returns once the daemon answers; a failing start shows its log, exit 2."""
    import tempfile

    runtime = Path(tempfile.mkdtemp(prefix="sdd-"))
    rt = ["--runtime-dir", str(runtime)]
    try:
        bad = run_cli(
            configuration_dir,
            tmp_path,
            "serve",
            "--detach",
            *rt,
            "--configuration",
            str(tmp_path / "missing"),
        )
        assert bad.returncode == 2
        assert "exited with status 2 before it was ready" in bad.stderr
        assert "does not exist" in bad.stderr
        good = run_cli(configuration_dir, tmp_path, "serve", "--detach", *rt)
        assert good.returncode == 0 and "ready, pid" in good.stdout
        pid = json.loads((runtime / "daemon.json").read_text())["pid"]
        assert str(pid) in good.stdout
        assert run_cli(configuration_dir, tmp_path, "status", *rt).returncode == 0
    finally:
        run_cli(configuration_dir, tmp_path, "stop", *rt)


def test_restart_after_sigkill_reuses_the_runtime_dir(
    start_daemon: Callable[..., DaemonProcess], raw_client: Connect
) -> None:
    """A killed daemon leaves stale files; the next one takes over the dir with a new instance."""
    first = start_daemon()
    first.process.kill()
    first.wait_exit()
    assert (first.runtime_dir / "daemon.json").exists()  # stale, nobody cleaned up
    second = start_daemon(runtime_dir=first.runtime_dir)
    assert second.info["instance_id"] != first.info["instance_id"]
    assert second.info["pid"] == second.process.pid
    client = raw_client(second.endpoint)
    assert client.initialize()["instance_id"] == second.info["instance_id"]
