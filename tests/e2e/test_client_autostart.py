"""The real client auto-starts the real daemon: once, under a lock, with clear failures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_daemons import daemon_dir
from siibrad_client import Client, DaemonStartError, DaemonUnavailableError


@pytest.fixture
def runtime(configuration_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty runtime dir and the local configuration; its daemon is stopped afterwards."""
    with daemon_dir() as directory:
        monkeypatch.setenv("SIIBRAD_RUNTIME_DIR", str(directory))
        monkeypatch.setenv("SIIBRAD_CONFIGURATION", str(configuration_dir))
        yield directory


def test_autostart_then_reuse(runtime: Path, configuration_dir: Path) -> None:
    """Client() starts the daemon once (with an idle timeout); the next Client() reuses it."""
    with Client() as first:
        assert first.started_daemon
        status = first.status()
        assert status["configuration"]["spec"] == str(configuration_dir)
        assert status["idle_timeout_s"] == 3600
        assert (runtime / "daemon.json").is_file() and (runtime / "daemon.log").is_file()
    with Client() as second:
        assert not second.started_daemon
        assert second.instance_id == first.instance_id
    log = (runtime / "daemon.log").read_text()
    assert log.count("ready") == 1


def test_three_racing_processes_start_exactly_one_daemon(runtime: Path) -> None:
    """Three client processes auto-starting at once share one daemon: one started it."""
    code = (
        "from siibrad_client import Client\n"
        "with Client() as c:\n"
        "    print(c.instance_id, c.started_daemon, c.ping()['pong'])\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    lines = [out.split() for out, _ in results]
    assert len({line[0] for line in lines}) == 1
    assert sorted(line[1] for line in lines) == ["False", "False", "True"]
    assert all(line[2] == "True" for line in lines)
    assert (runtime / "daemon.log").read_text().count("ready") == 1


def test_a_daemon_that_cannot_start_is_explained(
    runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken configuration: DaemonStartError quoting the daemon's log and naming the file."""
    monkeypatch.setenv("SIIBRAD_CONFIGURATION", str(tmp_path / "no-such-configuration"))
    with pytest.raises(DaemonStartError) as caught:
        Client(start_timeout_s=60)
    message = str(caught.value)
    assert str(runtime / "daemon.log") in message
    assert "no-such-configuration" in message
    assert caught.value.log_path == str(runtime / "daemon.log")


def test_autostart_off_reports_how_to_start(runtime: Path) -> None:
    """With SIIBRAD_AUTOSTART=0 and no daemon, the error names `siibrad serve --detach`."""
    with pytest.raises(DaemonUnavailableError, match="siibrad serve --detach"):
        Client(autostart=False)


def test_fresh_process_with_a_running_daemon(runtime: Path) -> None:
    """A new process finds the running daemon through daemon.json and answers at once."""
    with Client() as owner:
        code = "from siibrad_client import Client\nprint(Client(autostart=False).instance_id)\n"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert out.stdout.strip() == owner.instance_id
