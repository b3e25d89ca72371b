"""The real daemon's replies validate against protocol/schema for every method and envelope."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from server_daemons import DaemonProcess, RawClient

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "protocol" / "schema"
SHARED = ("common.json", "envelope.json")
REGISTRY: Registry[Any] = Registry().with_resources(
    (name, Resource.from_contents(json.loads((SCHEMA_DIR / name).read_text()))) for name in SHARED
)
Connect = Callable[[str], RawClient]


def validator(file: str, part: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / file).read_text())
    return Draft202012Validator({"$ref": f"#/$defs/{part}", **schema}, registry=REGISTRY)


def method_examples() -> list[tuple[str, dict[str, Any]]]:
    calls = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        if path.name in SHARED:
            continue
        schema = json.loads(path.read_text())
        method = schema["title"]
        if method in ("daemon/shutdown", "$/cancelRequest"):
            continue  # validated in their own tests below
        calls += [(method, example) for example in schema["$defs"]["params"]["examples"]]
    return calls


EXAMPLES = method_examples()


@pytest.mark.parametrize(("method", "params"), EXAMPLES, ids=[m for m, _ in EXAMPLES])
def test_every_method_reply_matches_its_schema(
    siibrad_daemon: DaemonProcess, raw_client: Connect, method: str, params: dict[str, Any]
) -> None:
    """Each documented example, sent to the real daemon, yields a schema-valid result."""
    client = raw_client(siibrad_daemon.endpoint)
    reply = client.call(method, params)
    for notification in client.notifications:  # daemon/sleep with a work_done_token
        validator("envelope.json", "Progress").validate(notification)
    assert bool(client.notifications) == ("work_done_token" in params)
    validator("envelope.json", "Response").validate(reply)
    assert "result" in reply, reply
    validator(f"{method.replace('/', '.')}.json", "result").validate(reply["result"])


def test_error_replies_match_the_envelope_schema(
    siibrad_daemon: DaemonProcess, raw_client: Connect
) -> None:
    """Protocol and domain errors all carry code, message and data.type as documented."""
    client = raw_client(siibrad_daemon.endpoint)
    replies = [
        client.call("region/resolve", {"parcellation": "julich 3.1", "region": "nowhere"}),
        client.call("nope/nope"),
        client.call("region/find", {}),
    ]
    client.send(b"\xc1")
    replies.append(client.recv())
    for reply in replies:
        validator("envelope.json", "Response").validate(reply)
        assert "error" in reply


def test_shutdown_and_cancel_match_their_schemas(
    start_daemon: Callable[..., DaemonProcess], raw_client: Connect
) -> None:
    """$/cancelRequest params and the daemon/shutdown result validate."""
    daemon = start_daemon()
    client = raw_client(daemon.endpoint)
    client.initialize()
    cancel = {"id": "s"}
    validator("$.cancelRequest.json", "params").validate(cancel)
    client.send_msgpack(
        {"jsonrpc": "2.0", "id": "s", "method": "daemon/sleep", "params": {"duration_s": 30}}
    )
    client.send_msgpack({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": cancel})
    assert client.recv()["error"]["code"] == -32800
    reply = client.call("daemon/shutdown")
    validator("daemon.shutdown.json", "result").validate(reply["result"])
    assert daemon.wait_exit() == 0
