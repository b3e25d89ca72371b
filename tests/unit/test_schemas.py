"""protocol/schema agrees with the code: a schema per method, matching params, valid replies."""

from __future__ import annotations

import dataclasses
import json
import queue
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgpack
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from siibrad.catalog import Catalog
from siibrad.methods import MethodContext, load_methods
from siibrad.rpc.codec import Encoding, encode_envelope
from siibrad.rpc.dispatcher import WORK_DONE_TOKEN, Dispatcher
from siibrad.rpc.session import RequestScope
from siibrad.settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "protocol" / "schema"
SHARED_FILES = {"common.json", "envelope.json"}


def schema_file(method: str) -> Path:
    return SCHEMA_DIR / (method.replace("/", ".") + ".json")


def load_registry() -> Registry[Any]:
    resources = [
        (name, Resource.from_contents(json.loads((SCHEMA_DIR / name).read_text())))
        for name in SHARED_FILES
    ]
    return Registry().with_resources(resources)


REGISTRY = load_registry()


def validator(method: str, part: str) -> Draft202012Validator:
    schema = json.loads(schema_file(method).read_text())
    return Draft202012Validator({"$ref": f"#/$defs/{part}", **schema}, registry=REGISTRY)


def method_names() -> list[str]:
    table = load_methods()
    return sorted({*table.names(), "initialize", "$/cancelRequest"})


def method_schemas() -> list[str]:
    return sorted(
        json.loads(p.read_text())["title"]
        for p in SCHEMA_DIR.glob("*.json")
        if p.name not in SHARED_FILES
    )


def test_every_method_has_a_schema_and_every_schema_a_method() -> None:
    """The registered methods and protocol/schema/<ns>.<verb>.json are the same set."""
    assert method_names() == method_schemas()
    for method in method_names():
        assert schema_file(method).is_file(), method


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMA_DIR.glob("*.json")))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    """Each schema file is a valid draft 2020-12 schema; its params examples validate."""
    schema = json.loads((SCHEMA_DIR / name).read_text())
    Draft202012Validator.check_schema(schema)
    if name not in SHARED_FILES:
        params = validator(schema["title"], "params")
        for example in schema["$defs"]["params"]["examples"]:
            params.validate(example)


@pytest.mark.parametrize("method", load_methods().names())
def test_params_schema_matches_the_params_dataclass(method: str) -> None:
    """Field names and required fields of the schema equal those of the handler's dataclass."""
    spec = load_methods().get(method)
    assert spec is not None
    params = json.loads(schema_file(method).read_text())["$defs"]["params"]
    fields = {f.name: f for f in dataclasses.fields(spec.params_type)}
    assert set(params["properties"]) - {WORK_DONE_TOKEN} == set(fields)
    required = {
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert set(params.get("required", [])) == required
    assert params["additionalProperties"] is False


class _NoDaemon:
    """daemon/* methods are exercised end to end (tests/e2e); here nothing may call them."""

    instance_id = "unit"

    def status(self) -> dict[str, Any]:
        raise AssertionError("daemon/status is tested end to end")

    def request_shutdown(self, reason: str) -> None:
        raise AssertionError("daemon/shutdown is tested end to end")


@pytest.fixture(scope="module")
def dispatcher(configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Dispatcher:
    catalog = Catalog.load(configuration_dir)
    services: dict[str, Any] = {}
    # offline, in a cache of its own: the examples must never touch the user's real cache
    settings = Settings(cache_dir=tmp_path_factory.mktemp("schema-cache"), offline=True)

    def context(scope: RequestScope) -> MethodContext:
        return MethodContext(catalog, settings, _NoDaemon(), scope, services)

    dispatcher = Dispatcher(
        load_methods(),
        context_factory=context,
        executor=ThreadPoolExecutor(max_workers=1),
        post=_post,
    )
    return dispatcher


def _post(key: Any, frames: Any, on_loop: Any) -> None:
    if on_loop is not None:  # the dispatcher's bookkeeping, normally run on the socket loop
        on_loop()
    POSTED.put(frames)


POSTED: queue.Queue[Any] = queue.Queue()
"""Replies of heavy methods, which the dispatcher posts from its worker pool."""


EXAMPLE_CALLS = [
    (method, example)
    for method in method_schemas()
    if not method.startswith(("daemon/", "$/"))
    for example in json.loads(schema_file(method).read_text())["$defs"]["params"]["examples"]
]


@pytest.mark.parametrize(("method", "params"), EXAMPLE_CALLS, ids=[m for m, _ in EXAMPLE_CALLS])
def test_example_replies_validate_against_the_result_schema(
    dispatcher: Dispatcher, method: str, params: dict[str, Any]
) -> None:
    """Each documented example gets a result (not an error) that matches its result schema."""
    session = dispatcher.session(b"schema-test")
    session.initialized = True
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    frames = dispatcher.handle(session, encode_envelope(message, Encoding.MSGPACK))
    if frames is None:  # a heavy method: its reply is posted from the worker pool
        frames = POSTED.get(timeout=120)
    reply = msgpack.unpackb(bytes(frames[0]), raw=False)
    assert "result" in reply, reply
    validator(method, "params").validate(params)
    validator(method, "result").validate(reply["result"])
