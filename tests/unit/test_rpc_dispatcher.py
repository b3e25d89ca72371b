"""The dispatcher with a small real method table: JSON-RPC semantics, limits, cancel, progress."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from siibrad.errors import InvalidParams
from siibrad.rpc.codec import Encoding, encode_envelope
from siibrad.rpc.dispatcher import Dispatcher
from siibrad.rpc.registry import MethodTable
from siibrad.rpc.session import Limits, RequestScope

WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class EchoParams:
    value: Any = None
    count: int = 1


@dataclass(frozen=True, slots=True)
class GateParams:
    name: str


def build_table(gates: dict[str, threading.Event]) -> MethodTable:
    table = MethodTable()

    @table.register("test/echo")
    def echo(ctx: RequestScope, params: EchoParams) -> dict[str, Any]:
        """Echo."""
        return {"value": params.value, "count": params.count}

    @table.register("test/boom")
    def boom(ctx: RequestScope, params: EchoParams) -> None:
        """Fail unexpectedly."""
        raise RuntimeError("secret internals")

    @table.register("test/gate", heavy=True)
    def gate(ctx: RequestScope, params: GateParams) -> dict[str, Any]:
        """Wait (cooperatively) until the test opens the named gate."""
        ctx.progress("begin", title="gate")
        event = gates.setdefault(params.name, threading.Event())
        while not event.wait(0.01):
            ctx.check_cancelled()
        ctx.progress("end")
        return {"opened": params.name}

    def small(ctx: RequestScope, params: EchoParams) -> bool:
        if params.value == "explode":
            raise RuntimeError("a failing check means: use the pool")
        return params.count <= 10

    @table.register("test/sum", heavy=True, inline_if=small)
    def total(ctx: RequestScope, params: EchoParams) -> dict[str, Any]:
        """Heavy in general, cheap for small counts."""
        return {"sum": sum(range(params.count)), "thread": threading.current_thread().name}

    @table.register("test/ping", before_initialize=True)
    def ping(ctx: RequestScope, params: EchoParams) -> dict[str, Any]:
        """Works before initialize."""
        return {"pong": True}

    return table


class Harness:
    """A dispatcher plus a fake socket loop: ``posted`` replies are drained on this thread."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.gates: dict[str, threading.Event] = {}
        self.posted: queue.Queue[tuple[bytes, list[Any], Callable[[], None] | None]] = queue.Queue()
        self.executor = ThreadPoolExecutor(max_workers=2)
        self.dispatcher = Dispatcher(
            build_table(self.gates),
            context_factory=lambda scope: scope,
            executor=self.executor,
            post=lambda key, frames, on_loop: self.posted.put((key, frames, on_loop)),
            limits=limits,
        )
        self.session = self.dispatcher.session(b"\x00client")

    def send(self, message: Any, encoding: Encoding = Encoding.MSGPACK) -> Any:
        frames = encode_envelope(message, encoding)
        return self.send_raw(bytes(frames[0]))

    def send_raw(self, head: bytes, *buffers: bytes) -> Any:
        reply = self.dispatcher.handle(self.session, [head, *buffers])
        return None if reply is None else decode(bytes(reply[0]))

    def next_posted(self) -> Any:
        _, frames, on_loop = self.posted.get(timeout=WAIT_S)
        if on_loop is not None:
            on_loop()
        return decode(bytes(frames[0]))

    def initialize(self) -> dict[str, Any]:
        reply = self.send(request(0, "initialize", protocol_version="1.0.0"))
        return dict(reply["result"])

    def open_gate(self, name: str) -> None:
        self.gates.setdefault(name, threading.Event()).set()


def decode(head: bytes) -> Any:
    return json.loads(head) if head[:1] in (b"{", b"[") else msgpack.unpackb(head, raw=False)


