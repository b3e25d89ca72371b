"""Precomputed volumes from servers that misbehave: absent files are zeros, broken ones errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.http_server import LoopbackServer
from structlog.testing import capture_logs

from siibrad.errors import DataUnavailableError, FetchFailedError, UnsupportedError
from siibrad.maps.array_cache import DecodedArray, DecodedArrayCache
from siibrad.maps.precomputed.chunks import chunk_boxes
from siibrad.maps.precomputed.info import parse_info
from siibrad.maps.precomputed.sharding import compressed_morton_codes, shard_locations
from siibrad.maps.volumes import PROVIDERS
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher
from siibrad.store.retry import Backoff

BIGBRAIN = "bigbrain/full_cls_1000um.nii.gz"
JBA31_LH = "julich-brain/v3.1-mpm-mni152/JulichBrainAtlas31_LH.nii.gz"
FAST = Backoff(base_s=0.01, cap_s=0.05)


def settings(tmp_path: Path, **changes: object) -> Settings:
    """Direct loopback access, short timeouts, one retry."""
    return Settings.from_env(
        {},
        cache_dir=tmp_path / "cache",
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
        fetch_retries=1,
        **changes,
    )


def serve(server: LoopbackServer, shared_data: Path, name: str) -> str:
    """Serve one dataset folder under ``/ds``; its URL."""
    return server.add_directory("/ds", shared_data / "precomputed" / name)


def load(url: str, tmp_path: Path, **changes: object) -> DecodedArray:
    return PROVIDERS["neuroglancer/precomputed"].load(
        url,
        fetcher=HttpFetcher(settings(tmp_path, **changes), backoff=FAST),
        arrays=DecodedArrayCache(tmp_path / "arrays"),
    )


def nifti(shared_data: Path, relative: str) -> np.ndarray:
    return np.asarray(nib.load(shared_data / relative).dataobj)


def no_decoded_entry(tmp_path: Path) -> bool:
    return not list((tmp_path / "arrays").rglob("*.npy"))


FAILING = {  # dataset, the file that fails, its status
    "chunk": ("jba31-mpm-lh-cseg", "/ds/1mm/64-128_64-128_64-128.gz", 500),
    "shard": ("bigbrain-cls-1mm-sharded-gzip", "/ds/1mm/3.shard", 503),
    "transform": ("bigbrain-cls-1mm-sharded-gzip", "/ds/transform.json", 500),
}


@pytest.mark.parametrize("failing", sorted(FAILING))
def test_a_file_the_server_fails_on_is_an_error_not_zeros(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path, failing: str
) -> None:
    """A chunk, shard or transform.json answering 5xx (after retries) raises; nothing is cached."""
    name, path, status = FAILING[failing]
    url = serve(http_server, shared_data, name)
    http_server.fail(path, status, times=None)
    with pytest.raises(FetchFailedError) as err:
        load(url, tmp_path)
    assert isinstance(err.value, DataUnavailableError)
    assert err.value.data["status"] == status and "absent" not in err.value.data
    assert err.value.data["url"].endswith(path.removeprefix("/ds"))
    assert no_decoded_entry(tmp_path)


def test_missing_chunk_reads_as_zeros(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """A chunk that exists in neither form (404) leaves its box zero; the rest is intact."""
    url = serve(http_server, shared_data, "bigbrain-cls-1mm-raw-gzip")
    http_server.fail("/ds/1mm/32-64_64-96_32-64.gz", 404, times=None)
    decoded = load(url, tmp_path)
    expected = nifti(shared_data, BIGBRAIN).copy()
    assert expected[32:64, 64:96, 32:64].any()
    expected[32:64, 64:96, 32:64] = 0
    np.testing.assert_array_equal(decoded.array, expected)


def test_missing_shard_reads_as_zeros(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """An absent shard file (404) leaves every chunk it holds zero; the other shard is intact."""
    name = "bigbrain-cls-1mm-sharded-raw"
    url = serve(http_server, shared_data, name)
    http_server.fail("/ds/1mm/1.shard", 404, times=None)
    decoded = load(url, tmp_path)
    info = parse_info((shared_data / "precomputed" / name / "info").read_bytes(), url)
    scale = info.scales[0]
    assert scale.sharding is not None
    boxes = list(chunk_boxes(scale))
    ids = compressed_morton_codes(np.array([b.cell for b in boxes]), (5, 5, 4))
    shards, _ = shard_locations(ids, scale.sharding)
    expected = nifti(shared_data, BIGBRAIN).copy()
    for box, shard in zip(boxes, shards.tolist(), strict=True):
        if shard == 1:
            expected[
                box.start[0] : box.stop[0], box.start[1] : box.stop[1], box.start[2] : box.stop[2]
            ] = 0
    assert 0 < int((shards == 1).sum()) < len(boxes)
    assert not np.array_equal(expected, nifti(shared_data, BIGBRAIN))
    np.testing.assert_array_equal(decoded.array, expected)


def test_corrupt_chunk_is_data_unavailable_naming_it(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """Bytes that do not decode raise DataUnavailableError with the chunk URL and encoding."""
    url = serve(http_server, shared_data, "jba31-mpm-lh-cseg")
    http_server.wrong("/ds/1mm/0-64_64-128_64-128.gz", gzip.compress(b"not a chunk"))
    with pytest.raises(DataUnavailableError) as err:
        load(url, tmp_path)
    assert err.value.data["url"].endswith("/1mm/0-64_64-128_64-128.gz")
    assert err.value.data["encoding"] == "compressed_segmentation"
    assert "corrupt chunk" in err.value.message
    assert no_decoded_entry(tmp_path)


def test_corrupt_shard_is_data_unavailable(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """A shard shorter than its own index raises DataUnavailableError naming the shard."""
    url = serve(http_server, shared_data, "bigbrain-cls-1mm-sharded-raw")
    http_server.wrong("/ds/1mm/0.shard", b"\x00" * 10)
    with pytest.raises(DataUnavailableError, match="corrupt shard") as err:
        load(url, tmp_path)
    assert err.value.data["url"].endswith("/1mm/0.shard")


def test_malformed_or_unsupported_info_is_a_clear_error(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """An info without num_channels is malformed; one with three channels is unsupported."""
    url = serve(http_server, shared_data, "mni152-t1-jpeg")
    doc = json.loads((shared_data / "precomputed/mni152-t1-jpeg/info").read_bytes())
    http_server.wrong("/ds/info", json.dumps({**doc, "num_channels": None}).encode(), times=1)
    with pytest.raises(DataUnavailableError) as err:
        load(url, tmp_path / "a")
    assert err.value.data["field"] == "num_channels"
    assert url in err.value.message
    http_server.wrong("/ds/info", json.dumps({**doc, "num_channels": 3}).encode(), times=1)
    with pytest.raises(UnsupportedError, match=r"num_channels 3: .*one-channel"):
        load(url, tmp_path / "b")


def test_missing_transform_means_identity_with_a_warning(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """No transform.json (404): siibra's identity placement (plus half a voxel), and a warning."""
    url = serve(http_server, shared_data, "bigbrain-cls-1mm-sharded-gzip")
    http_server.fail("/ds/transform.json", 404, times=None)
    with capture_logs() as logs:
        decoded = load(url, tmp_path)
    expected = np.eye(4)
    expected[:3, 3] = 0.5
    np.testing.assert_array_equal(decoded.affine, expected)
    assert any(e["event"] == "precomputed_transform_missing" for e in logs)


