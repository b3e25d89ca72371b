"""Every golden transcript in protocol/transcripts/ replays against a real daemon unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from transcript_replay import (
    Replayer,
    load_rules,
    methods_by_id,
    normalise,
    transcript_files,
)

RULES = load_rules()
FILES = transcript_files()


def _start(directory: Path, configuration: Path) -> None:
    siibrad = Path(sys.executable).parent / "siibrad"
    command = [str(siibrad), "serve", "--detach", "--runtime-dir", str(directory)]
    command += ["--configuration", str(configuration), *RULES["daemon_args"]]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _stop(directory: Path) -> None:
    siibrad = Path(sys.executable).parent / "siibrad"
    command = [str(siibrad), "stop", "--runtime-dir", str(directory)]
    subprocess.run(command, capture_output=True, timeout=60, check=False)


@contextmanager
def _daemon(directory: Path, configuration: Path) -> Iterator[dict[str, str]]:
    _start(directory, configuration)
    try:
        yield {
            "endpoint": f"ipc://{directory}/zmq.sock",
            "{runtime_dir}": str(directory),
            "{configuration}": str(configuration),
        }
    finally:
        _stop(directory)


@pytest.fixture(scope="module")
def shared_daemon(
    configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The daemon most transcripts replay against (options from replay.json)."""
    directory = Path(tmp_path_factory.mktemp("g", numbered=True))
    with _daemon(directory, configuration_dir) as where:
        yield where


def _replay(transcript: dict[str, Any], where: dict[str, str]) -> list[tuple[Any, Any]]:
    env = {k: v for k, v in where.items() if k.startswith("{")}
    exchanges = transcript["exchanges"]
    replayer = Replayer(where["endpoint"], transcript["encoding"])
    pairs = []
    try:
        for index, response in replayer.run(exchanges):
            methods = methods_by_id(exchanges[index].get("request"))
            actual = None if response is None else normalise(response, RULES, env, methods)
            pairs.append((exchanges[index].get("response"), actual))
    finally:
        replayer.close()
    return pairs


def test_there_are_transcripts_for_the_catalogue_methods() -> None:
    """The transcripts exercise every catalogue and daemon method the protocol documents."""
    used: set[str] = set()
    for path in FILES:
        for exchange in json.loads(path.read_text(encoding="utf-8"))["exchanges"]:
            request = exchange.get("request")
            for item in request if isinstance(request, list) else [request]:
                if isinstance(item, dict) and "method" in item:
                    used.add(str(item["method"]))
    recorded = {
        "initialize", "daemon/ping", "daemon/status", "daemon/shutdown", "daemon/sleep",
        "$/cancelRequest", "atlas/list", "atlas/get", "space/list", "space/get",
        "parcellation/list", "parcellation/get", "map/list", "map/get", "region/resolve",
        "region/find", "region/get", "region/tree", "region/complete",
    }  # fmt: skip
    assert recorded <= used


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_transcript_replays(
    path: Path,
    shared_daemon: dict[str, str],
    configuration_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The daemon's normalised responses equal the recorded ones, exchange by exchange."""
    transcript = json.loads(path.read_text(encoding="utf-8"))
    if transcript.get("fresh_daemon"):
        directory = Path(tmp_path_factory.mktemp("g", numbered=True))
        with _daemon(directory, configuration_dir) as where:
            pairs = _replay(transcript, where)
    else:
        pairs = _replay(transcript, shared_daemon)
    assert len(pairs) == len(transcript["exchanges"])
    for index, (expected, actual) in enumerate(pairs):
        assert actual == expected, f"{path.name} exchange {index}"