def request(rid: Any, method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(Limits(max_in_flight_per_client=2, max_request_bytes=4096, max_batch_size=5))
    yield h
    for event in list(h.gates.values()):
        event.set()
    h.executor.shutdown(wait=True)


def test_initialize_announces_methods_limits_and_instance(harness: Harness) -> None:
    """initialize returns protocol version, methods (builtins included) and the limits."""
    result = harness.initialize()
    assert result["protocol_version"] == "1.0.0"
    assert {"initialize", "test/echo", "test/gate"} <= set(result["capabilities"]["methods"])
    assert result["limits"]["max_in_flight_per_client"] == 2
    assert result["instance_id"] == harness.dispatcher.instance_id


def test_methods_need_initialize_except_ping(harness: Harness) -> None:
    """Before initialize: ping answers, anything else is ServerNotInitialized (-32002)."""
    assert harness.send(request(1, "test/ping"))["result"] == {"pong": True}
    error = harness.send(request(2, "test/echo", value=1))["error"]
    assert (error["code"], error["data"]["type"]) == (-32002, "ServerNotInitialized")


def test_major_version_mismatch_is_refused(harness: Harness) -> None:
    """A client of protocol 2.x gets ProtocolVersionMismatch naming our version."""
    error = harness.send(request(1, "initialize", protocol_version="2.0.0"))["error"]
    assert error["data"]["type"] == "ProtocolVersionMismatch"
    assert error["data"]["server_version"] == "1.0.0"
    assert not harness.session.initialized


@pytest.mark.parametrize("encoding", list(Encoding))
def test_replies_use_the_encoding_of_the_request(harness: Harness, encoding: Encoding) -> None:
    """A JSON request gets a JSON reply and a msgpack request a msgpack reply."""
    harness.initialize()
    frames = harness.dispatcher.handle(
        harness.session, encode_envelope(request(7, "test/echo", value="x"), encoding)
    )
    assert frames is not None
    head = bytes(frames[0])
    assert (head[:1] == b"{") == (encoding is Encoding.JSON)
    assert decode(head) == {"jsonrpc": "2.0", "id": 7, "result": {"value": "x", "count": 1}}


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        ({"jsonrpc": "1.0", "id": 1, "method": "test/echo"}, "jsonrpc"),
        ({"jsonrpc": "2.0", "id": 1}, "method"),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "test/echo"}, "id"),
        ({"jsonrpc": "2.0", "id": 1, "method": "test/echo", "param": {}}, "param"),
        ("just a string", ""),
    ],
)
def test_wrong_envelopes_are_invalid_request(harness: Harness, envelope: Any, field: str) -> None:
    """Bad envelope members give InvalidRequest naming the member."""
    error = harness.send(envelope)["error"]
    assert error["code"] == -32600
    assert field in [f["field"] for f in error["data"]["fields"]]


def test_unknown_method_and_garbage(harness: Harness) -> None:
    """Unknown methods are MethodNotFound; undecodable frames are ParseError with id null."""
    harness.initialize()
    assert harness.send(request(1, "nope/nope"))["error"]["data"]["method"] == "nope/nope"
    reply = harness.send_raw(b"{oops")
    assert (reply["id"], reply["error"]["code"]) == (None, -32700)
    assert harness.send(request(2, "test/echo"))["result"]["count"] == 1


def test_invalid_params_list_every_bad_field(harness: Harness) -> None:
    """Unknown, wrong-typed and missing fields are all listed in one InvalidParams."""
    harness.initialize()
    error = harness.send(request(1, "test/gate", nme="x"))["error"]
    assert error["code"] == InvalidParams.code
    assert {(f["field"], f["problem"]) for f in error["data"]["fields"]} == {
        ("nme", "unknown field"),
        ("name", "missing"),
    }
    error = harness.send(request(2, "test/echo", count=True))["error"]
    assert error["data"]["fields"] == [{"field": "count", "problem": "must be an integer"}]
    positional = {"jsonrpc": "2.0", "id": 3, "method": "test/echo", "params": [1]}
    assert harness.send(positional)["error"]["code"] == -32602


def test_unexpected_exceptions_are_internal_errors_with_an_incident(harness: Harness) -> None:
    """A crash becomes -32603 with an incident id; the exception text is never sent."""
    harness.initialize()
    error = harness.send(request(1, "test/boom"))["error"]
    assert error["code"] == -32603 and len(error["data"]["incident"]) == 12
    assert "secret" not in json.dumps(error)


def test_notifications_get_no_reply_even_on_error(harness: Harness) -> None:
    """Requests without id are never answered, successful or not."""
    harness.initialize()
    assert harness.send({"jsonrpc": "2.0", "method": "test/echo"}) is None
    assert harness.send({"jsonrpc": "2.0", "method": "nope"}) is None
    assert harness.send({"jsonrpc": "2.0", "method": "test/boom"}) is None


def test_batches(harness: Harness) -> None:
    """A batch gets an array of replies (none for notifications); empty/oversized are errors."""
    harness.initialize()
    replies = harness.send(
        [
            request(1, "test/echo", value=1),
            {"jsonrpc": "2.0", "method": "test/echo"},
            request(2, "nope"),
            {"bad": True},
        ]
    )
    assert [r.get("id") for r in replies] == [1, 2, None]
    assert replies[0]["result"]["value"] == 1 and replies[1]["error"]["code"] == -32601
    assert replies[2]["error"]["code"] == -32600
    assert harness.send([{"jsonrpc": "2.0", "method": "test/echo"}]) is None
    assert harness.send([])["error"]["code"] == -32600
    assert harness.send([request(i, "test/echo") for i in range(6)])["error"]["code"] == -32010


