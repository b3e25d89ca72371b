"""Replay engine of the golden transcripts (protocol/transcripts/), shared by the test and the
recorder (scripts/record_transcripts.py).

A transcript is ``{"description", "encoding", "exchanges": [{"request", "response"}, ...]}``
(format and normalisation rules: protocol/transcripts/README.md). Every transcript runs on a
fresh zmq DEALER, so it starts with its own handshake. An exchange is sent, then awaited unless
it says ``"wait": false`` (its response is then collected while later exchanges run, e.g. a long
request that a later ``$/cancelRequest`` cancels). A ``null`` response means "no reply": the
engine proves it by sending a ``daemon/ping`` sentinel and requiring that its answer is the
next message. ``request_text`` sends raw bytes instead of an encoded request (parse errors).
Responses are normalised with the rules of ``replay.json`` before they are compared or stored.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import zmq
from siibrad_client._codec import decode, encode

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "protocol" / "transcripts"
RULES_FILE = TRANSCRIPTS / "replay.json"
REPLY_TIMEOUT_S = 60.0


def load_rules() -> dict[str, Any]:
    """The normalisation rules and daemon options of protocol/transcripts/replay.json."""
    return dict(json.loads(RULES_FILE.read_text(encoding="utf-8")))


def transcript_files() -> list[Path]:
    """Every transcript, in name order (replay.json is the rule file, not a transcript)."""
    return sorted(p for p in TRANSCRIPTS.glob("*.json") if p.name != RULES_FILE.name)


def methods_by_id(request: Any) -> dict[Any, str]:
    """The method of every request id in a request or batch."""
    items = request if isinstance(request, list) else [request]
    return {r["id"]: r.get("method", "") for r in items if isinstance(r, dict) and "id" in r}


def normalise(
    response: Any,
    rules: Mapping[str, Any],
    env: Mapping[str, str],
    methods: Mapping[Any, str] | None = None,
) -> Any:
    """``response`` with volatile values replaced by placeholders (see README.md).

    ``env`` maps placeholders such as ``{runtime_dir}`` to this run's paths; ``methods`` (id →
    method) selects the per-method path rules.
    """
    out = copy.deepcopy(response)
    for item in out if isinstance(out, list) else [out]:
        if isinstance(item, dict):
            method = (methods or {}).get(item.get("id"), "")
            for path in rules["paths"].get(method, []):
                _replace_path(item, path.split("."), rules["path_placeholder"])
    out = _replace_keys(out, rules["keys"])
    out = _replace_strings(out, sorted(env.items(), key=lambda kv: -len(kv[1])))
    if isinstance(out, list):  # JSON-RPC lets a batch's responses come in any order
        out.sort(key=lambda r: json.dumps(r.get("id") if isinstance(r, dict) else r))
    return out


def _replace_path(node: Any, parts: list[str], placeholder: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and head in node:
        if rest:
            _replace_path(node[head], rest, placeholder)
        else:
            node[head] = placeholder


def _replace_keys(node: Any, keys: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (keys[k] if k in keys and v is not None else _replace_keys(v, keys))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_replace_keys(v, keys) for v in node]
    return node


def _replace_strings(node: Any, env: list[tuple[str, str]]) -> Any:
    if isinstance(node, str):
        for placeholder, value in env:
            if value:
                node = node.replace(value, placeholder)
        return node
    if isinstance(node, dict):
        return {k: _replace_strings(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_strings(v, env) for v in node]
    return node


def _ids(request: Any) -> list[Any]:
    items = request if isinstance(request, list) else [request]
    return [r["id"] for r in items if isinstance(r, dict) and "id" in r]


class Replayer:
    """One DEALER connection replaying exchanges and returning the raw responses."""

    def __init__(self, endpoint: str, encoding: str) -> None:
        self._context = zmq.Context()
        self.socket = self._context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.encoding = encoding
        self._parked: list[Any] = []
        self._sentinels = 0

    def close(self) -> None:
        self.socket.close(linger=0)
        self._context.term()

    def _send(self, exchange: Mapping[str, Any]) -> None:
        if "request_text" in exchange:
            self.socket.send(str(exchange["request_text"]).encode("utf-8"))
        else:
            self.socket.send_multipart(encode(exchange["request"], self.encoding))

    def _next(self) -> Any:
        """The next reply (server notifications such as $/progress are not part of it)."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.socket.poll(100):
                message = decode(self.socket.recv_multipart())
                if isinstance(message, dict) and "method" in message:
                    continue
                return message
        raise TimeoutError(f"no reply within {REPLY_TIMEOUT_S:g} s")

    def _await(self, ids: list[Any], batch: bool) -> Any:
        for i, message in enumerate(self._parked):
            if self._matches(message, ids, batch):
                return self._parked.pop(i)
        while True:
            message = self._next()
            if self._matches(message, ids, batch):
                return message
            self._parked.append(message)

    @staticmethod
    def _matches(message: Any, ids: list[Any], batch: bool) -> bool:
        if isinstance(message, list):
            return batch and sorted(map(str, _ids(message))) == sorted(map(str, ids))
        if not isinstance(message, dict):
            return False
        if message.get("id") is None:  # an unreadable request or batch: answered with id null
            return not ids or batch
        return not batch and message.get("id") in ids

    def _prove_silence(self) -> None:
        self._sentinels += 1
        sentinel = f"sentinel-{self._sentinels}"
        self.socket.send_multipart(
            encode({"jsonrpc": "2.0", "id": sentinel, "method": "daemon/ping"}, self.encoding)
        )
        message = self._next()
        if not (isinstance(message, dict) and message.get("id") == sentinel):
            raise AssertionError(f"expected no reply, got {message!r}")

    def run(self, exchanges: list[Mapping[str, Any]]) -> Iterator[tuple[int, Any]]:
        """Send every exchange; yield ``(index, raw response or None)`` as they complete."""
        deferred: list[tuple[int, list[Any], bool]] = []
        for index, exchange in enumerate(exchanges):
            self._send(exchange)
            request = exchange.get("request")
            ids = _ids(request)
            batch = isinstance(request, list)
            expects_reply = "request_text" in exchange or bool(ids) or (batch and not request)
            if not expects_reply:
                self._prove_silence()
                yield index, None
            elif exchange.get("wait", True):
                yield index, self._await(ids, batch)
            else:
                deferred.append((index, ids, batch))
        for index, ids, batch in deferred:
            yield index, self._await(ids, batch)
