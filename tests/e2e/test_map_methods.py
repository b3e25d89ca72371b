"""map/assign, map/values, map/fetch and cache/status against a real daemon over the real mirror."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from helpers.mirror import *  # noqa: F403  (the fixtures)
from helpers.mirror import MirrorServer
from siibrad_client import Client
from siibrad_client.errors import (
    InvalidPointsError,
    MapNotFoundError,
    SpaceMismatchError,
)

from siibrad.catalog import Catalog
from siibrad.maps.store import MapStore

LABELLED = {"parcellation": "julich 3.1", "space": "mni152", "maptype": "labelled"}
READY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def daemon(
    shared_data: Path, mirror_server: MirrorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """A real ``siibrad serve`` whose mirrors point at the loopback EBRAINS, offline."""
    base = tmp_path_factory.mktemp("map-daemon")
    runtime = Path(tempfile.mkdtemp(prefix="sdm-"))  # short: unix socket path limit
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIIBRAD_")}
    env.update(
        SIIBRAD_CONFIGURATION=str(shared_data / "siibra-configurations"),
        SIIBRAD_EXTENSIONS=str(shared_data / "extensions" / "fsl-juelich"),
        SIIBRAD_CACHE_DIR=str(base / "cache"),
        SIIBRAD_MIRRORS=mirror_server.mirrors_setting,
        SIIBRAD_OFFLINE="1",
        SIIBRAD_LOG_FORMAT="json",
    )
    log = (base / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "siibrad", "serve", "--runtime-dir", str(runtime)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    info = runtime / "daemon.json"
    while not info.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"daemon not ready:\n{(base / 'daemon.log').read_text()}")
        time.sleep(0.05)
    try:
        yield proc, json.loads(info.read_text())["endpoints"]["zmq"], base / "cache"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def client(daemon: tuple[Any, str, Path]) -> Iterator[Client]:
    with Client(daemon[1], autostart=False, timeout_s=300) as c:
        yield c


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.random.default_rng(5).uniform([-70, -105, -50], [70, 70, 80], (2000, 3))


def test_assign_over_zmq_frames_equals_the_in_process_answer(
    client: Client, shared_map_store: MapStore, maps_catalog: Catalog, points: np.ndarray
) -> None:
    """An N×3 float64 frame in, columns out: the same rows as the domain in process."""
    reply = client.call("map/assign", {**LABELLED, "points": points})
    local = shared_map_store.assign(maps_catalog.map("julich 3.1", "mni152"), points)
    columns = reply["columns"]
    assert reply["count"] == len(local) > 100
    assert np.asarray(columns["point"]).tolist() == local.point.tolist()
    assert columns["region"] == local.region_names()
    assert np.asarray(columns["label"]).tolist() == local.label.tolist()
    assert set(columns) >= {"point", "region", "region_id", "region_key", "volume", "fragment"}


def test_assign_with_nested_lists_in_json(daemon: tuple[Any, str, Path]) -> None:
    """A JSON client sending nested lists gets the same answer as a msgpack one."""
    with Client(daemon[1], autostart=False, timeout_s=120, encoding="json") as c:
        reply = c.call("map/assign", {**LABELLED, "points": [[-8.0, -90.0, 4.0]]})
    assert reply["columns"]["region"] == ["Area hOc1 (V1, 17, CalcS) left"]


def test_bad_points_and_specs_are_typed_errors(client: Client, maps_catalog: Catalog) -> None:
    """NaN rows, an unknown map and a foreign space come back as their error types."""
    with pytest.raises(InvalidPointsError) as info:
        client.call("map/assign", {**LABELLED, "points": np.array([[0, 0, 0], [np.nan, 0, 0]])})
    assert info.value.data["rows"] == [1]
    with pytest.raises(MapNotFoundError):
        client.call("map/assign", {"map": "no such map at all", "points": [[0.0, 0.0, 0.0]]})
    labelled_id = maps_catalog.map("julich 3.1", "mni152").id
    with pytest.raises(SpaceMismatchError):
        client.call("map/assign", {"map": labelled_id, "space": "colin", "points": [[0, 0, 0]]})


def test_statistical_values_and_missing_regions(client: Client) -> None:
    """map/values gives N×R with the 50 unavailable Julich-Brain 1.18 regions named and NaN."""
    reply = client.call(
        "map/values",
        {
            "parcellation": "julich 1.18",
            "space": "mni152",
            "maptype": "statistical",
            "points": [[-8.0, -90.0, 4.0]],
        },
        timeout_s=600,
    )
    values = np.asarray(reply["values"])
    assert values.shape == (1, 212)
    assert len(reply["missing_regions"]) == 50
    names = [r["name"] for r in reply["regions"]]
    assert values[0, names.index("Area hOc1 (V1, 17, CalcS) left")] > 0.5
    assert int(np.isnan(values).sum()) == 50


def test_fetch_region_mask_as_path_and_as_array(client: Client) -> None:
    """map/fetch returns the same mask as a NIfTI path in the cache and as an array frame."""
    by_path = client.call("map/fetch", {**LABELLED, "region": "hoc1 left"})
    img = nib.load(by_path["path"])
    by_array = client.call("map/fetch", {**LABELLED, "region": "hoc1 left", "output": "array"})
    array = np.asarray(by_array["array"])
    np.testing.assert_array_equal(np.asarray(img.dataobj), array)
    np.testing.assert_array_equal(img.affine, np.asarray(by_array["affine"]))
    assert by_array["region"] == "Area hOc1 (V1, 17, CalcS) left"
    assert 1000 < int(array.sum()) < 100_000


def test_cache_status_reports_warm_maps(client: Client) -> None:
    """cache/status lists the warm maps with sizes and the memory budget."""
    client.call("map/assign", {**LABELLED, "points": [[-8.0, -90.0, 4.0]]})
    status = client.call("cache/status")
    warm = {m["map"]: m for m in status["maps"]["warm_maps"]}
    assert any("jba31" in key for key in warm)
    assert status["maps"]["memory_budget_bytes"] > 0


def test_cache_clear_forgets_a_map_and_the_next_request_rebuilds_it(client: Client) -> None:
    """cache/clear drops the warm copy and the sparse index; the answer after it is the same."""
    fsl = {"parcellation": "fsl juelich", "space": "mni152", "maptype": "statistical"}
    point = {**fsl, "points": [[-8.0, -90.0, 4.0]]}
    first = client.call("map/assign", point)
    assert first["count"] > 0
    cleared = client.call("cache/clear", fsl)
    assert cleared["map"]["id"] == first["map"]["id"]
    assert cleared["dropped_warm"] and cleared["removed_bytes"] > 0
    warm = {m["map"] for m in client.call("cache/status")["maps"]["warm_maps"]}
    assert first["map"]["id"] not in warm
    again = client.call("map/assign", point)
    assert again["columns"]["region"] == first["columns"]["region"]
    np.testing.assert_array_equal(again["columns"]["map_value"], first["columns"]["map_value"])
    labelled = client.call("cache/clear", LABELLED)  # no index on disk: only the warm copy goes
    assert labelled["removed_bytes"] == 0
    with pytest.raises(MapNotFoundError):
        client.call("cache/clear", {"map": "no such map anywhere"})
