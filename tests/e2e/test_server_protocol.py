"""A real daemon over raw zmq: protocol errors, batches, notifications, limits, many clients."""

from __future__ import annotations

import json
from collections.abc import Callable

import msgpack
import numpy as np
import pytest
from server_daemons import DaemonProcess, RawClient

Connect = Callable[[str], RawClient]
REQ = {"jsonrpc": "2.0", "id": 1, "method": "region/resolve"}
RESOLVE = {"parcellation": "julich 3.1", "region": "hoc1 left"}


def assert_still_serving(connect: Connect, daemon: DaemonProcess) -> None:
    """A fresh client still gets a correct answer."""
    other = connect(daemon.endpoint)
    reply = other.call("region/resolve", RESOLVE)
    assert reply["result"]["name"] == "Area hOc1 (V1, 17, CalcS) left"


@pytest.mark.parametrize(
    "frame",
    [b"{not json", b"[1,", b"\xc1\xc1", msgpack.packb(msgpack.ExtType(3, b"x")), b"\xa2\xff\xfe"],
)
def test_malformed_frames_get_parse_error(
    siibrad_daemon: DaemonProcess, raw_client: Connect, frame: bytes
) -> None:
    """Undecodable JSON/msgpack frames get ParseError (-32700, id null); serving goes on."""
    client = raw_client(siibrad_daemon.endpoint)
    client.send(frame)
    reply = client.recv()
    assert (reply["id"], reply["error"]["code"]) == (None, -32700)
    assert reply["error"]["data"]["type"] == "ParseError"
    assert_still_serving(raw_client, siibrad_daemon)


def test_json_requests_get_json_replies(siibrad_daemon: DaemonProcess, raw_client: Connect) -> None:
    """The envelope encoding is detected per message and mirrored in the reply."""
    client = raw_client(siibrad_daemon.endpoint)
    client.send_json({"jsonrpc": "2.0", "id": "p", "method": "daemon/ping"})
    head = client.recv_frames()[0]
    assert head.startswith(b"{") and json.loads(head)["result"]["pong"] is True


def test_wrong_envelope_fields_are_invalid_request(
    siibrad_daemon: DaemonProcess, raw_client: Connect
) -> None:
    """Wrong jsonrpc, missing method, unknown members: InvalidRequest naming them."""
    client = raw_client(siibrad_daemon.endpoint)
    client.send_msgpack({"jsonrpc": "1.0", "id": 5, "methd": "x"})
    error = client.recv()["error"]
    assert error["code"] == -32600
    assert {f["field"] for f in error["data"]["fields"]} == {"jsonrpc", "method", "methd"}
    assert_still_serving(raw_client, siibrad_daemon)


def test_unknown_method(siibrad_daemon: DaemonProcess, raw_client: Connect) -> None:
    """An unknown method is MethodNotFound (-32601) with data.method."""
    reply = raw_client(siibrad_daemon.endpoint).call("region/teleport", {})
    assert (
        reply["error"]["code"] == -32601 and reply["error"]["data"]["method"] == "region/teleport"
    )


def test_wrong_params_list_each_bad_field(
    siibrad_daemon: DaemonProcess, raw_client: Connect
) -> None:
    """InvalidParams lists unknown, missing and wrong-typed fields together."""
    reply = raw_client(siibrad_daemon.endpoint).call(
        "region/find", {"regoin": "hoc1", "limit": "ten"}
    )
    fields = {(f["field"], f["problem"]) for f in reply["error"]["data"]["fields"]}
    assert fields == {
        ("regoin", "unknown field"),
        ("limit", "must be an integer"),
        ("region", "missing"),
    }


def test_requests_before_initialize(siibrad_daemon: DaemonProcess, raw_client: Connect) -> None:
    """Only initialize and daemon/ping work before initialize; the rest: ServerNotInitialized."""
    client = raw_client(siibrad_daemon.endpoint)
    assert client.request("daemon/ping")["result"]["pong"] is True
    error = client.request("region/resolve", RESOLVE)["error"]
    assert (error["code"], error["data"]["type"]) == (-32002, "ServerNotInitialized")
    client.initialize()
    assert "result" in client.request("region/resolve", RESOLVE)


def test_domain_errors_carry_suggestions_and_candidates(
    siibrad_daemon: DaemonProcess, raw_client: Connect
) -> None:
    """Not found carries suggestions; the error type names the kind."""
    client = raw_client(siibrad_daemon.endpoint)
    error = client.call("region/resolve", {"parcellation": "julich 3.1", "region": "hoc"})["error"]
    assert error["data"]["type"] == "RegionNotFoundError"
    assert any("hOc" in s for s in error["data"]["suggestions"])


