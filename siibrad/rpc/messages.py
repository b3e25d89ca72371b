"""JSON-RPC 2.0 messages: validating a decoded envelope into requests, building replies.

Contract: a request is ``{"jsonrpc": "2.0", "id": int|str, "method": str, "params"?: object}``;
without ``id`` it is a notification (never answered). Any other member, a wrong type or a
missing ``method`` is :class:`~siibrad.errors.InvalidRequest`; positional (array) params are
:class:`~siibrad.errors.InvalidParams` because every siibrad method takes named params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siibrad.errors import InvalidParams, InvalidRequest, SiibradError

RequestId = int | str | None
_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
MAX_METHOD_NAME_CHARS = 128


@dataclass(frozen=True, slots=True)
class Request:
    """One request or notification (``is_notification`` when the envelope had no ``id``)."""

    method: str
    params: dict[str, Any]
    id: RequestId = None
    is_notification: bool = False


def best_effort_id(envelope: Any) -> RequestId:
    """The id to answer an invalid request with: its own when readable, else ``null``."""
    if isinstance(envelope, dict):
        rid = envelope.get("id")
        if isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool)):
            return rid
    return None


def parse_request(envelope: Any) -> Request:
    """Validate one decoded envelope; raises InvalidRequest/InvalidParams naming the fault."""
    if not isinstance(envelope, dict):
        raise InvalidRequest(
            f"a request must be an object, not {type(envelope).__name__}",
            fields=[{"field": "", "problem": "not an object"}],
        )
    problems: list[dict[str, str]] = []
    unknown = envelope.keys() - _ENVELOPE_KEYS
    problems.extend({"field": k, "problem": "unknown member"} for k in sorted(map(str, unknown)))
    if envelope.get("jsonrpc") != "2.0":
        problems.append({"field": "jsonrpc", "problem": 'must be the string "2.0"'})
    method = envelope.get("method")
    if not isinstance(method, str) or not method:
        problems.append({"field": "method", "problem": "must be a non-empty string"})
    elif len(method) > MAX_METHOD_NAME_CHARS:
        problems.append({"field": "method", "problem": f"longer than {MAX_METHOD_NAME_CHARS}"})
    has_id = "id" in envelope
    rid = envelope.get("id")
    if has_id and not (
        rid is None or isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))
    ):
        problems.append({"field": "id", "problem": "must be an integer, a string or null"})
    if problems:
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        raise InvalidRequest(f"invalid JSON-RPC 2.0 request ({summary})", fields=problems)
    params = envelope.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams(
            "params must be an object of named fields",
            fields=[{"field": "params", "problem": f"is {type(params).__name__}, not an object"}],
        )
    assert isinstance(method, str)
    return Request(method=method, params=params, id=rid, is_notification=not has_id)


def result_message(rid: RequestId, result: Any) -> dict[str, Any]:
    """A success response."""
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def error_message(rid: RequestId, error: SiibradError) -> dict[str, Any]:
    """An error response carrying ``error.data.type``."""
    return {"jsonrpc": "2.0", "id": rid, "error": error.to_wire()}


def notification_message(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A server-to-client notification such as ``$/progress``."""
    return {"jsonrpc": "2.0", "method": method, "params": params}