def test_a_scale_without_any_chunk_is_an_error(
    http_server: LoopbackServer, shared_data: Path, tmp_path: Path
) -> None:
    """info present, no chunk at all (a wrong layout or URL): DataUnavailableError, not zeros."""
    folder = shared_data / "precomputed" / "jba31-mpm-lh-cseg"
    http_server.add_file("/only-info/info", folder / "info")
    http_server.add_file("/only-info/transform.json", folder / "transform.json")
    with pytest.raises(DataUnavailableError, match="none of the 36 chunks"):
        load(http_server.url + "/only-info", tmp_path)
    assert no_decoded_entry(tmp_path)


# --- the fetcher's "absent" marker that the reader relies on -------------------------------------


def test_fetcher_marks_404_absent_and_5xx_or_offline_not(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """data.absent: set for 404 (and a local mirror without the file), never for 5xx or offline."""
    fetcher = HttpFetcher(settings(tmp_path), backoff=FAST)
    with pytest.raises(DataUnavailableError) as err:
        fetcher.fetch(http_server.url + "/nothing-here")
    assert type(err.value) is DataUnavailableError and err.value.data["absent"] is True
    http_server.fail("/broken", 500, times=None)
    with pytest.raises(FetchFailedError) as failed:
        fetcher.fetch(http_server.url + "/broken")
    assert "absent" not in failed.value.data

    origin = "https://data-proxy.ebrains.eu"
    offline = HttpFetcher(settings(tmp_path, offline=True), backoff=FAST)
    with pytest.raises(DataUnavailableError) as skipped:
        offline.fetch(origin + "/api/v1/x")  # no mirror: nobody said the file does not exist
    assert "absent" not in skipped.value.data
    (tmp_path / "mirror").mkdir()
    mirrored = HttpFetcher(
        settings(tmp_path, offline=True, mirrors=f"{origin}={tmp_path / 'mirror'}"), backoff=FAST
    )
    with pytest.raises(DataUnavailableError) as missing:
        mirrored.fetch(origin + "/api/v1/x")
    assert missing.value.data["absent"] is True