def test_batches_and_notifications(siibrad_daemon: DaemonProcess, raw_client: Connect) -> None:
    """A batch gets one array (no entries for notifications); a lone notification gets nothing."""
    client = raw_client(siibrad_daemon.endpoint)
    client.initialize()
    client.send_msgpack(
        [
            {**REQ, "id": 10, "params": RESOLVE},
            {"jsonrpc": "2.0", "method": "daemon/ping"},
            {"jsonrpc": "2.0", "id": 11, "method": "nope/nope"},
            {"jsonrpc": "2.0", "id": 12, "method": "space/get", "params": {"space": "colin"}},
        ]
    )
    replies = {r["id"]: r for r in client.recv()}
    assert set(replies) == {10, 11, 12}
    assert replies[11]["error"]["code"] == -32601
    assert replies[12]["result"]["name"] == "MNI Colin 27"
    client.send_msgpack({"jsonrpc": "2.0", "method": "region/resolve", "params": RESOLVE})
    client.send_msgpack([{"jsonrpc": "2.0", "method": "daemon/ping"}])
    # Messages of one connection are answered in order: the ping's reply is the next message.
    assert client.request("daemon/ping")["result"]["pong"] is True
    assert client.notifications == []


def test_oversized_request_and_oversized_frame(
    start_daemon: Callable[..., DaemonProcess], raw_client: Connect
) -> None:
    """Past the limit: PayloadTooLarge; past MAXMSGSIZE the sender is cut off; others go on."""
    daemon = start_daemon(max_request_bytes=1_000_000)
    client = raw_client(daemon.endpoint)
    assert client.initialize()["limits"]["max_request_bytes"] == 1_000_000
    client.send_msgpack({**REQ, "params": {**RESOLVE, "pad": "x" * 1_200_000}})
    error = client.recv()["error"]
    assert error["data"]["type"] == "PayloadTooLarge" and error["data"]["size_bytes"] > 1_000_000
    huge = raw_client(daemon.endpoint)
    huge.send_msgpack({**REQ, "params": RESOLVE}, b"\0" * 5_000_000)  # > 2x limit + 1 MiB
    # libzmq dropped that connection unread; the DEALER reconnects and the next reply is the
    # ping's, so the oversized request was never answered.
    assert huge.request("daemon/ping")["result"]["pong"] is True
    assert_still_serving(raw_client, daemon)


def test_ndarray_frames_reach_handlers(siibrad_daemon: DaemonProcess, raw_client: Connect) -> None:
    """A descriptor whose frame does not hold its shape is InvalidParams (arrays are checked)."""
    client = raw_client(siibrad_daemon.endpoint)
    client.initialize()
    desc = {"kind": "ndarray", "dtype": "<f8", "shape": [2, 3], "buffer": 1}
    client.send_msgpack(
        {**REQ, "method": "region/find", "params": {"region": desc}},
        np.zeros(5).tobytes(),
    )
    error = client.recv()["error"]
    assert error["data"]["type"] == "InvalidParams"
    assert error["data"]["fields"][0]["field"] == "params.region"


def test_many_clients_and_a_dead_one(siibrad_daemon: DaemonProcess, raw_client: Connect) -> None:
    """A client that sends and vanishes does not disturb 20 interleaved clients."""
    dead = raw_client(siibrad_daemon.endpoint)
    dead.initialize()
    for i in range(50):
        dead.send_msgpack(
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "region/tree",
                "params": {"parcellation": "julich 3.1"},
            }
        )
    dead.close()
    clients = [raw_client(siibrad_daemon.endpoint) for _ in range(20)]
    for c in clients:
        c.initialize()
    for rid, c in enumerate(clients):
        c.send_msgpack({**REQ, "id": rid, "params": RESOLVE})
    for rid, c in enumerate(clients):
        reply = c.recv()
        assert reply["id"] == rid and reply["result"]["key"] == "AREA_HOC1_V1_17_CALCS_LEFT"


def test_short_requests_flow_while_heavy_work_runs(
    start_daemon: Callable[..., DaemonProcess], raw_client: Connect
) -> None:
    """While workers sleep, resolve answers; past the in-flight limit comes Busy; cancel works."""
    daemon = start_daemon(max_in_flight=2, workers=2)
    slow = raw_client(daemon.endpoint)
    slow.initialize()
    for rid in ("a", "b"):
        slow.send_msgpack(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "daemon/sleep",
                "params": {"duration_s": 30, "work_done_token": rid},
            }
        )
    begins = [slow.recv() for _ in range(2)]
    assert {b["params"]["token"] for b in begins} == {"a", "b"}
    assert all(b["method"] == "$/progress" for b in begins)
    fast = raw_client(daemon.endpoint)
    # Answered while both 30 s sleeps still run (they end cancelled below, not completed).
    assert "result" in fast.call("region/resolve", RESOLVE)
    busy = slow.request("daemon/sleep", {"duration_s": 1})["error"]
    assert (busy["data"]["type"], busy["data"]["limit"]) == ("Busy", 2)
    for rid in ("a", "b"):
        slow.send_msgpack({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": rid}})
    cancelled = {}
    while len(cancelled) < 2:
        message = slow.recv()
        if "id" in message:
            cancelled[message["id"]] = message["error"]["code"]
    assert cancelled == {"a": -32800, "b": -32800}