def test_batch_with_heavy_items_is_sent_whole_when_done(harness: Harness) -> None:
    """Inline and pooled items of one batch come back together in one array."""
    harness.initialize()
    assert harness.send([request(1, "test/echo"), request(2, "test/gate", name="b")]) is None
    harness.open_gate("b")
    replies = harness.next_posted()
    assert sorted(r["id"] for r in replies) == [1, 2]
    assert harness.session.in_flight == {}


def test_oversized_requests_are_payload_too_large(harness: Harness) -> None:
    """Past max_request_bytes (envelope plus buffers) the reply is PayloadTooLarge."""
    harness.initialize()
    error = harness.send(request(1, "test/echo", value="x" * 5000))["error"]
    assert error["data"]["type"] == "PayloadTooLarge" and error["data"]["size_bytes"] > 4096
    head = encode_envelope(request(2, "test/echo"), Encoding.MSGPACK)[0]
    assert harness.send_raw(bytes(head), b"\0" * 5000)["error"]["code"] == -32010


def test_heavy_requests_run_off_the_loop_and_busy_past_the_limit(harness: Harness) -> None:
    """Pooled requests leave the loop free; past max_in_flight_per_client comes Busy."""
    harness.initialize()
    assert harness.send(request("a", "test/gate", name="a")) is None
    assert harness.send(request("b", "test/gate", name="b")) is None
    assert harness.send(request(3, "test/echo"))["result"]["count"] == 1  # not blocked
    busy = harness.send(request("c", "test/gate", name="c"))["error"]
    assert (busy["data"]["type"], busy["data"]["limit"]) == ("Busy", 2)
    duplicate = harness.send(request("a", "test/gate", name="a"))["error"]
    assert duplicate["data"]["type"] in ("InvalidRequest", "Busy")
    harness.open_gate("a")
    assert harness.next_posted() == {"jsonrpc": "2.0", "id": "a", "result": {"opened": "a"}}
    harness.open_gate("b")
    assert harness.next_posted()["id"] == "b"
    assert harness.dispatcher.in_flight == 0


def test_cancel_running_and_queued_requests(harness: Harness) -> None:
    """$/cancelRequest stops a running cooperative request with RequestCancelled (-32800)."""
    harness.initialize()
    harness.send(request(1, "test/gate", name="never"))
    assert (
        harness.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}) is None
    )
    reply = harness.next_posted()
    assert (reply["id"], reply["error"]["code"]) == (1, -32800)
    assert harness.dispatcher.in_flight == 0


def test_progress_notifications_carry_the_work_done_token(harness: Harness) -> None:
    """With work_done_token the client gets $/progress begin and end before the result."""
    harness.initialize()
    harness.send(request(1, "test/gate", name="p", work_done_token="tok"))
    begin = harness.next_posted()
    assert begin == {
        "jsonrpc": "2.0",
        "method": "$/progress",
        "params": {"token": "tok", "value": {"kind": "begin", "title": "gate"}},
    }
    harness.open_gate("p")
    end = harness.next_posted()
    assert end["params"]["value"]["kind"] == "end"
    assert harness.next_posted()["result"] == {"opened": "p"}


def test_shutdown_refuses_new_work_and_cancels_the_rest(harness: Harness) -> None:
    """After begin_shutdown new requests get ShuttingDown; cancel_all answers the rest."""
    harness.initialize()
    harness.send(request(1, "test/gate", name="s"))
    harness.dispatcher.begin_shutdown()
    assert harness.send(request(2, "test/echo"))["error"]["data"]["type"] == "ShuttingDown"
    harness.dispatcher.cancel_all()
    assert harness.next_posted()["error"]["data"]["type"] == "RequestCancelled"


def test_heavy_method_runs_inline_when_its_check_says_cheap(harness: Harness) -> None:
    """inline_if true answers on the loop; false or a failing check goes to the pool."""
    harness.initialize()
    inline = harness.send(request(1, "test/sum", count=3))["result"]
    assert inline == {"sum": 3, "thread": threading.current_thread().name}
    assert harness.send(request(2, "test/sum", count=100)) is None
    pooled = harness.next_posted()["result"]
    assert pooled["sum"] == 4950 and pooled["thread"] != threading.current_thread().name
    assert harness.send(request(3, "test/sum", count=1, value="explode")) is None
    assert harness.next_posted()["result"]["sum"] == 0
