"""Client behaviour against a stand-in ROUTER: calls, errors, batches, cancel, threads, restart."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from fake_siibrad_daemon import FakeDaemon
from siibrad_client import (
    Client,
    DaemonUnavailableError,
    ReplyTimeoutError,
    RequestCancelled,
    SiibradError,
)
from siibrad_client.errors import MethodNotFound, RegionNotFoundError


def test_connects_through_the_connection_file(fake_daemon: FakeDaemon) -> None:
    """Client() reads daemon.json, hand-shakes (initialize + ping) and learns the instance."""
    with Client() as client:
        assert client.endpoint == fake_daemon.endpoint
        assert client.instance_id == fake_daemon.instance_id
        assert client.server_info["name"] == "siibrad"
        assert client.call("test/echo", {"a": [1, 2]}) == {"a": [1, 2]}
    assert fake_daemon.methods_seen()[:2] == ["initialize", "daemon/ping"]


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_remote_errors_raise_their_class(fake_daemon: FakeDaemon, encoding: str) -> None:
    """A wire error is raised as the class of its data.type, with its data, in both encodings."""
    with Client(encoding=encoding) as client:
        with pytest.raises(RegionNotFoundError) as caught:
            client.call("test/missing")
        assert caught.value.suggestions == ["hOc1", "hOc2"] and caught.value.spec == "hoc9"
        with pytest.raises(MethodNotFound):
            client.call("no/such")


def test_batch_returns_results_and_errors_in_order(fake_daemon: FakeDaemon) -> None:
    """One batch message carries many calls; errors come back as exception objects in place."""
    with Client() as client:
        calls = [("test/echo", {"i": 1}), ("test/missing", None), ("test/echo", {"i": 3})]
        out = client.batch(calls)
        assert out[0] == {"i": 1} and out[2] == {"i": 3}
        assert isinstance(out[1], RegionNotFoundError)
        assert client.batch([]) == []
    batches = [env for _, env in fake_daemon.received if isinstance(env, list)]
    assert len(batches) == 1 and len(batches[0]) == 3


def test_notifications_get_no_reply(fake_daemon: FakeDaemon) -> None:
    """notify() sends a message without id and the next call is not confused by it."""
    with Client() as client:
        client.notify("test/echo", {"x": 1})
        assert client.call("test/echo", {"y": 2}) == {"y": 2}
    notes = [env for _, env in fake_daemon.received if isinstance(env, dict) and "id" not in env]
    assert notes == [{"jsonrpc": "2.0", "method": "test/echo", "params": {"x": 1}}]


def test_arrays_travel_as_frames(fake_daemon: FakeDaemon) -> None:
    """numpy params go out as frames and ndarray results come back as arrays."""
    points = np.arange(9, dtype=np.float64).reshape(3, 3)
    with Client() as client:
        out = client.call("test/arrays", {"points": points})
    np.testing.assert_array_equal(out["points"], points * 2)
    assert not out["points"].flags.owndata  # a view of the received frame, not a copy


def test_cancel_a_submitted_request(fake_daemon: FakeDaemon) -> None:
    """cancel() sends $/cancelRequest and result() raises RequestCancelled."""
    with Client() as client:
        pending = client.submit("test/slow", {"seconds": 30})
        assert not pending.done()
        pending.cancel()
        with pytest.raises(RequestCancelled):
            pending.result(timeout_s=10)
        assert client.call("test/echo", {"after": True}) == {"after": True}


def test_cancel_from_another_thread(fake_daemon: FakeDaemon) -> None:
    """A request waited on in one thread can be cancelled from another."""
    with Client() as client:
        pending = client.submit("test/slow", {"seconds": 30})
        canceller = threading.Thread(target=pending.cancel)
        canceller.start()
        canceller.join()
        with pytest.raises(RequestCancelled):
            pending.result(timeout_s=10)


def test_timeout_cancels_on_the_daemon(fake_daemon: FakeDaemon) -> None:
    """No reply in time raises ReplyTimeoutError and cancels the request daemon-side."""
    with Client() as client:
        with pytest.raises(ReplyTimeoutError):
            client.call("test/slow", {"seconds": 30}, timeout_s=0.2)
        assert client.call("test/echo", {"ok": 1}) == {"ok": 1}
    assert "$/cancelRequest" in fake_daemon.methods_seen()
    assert not fake_daemon.delayed


def test_progress_reaches_the_callback(fake_daemon: FakeDaemon) -> None:
    """$/progress notifications for a submitted request reach its callback."""
    seen: list[object] = []
    with Client() as client:
        pending = client.submit("test/slow", {"seconds": 0.05}, progress=seen.append)
        assert pending.result(timeout_s=10) == "slept"
    assert seen == [{"kind": "begin"}]


def test_threads_get_their_own_connections(fake_daemon: FakeDaemon) -> None:
    """Each thread uses its own socket (own identity, own initialize); answers never mix."""
    errors: list[BaseException] = []
    with Client() as client:

        def work(n: int) -> None:
            try:
                for i in range(50):
                    assert client.call("test/echo", {"t": n, "i": i}) == {"t": n, "i": i}
            except BaseException as exc:  # collected and re-raised by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert not errors
    assert len(fake_daemon.initialized) == 5  # the constructing thread plus four workers


def test_reconnects_after_a_restart(client_env: Path) -> None:
    """A daemon restarted behind the same socket is re-initialised and the call retried."""
    first = FakeDaemon(client_env)
    client = Client()
    try:
        old = client.instance_id
        first.stop()
        second = FakeDaemon(client_env)
        try:
            assert client.call("test/echo", {"again": 1}, timeout_s=10) == {"again": 1}
            assert client.instance_id == second.instance_id != old
            assert client.restarts == 1
        finally:
            second.stop()
    finally:
        client.close()


def test_a_lost_daemon_is_detected_not_waited_for(client_env: Path) -> None:
    """When the daemon dies mid-request, the call fails fast instead of hanging to its timeout."""
    daemon = FakeDaemon(client_env)
    client = Client()
    try:
        pending = client.submit("test/slow", {"seconds": 60})
        daemon.stop()
        # DaemonUnavailableError, not ReplyTimeoutError: the liveness probe noticed the death.
        with pytest.raises(DaemonUnavailableError, match="went away"):
            pending.result(timeout_s=120)
    finally:
        client.close()


def test_no_daemon_and_no_autostart(client_env: Path) -> None:
    """Without a daemon and with autostart off, the error says how to start one."""
    with pytest.raises(DaemonUnavailableError, match="siibrad serve --detach"):
        Client(autostart=False)


def test_explicit_endpoint_that_nobody_serves(client_env: Path) -> None:
    """SIIBRAD_ENDPOINT pointing at nothing fails within connect_timeout_s, naming it."""
    endpoint = f"ipc://{client_env}/nobody.sock"
    with pytest.raises(DaemonUnavailableError, match=r"nobody\.sock"):
        Client(endpoint, connect_timeout_s=0.5)


def test_closed_client_refuses_calls(fake_daemon: FakeDaemon) -> None:
    """After close() every call raises instead of silently reopening."""
    client = Client()
    client.close()
    with pytest.raises(SiibradError, match="closed"):
        client.call("test/echo")
