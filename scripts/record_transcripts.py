"""Record the golden transcripts in protocol/transcripts/ from a real daemon.

Usage (from the project root, with the local configuration beside the project)::

    .venv/bin/python scripts/record_transcripts.py [--configuration DIR] [--only NAME ...]

The scenarios below are the source of the requests; this script starts ``siibrad serve`` with
the options of protocol/transcripts/replay.json in a temporary runtime dir, sends each scenario
on its own connection, normalises the responses with the same rules the replay test uses, and
rewrites ``protocol/transcripts/<name>.json``. Review the diff before committing: a changed
transcript is a changed protocol (or a fixed bug), and protocol/CHANGELOG.md should say so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "golden"))

from transcript_replay import (  # noqa: E402
    TRANSCRIPTS,
    Replayer,
    load_rules,
    methods_by_id,
    normalise,
)

DEFAULT_CONFIGURATION = PROJECT.parent / "shared" / "data" / "siibra-configurations"
JBA31 = "julich 3.1"
HOC4A_LEFT_ID = "JULICH_BRAIN_CYTOARCHITECTONIC_ATLAS_V3_1_AREA_4A_PRECG_LEFT"


def rq(rid: int | str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request envelope."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        message["params"] = params
    return message


def note(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A notification envelope (no id: never answered)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


INIT = rq(
    0,
    "initialize",
    {"protocol_version": "1.0.0", "client_info": {"name": "golden", "version": "1"}},
)


def ex(request: Any, **flags: Any) -> dict[str, Any]:
    return {"request": request, **flags}


SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "handshake",
        "description": "Before initialize only daemon/ping and initialize work; then status.",
        "encoding": "json",
        "exchanges": [
            ex(rq(1, "region/resolve", {"parcellation": JBA31, "region": "hoc1 left"})),
            ex(rq(2, "daemon/ping")),
            ex(INIT),
            ex(rq(3, "daemon/status")),
        ],
    },
    {
        "name": "handshake-msgpack",
        "description": "The same handshake in msgpack envelopes (stored here as JSON).",
        "encoding": "msgpack",
        "exchanges": [ex(INIT), ex(rq(1, "daemon/ping"))],
    },
    {
        "name": "version-mismatch",
        "description": "A client of another major protocol version is refused.",
        "encoding": "json",
        "exchanges": [
            ex(
                rq(
                    1,
                    "initialize",
                    {"protocol_version": "2.0.0", "client_info": {"name": "future"}},
                )
            ),
            ex(rq(2, "daemon/status")),
        ],
    },
    {
        "name": "catalogue",
        "description": "Atlases, spaces, parcellations and map metadata.",
        "encoding": "msgpack",
        "exchanges": [
            ex(INIT),
            ex(rq(1, "atlas/list", {"species": "rat"})),
            ex(rq(2, "atlas/get", {"atlas": "human"})),
            ex(rq(3, "space/list", {"atlas": "waxholm"})),
            ex(rq(4, "space/get", {"space": "mni152"})),
            ex(rq(5, "parcellation/list", {"space": "bigbrain"})),
            ex(rq(6, "parcellation/get", {"parcellation": "julich"})),
            ex(rq(7, "map/list", {"space": "waxholm", "maptype": "labelled"})),
            ex(rq(8, "map/get", {"parcellation": "julich 2.9", "space": "colin27"})),
        ],
    },
    {
        "name": "regions",
        "description": "Region resolution, search, lookup by id, subtrees and completion.",
        "encoding": "json",
        "exchanges": [
            ex(INIT),
            ex(rq(1, "region/resolve", {"parcellation": JBA31, "region": "hoc1 left"})),
            ex(rq(2, "region/resolve", {"parcellation": JBA31, "region": "44 right"})),
            ex(rq(3, "region/resolve", {"parcellation": JBA31, "region": "frontal lobe"})),
            ex(rq(4, "region/find", {"region": "hoc1", "parcellation": "julich 2.9"})),
            ex(rq(5, "region/get", {"id": HOC4A_LEFT_ID})),
            ex(rq(6, "region/tree", {"parcellation": JBA31, "region": "occipital", "depth": 1})),
            ex(rq(7, "region/complete", {"text": "hoc", "parcellation": JBA31, "limit": 5})),
        ],
    },
    {
        "name": "query-errors",
        "description": "Structured errors: not found, ambiguous, invalid spec, invalid params.",
        "encoding": "json",
        "exchanges": [
            ex(INIT),
            ex(rq(1, "region/resolve", {"parcellation": JBA31, "region": "hoc9 left"})),
            ex(rq(2, "region/resolve", {"parcellation": JBA31, "region": "left amygdala"})),
            ex(rq(3, "region/resolve", {"parcellation": JBA31, "region": "/[unclosed/"})),
            ex(rq(4, "region/resolve", {"parcellation": JBA31, "region": ""})),
            ex(rq(5, "parcellation/get", {"parcellation": "jba3.1"})),
            ex(rq(6, "region/resolve", {"parcellation": JBA31, "regoin": "hoc1", "x": 1})),
            ex(rq(7, "space/get", {"space": 42})),
            ex(rq(8, "region/nonexistent", {})),
        ],
    },
    {
        "name": "protocol-errors",
        "description": "Frames and envelopes that break JSON-RPC; the connection keeps working.",
        "encoding": "json",
        "exchanges": [
            ex(INIT),
            {"request_text": '{"jsonrpc": "2.0", "id": 1, "method": '},
            ex({"id": 2, "method": "daemon/ping"}),
            ex({"jsonrpc": "2.0", "id": 3, "method": "daemon/ping", "extra": True}),
            ex({"jsonrpc": "2.0", "id": 4, "method": "region/find", "params": ["hoc1"]}),
            ex(rq(5, "daemon/ping")),
        ],
    },
    {
        "name": "batches",
        "description": "Batches answer every request (errors in place), skip notifications.",
        "encoding": "json",
        "exchanges": [
            ex(INIT),
            ex(
                [
                    rq(1, "region/resolve", {"parcellation": JBA31, "region": "hoc1 left"}),
                    rq(2, "region/resolve", {"parcellation": JBA31, "region": "no such area"}),
                    note("daemon/ping"),
                    rq(3, "space/get", {"space": "colin"}),
                ]
            ),
            ex([note("daemon/ping"), note("daemon/status")]),
            ex([]),
        ],
    },
    {
        "name": "notifications",
        "description": "Notifications are never answered, not even when they fail.",
        "encoding": "msgpack",
        "exchanges": [
            ex(INIT),
            ex(note("region/resolve", {"parcellation": JBA31, "region": "hoc1 left"})),
            ex(note("no/such/method")),
            ex(note("$/cancelRequest", {"id": 12345})),
            ex(rq(1, "daemon/ping")),
        ],
    },
    {
        "name": "cancel",
        "description": "A long request cancelled with $/cancelRequest answers RequestCancelled.",
        "encoding": "json",
        "exchanges": [
            ex(INIT),
            ex(rq(1, "daemon/sleep", {"duration_s": 30}), wait=False),
            ex(rq(2, "daemon/ping")),
            ex(note("$/cancelRequest", {"id": 1})),
        ],
    },
    {
        "name": "shutdown",
        "description": "daemon/shutdown answers, then new requests get ShuttingDown or nothing.",
        "encoding": "json",
        "fresh_daemon": True,
        "exchanges": [ex(INIT), ex(rq(1, "daemon/shutdown"))],
    },
]


@contextmanager
def running_daemon(configuration: Path, rules: dict[str, Any]) -> Iterator[dict[str, str]]:
    """A daemon on ``configuration`` in a fresh runtime dir; yields endpoint and env paths."""
    directory = Path(tempfile.mkdtemp(prefix="sdg-"))
    cache = Path(tempfile.mkdtemp(prefix="sdg-cache-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIIBRAD_")}
    env["SIIBRAD_CACHE_DIR"] = str(cache)
    siibrad = Path(sys.executable).parent / "siibrad"
    try:
        subprocess.run(
            [
                str(siibrad),
                "serve",
                "--detach",
                "--runtime-dir",
                str(directory),
                "--configuration",
                str(configuration),
                *rules["daemon_args"],
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield {
            "endpoint": f"ipc://{directory}/zmq.sock",
            "{runtime_dir}": str(directory),
            "{configuration}": str(configuration),
        }
    finally:
        subprocess.run(
            [str(siibrad), "stop", "--runtime-dir", str(directory)],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def record(
    scenario: dict[str, Any], where: dict[str, str], rules: dict[str, Any]
) -> dict[str, Any]:
    """Run one scenario and return its transcript (responses normalised)."""
    env = {k: v for k, v in where.items() if k.startswith("{")}
    replayer = Replayer(where["endpoint"], scenario["encoding"])
    exchanges = [dict(e) for e in scenario["exchanges"]]
    try:
        for index, response in replayer.run(exchanges):
            methods = methods_by_id(exchanges[index].get("request"))
            exchanges[index]["response"] = (
                None if response is None else normalise(response, rules, env, methods)
            )
    finally:
        replayer.close()
    transcript = {k: v for k, v in scenario.items() if k not in {"name", "exchanges"}}
    transcript["exchanges"] = exchanges
    return transcript


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configuration", type=Path, default=DEFAULT_CONFIGURATION)
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to record")
    args = parser.parse_args(argv)
    rules = load_rules()
    chosen = [s for s in SCENARIOS if args.only is None or s["name"] in args.only]
    shared = [s for s in chosen if not s.get("fresh_daemon")]
    with running_daemon(args.configuration, rules) as where:
        for scenario in shared:
            _write(scenario["name"], record(scenario, where, rules))
    for scenario in chosen:
        if scenario.get("fresh_daemon"):
            with running_daemon(args.configuration, rules) as where:
                _write(scenario["name"], record(scenario, where, rules))
    return 0


def _write(name: str, transcript: dict[str, Any]) -> None:
    path = TRANSCRIPTS / f"{name}.json"
    path.write_text(json.dumps(transcript, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    count = len(transcript["exchanges"])
    sys.stdout.write(f"wrote {path.relative_to(PROJECT)} ({count} exchanges)\n")


if __name__ == "__main__":
    raise SystemExit(main())
