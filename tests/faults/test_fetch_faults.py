"""The fetcher against upstreams that misbehave on purpose (a real loopback HTTP server)."""

from __future__ import annotations

import hashlib
import logging
import socket
from pathlib import Path

import pytest
from helpers.http_server import LoopbackServer
from structlog.testing import capture_logs

from siibrad.errors import (
    ChecksumMismatchError,
    DataUnavailableError,
    FetchFailedError,
    FetchTimeoutError,
)
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher
from siibrad.store.retry import Backoff

FAST = Backoff(base_s=0.01, cap_s=0.05)
BODY = b'{"name": "Area hOc1 (V1, 17, CalcS)", "data": "' + b"x" * 300_000 + b'"}'


def settings(tmp_path: Path, **changes: object) -> Settings:
    """Short timeouts and few retries, so a fault test stays quick."""
    base = Settings(
        cache_dir=tmp_path / "cache",
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        fetch_retries=2,
    )
    return Settings(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})  # type: ignore[arg-type]


def fetcher(tmp_path: Path, **changes: object) -> HttpFetcher:
    return HttpFetcher(settings(tmp_path, **changes), backoff=FAST)


def assert_not_cached(f: HttpFetcher, url: str) -> None:
    assert f.cache.record(url) is None
    assert not list(f.cache.temp_dir.glob(".part-*"))
    downloads = [p for p in f.cache.files_dir.rglob("*") if p.is_file() and ".tmp" not in p.parts]
    assert downloads == []


def test_download_then_cache_hit_without_network(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """A fetched file is served from the cache afterwards: no second request."""
    url = http_server.add("/a/area.json", BODY)
    f = fetcher(tmp_path)
    first = f.fetch(url)
    assert first.read_bytes() == BODY
    assert f.fetch(url) == first
    assert HttpFetcher(f.settings).fetch(url) == first  # a new process-like fetcher too
    assert http_server.hits("/a/area.json") == 1


def test_silent_server_fails_with_timeout_not_retried(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """A server that accepts and never answers: FetchTimeoutError after one read timeout."""
    url = http_server.add("/hang.json", BODY)
    http_server.hang("/hang.json")
    f = fetcher(tmp_path, read_timeout_s=0.5)
    with pytest.raises(FetchTimeoutError) as err:
        f.fetch(url)
    assert "0.5 s" in err.value.message
    assert http_server.hits("/hang.json") == 1
    assert_not_cached(f, url)


def test_body_stalling_mid_stream_times_out(http_server: LoopbackServer, tmp_path: Path) -> None:
    """A body that stops flowing for longer than the read timeout: FetchTimeoutError, not cached."""
    url = http_server.add("/stall.json", BODY)
    http_server.slow("/stall.json", chunk_bytes=100_000, delay_s=1.5)
    f = fetcher(tmp_path, read_timeout_s=0.3)
    with pytest.raises(FetchTimeoutError) as err:
        f.fetch(url)
    assert "stalled" in err.value.message
    assert http_server.hits("/stall.json") == 1
    assert_not_cached(f, url)


def test_unreachable_host_fails_after_retries(tmp_path: Path) -> None:
    """A refused connection is retried, then reported as FetchFailedError naming the host."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/x.json"
    with pytest.raises(FetchFailedError) as err:
        fetcher(tmp_path).fetch(url)
    assert type(err.value) is FetchFailedError
    assert f"127.0.0.1:{port}" in err.value.message


def test_500_then_success_is_retried(http_server: LoopbackServer, tmp_path: Path) -> None:
    """Two 500 answers, then the file: retried with backoff and delivered."""
    url = http_server.add("/flaky.json", BODY)
    http_server.fail("/flaky.json", 500, times=2)
    assert fetcher(tmp_path).fetch(url).read_bytes() == BODY
    assert http_server.hits("/flaky.json") == 3


def test_429_retry_after_is_honoured(http_server: LoopbackServer, tmp_path: Path) -> None:
    """A 429 with Retry-After: 1 makes the next attempt wait at least that second."""
    url = http_server.add("/busy.json", BODY)
    http_server.fail("/busy.json", 429, times=1, retry_after="1")
    assert fetcher(tmp_path).fetch(url).read_bytes() == BODY
    first, second = (r.at for r in http_server.requests if r.path == "/busy.json")
    assert second - first >= 0.95


def test_persistent_503_fails_after_the_configured_retries(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """A server that keeps answering 503 gets fetch_retries + 1 attempts, then FetchFailedError."""
    url = http_server.add("/down.json", BODY)
    http_server.fail("/down.json", 503, times=None)
    f = fetcher(tmp_path, fetch_retries=3)
    with pytest.raises(FetchFailedError) as err:
        f.fetch(url)
    assert "503" in err.value.message
    assert http_server.hits("/down.json") == 4
    assert_not_cached(f, url)


def test_truncated_body_is_retried(http_server: LoopbackServer, tmp_path: Path) -> None:
    """A body cut short of its Content-Length is retried and the full file delivered."""
    url = http_server.add("/cut.json", BODY)
    http_server.truncate("/cut.json", keep_bytes=1000, times=1)
    assert fetcher(tmp_path).fetch(url).read_bytes() == BODY
    assert http_server.hits("/cut.json") == 2


def test_always_truncated_body_fails_and_is_never_cached(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """A body that is always cut short fails with FetchFailedError and leaves nothing behind."""
    url = http_server.add("/cut.json", BODY)
    http_server.truncate("/cut.json", keep_bytes=1000, times=None)
    f = fetcher(tmp_path)
    with pytest.raises(FetchFailedError):
        f.fetch(url)
    assert_not_cached(f, url)


def test_wrong_content_fails_checksum_and_is_never_cached(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """Content whose sha256 differs from the expected one raises ChecksumMismatchError."""
    url = http_server.add("/v.json", BODY)
    http_server.wrong("/v.json", b'{"tampered": true}')
    f = fetcher(tmp_path)
    expected = hashlib.sha256(BODY).hexdigest()
    with pytest.raises(ChecksumMismatchError) as err:
        f.fetch(url, expected_sha256=expected)
    assert err.value.data["expected_sha256"] == expected
    assert_not_cached(f, url)
    http_server.clear_faults()
    assert f.fetch(url, expected_sha256=expected).read_bytes() == BODY


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/map.nii.gz", b"<!DOCTYPE html><html><body>Please log in</body></html>"),
        ("/spec.json", b'{"truncated": '),
        ("/bundle.zip", b"not a zip at all"),
    ],
)
def test_undecodable_content_is_refused(
    http_server: LoopbackServer, tmp_path: Path, path: str, body: bytes
) -> None:
    """A login page as .nii.gz, broken JSON, a non-zip .zip: ChecksumMismatchError, not cached."""
    url = http_server.add(path, body)
    f = fetcher(tmp_path)
    with pytest.raises(ChecksumMismatchError):
        f.fetch(url)
    assert_not_cached(f, url)


def test_404_names_the_url_and_the_mirror_setting(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """A 404 raises DataUnavailableError naming the URL and SIIBRAD_MIRRORS, without retries."""
    url = f"{http_server.url}/missing/file.nii.gz"
    with pytest.raises(DataUnavailableError) as err:
        fetcher(tmp_path).fetch(url)
    assert type(err.value) is DataUnavailableError
    assert url in err.value.message and "SIIBRAD_MIRRORS" in err.value.message
    assert err.value.data["url"] == url
    assert err.value.data["mirrors_setting"] == "SIIBRAD_MIRRORS"
    assert http_server.hits("/missing/file.nii.gz") == 1


def test_size_cap_refuses_large_bodies(http_server: LoopbackServer, tmp_path: Path) -> None:
    """A body over max_bytes is refused (not retried) and not cached."""
    url = http_server.add("/big.json", BODY)
    f = fetcher(tmp_path)
    with pytest.raises(FetchFailedError) as err:
        f.fetch(url, max_bytes=1000)
    assert err.value.data["max_bytes"] == 1000
    assert http_server.hits("/big.json") == 1
    assert_not_cached(f, url)


def test_progress_reports_bytes_and_total(http_server: LoopbackServer, tmp_path: Path) -> None:
    """The progress callback sees growing byte counts and the announced total."""
    url = http_server.add("/p.json", BODY)
    seen: list[tuple[int, int | None]] = []
    fetcher(tmp_path).fetch(url, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_url_mirror_is_tried_before_the_origin(http_server: LoopbackServer, tmp_path: Path) -> None:
    """With a mirror the origin is not contacted; when the mirror lacks the file, the origin is."""
    origin = http_server.add("/origin/a.json", b'{"from": "origin"}')
    http_server.add("/mirror/a.json", b'{"from": "mirror"}')
    rule = f"{http_server.url}/origin={http_server.url}/mirror"
    f = fetcher(tmp_path, mirrors=rule)
    assert f.fetch(origin).read_bytes() == b'{"from": "mirror"}'
    assert http_server.hits("/origin/a.json") == 0
    only_origin = http_server.add("/origin/b.json", b'{"from": "origin"}')
    assert f.fetch(only_origin).read_bytes() == b'{"from": "origin"}'
    assert http_server.hits("/mirror/b.json") == 1


def test_offline_never_contacts_the_origin(http_server: LoopbackServer, tmp_path: Path) -> None:
    """SIIBRAD_OFFLINE: only mirrors are used; a miss says so instead of calling the origin."""
    url = http_server.add("/o.json", b"{}")
    with pytest.raises(DataUnavailableError) as err:
        fetcher(tmp_path, offline=True).fetch(url)
    assert "offline" in err.value.message
    assert http_server.hits("/o.json") == 0


def test_local_directory_mirror_is_used_in_place(tmp_path: Path) -> None:
    """A directory mirror returns the file where it is (no copy, no network) after checking it."""
    mirror = tmp_path / "mirror"
    (mirror / "api" / "v1").mkdir(parents=True)
    (mirror / "api" / "v1" / "x.json").write_bytes(b"[1, 2]")
    f = fetcher(tmp_path, mirrors=f"https://data-proxy.ebrains.eu={mirror}", offline=True)
    path = f.fetch("https://data-proxy.ebrains.eu/api/v1/x.json")
    assert path == mirror / "api" / "v1" / "x.json"
    with pytest.raises(ChecksumMismatchError):
        f.fetch("https://data-proxy.ebrains.eu/api/v1/x.json", expected_sha256="0" * 64)
    with pytest.raises(DataUnavailableError) as err:
        f.fetch("https://data-proxy.ebrains.eu/api/v1/absent.json")
    assert "absent.json" in err.value.message
    assert f.cache.record("https://data-proxy.ebrains.eu/api/v1/x.json") is None


def test_token_reaches_ebrains_hosts_only_and_is_never_logged(
    http_server: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The EBRAINS token goes to the EBRAINS host, not to a mirror on another host, nor to logs."""
    token = "tok-SECRET-0123456789"
    direct = http_server.add("/ebrains/a.json", b'{"a": 1}')
    http_server.add("/mirror/b.json", b'{"b": 2}')
    mirrored = f"{http_server.url}/ebrains/b.json"
    missing = f"{http_server.url}/ebrains/missing.json"
    rule = f"{http_server.url}/ebrains/b.json=http://localhost:{http_server.port}/mirror/b.json"
    # 127.0.0.1 stands in for the EBRAINS hosts; "localhost" is the mirror's other host.
    f = HttpFetcher(
        settings(tmp_path, ebrains_token=token, mirrors=rule),
        backoff=FAST,
        token_hosts=["127.0.0.1"],
    )
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        f.fetch(direct)
        f.fetch(mirrored)
        with pytest.raises(DataUnavailableError) as err:
            f.fetch(missing)
    by_path = {r.path: r.headers for r in http_server.requests}
    assert by_path["/ebrains/a.json"].get("Authorization") == f"Bearer {token}"
    assert "Authorization" not in by_path["/mirror/b.json"]
    assert token not in repr(events) and token not in caplog.text
    assert token not in repr(err.value.to_wire())
    assert token not in repr(f.settings)


def test_token_is_dropped_when_a_redirect_leaves_the_ebrains_host(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """An EBRAINS answer redirecting to another host (object storage) does not carry the token."""
    token = "tok-SECRET-redirect"
    url = f"{http_server.url}/ebrains/r.json"
    http_server.redirect("/ebrains/r.json", f"http://localhost:{http_server.port}/store/r.json")
    http_server.add("/store/r.json", b'{"r": 1}')
    f = HttpFetcher(
        settings(tmp_path, ebrains_token=token), backoff=FAST, token_hosts=["127.0.0.1"]
    )
    assert f.fetch(url).read_bytes() == b'{"r": 1}'
    by_path = {r.path: r.headers for r in http_server.requests}
    assert by_path["/ebrains/r.json"].get("Authorization") == f"Bearer {token}"
    assert "Authorization" not in by_path["/store/r.json"]


def test_prefix_mirror_serves_the_real_files_of_mirror_tsv(
    http_server: LoopbackServer, tmp_path: Path, shared_data: Path
) -> None:
    """A data-proxy prefix mirror on loopback delivers the real files listed in MIRROR.tsv."""
    rows = [
        line.split("\t")
        for line in (shared_data / "MIRROR.tsv").read_text().splitlines()[1:]
        if line.startswith("https://data-proxy.ebrains.eu/")
    ][:3]
    assert rows, "MIRROR.tsv lists no data-proxy URL"
    prefix = "https://data-proxy.ebrains.eu"
    for url, rel, *_ in rows:
        http_server.add_file("/data-proxy.ebrains.eu" + url[len(prefix) :], shared_data / rel)
    f = fetcher(tmp_path, mirrors=f"{prefix}={http_server.url}/data-proxy.ebrains.eu", offline=True)
    for url, rel, *_ in rows:
        real = shared_data / rel
        expected = hashlib.sha256(real.read_bytes()).hexdigest()
        got = f.fetch(url, expected_sha256=expected)
        assert got.read_bytes() == real.read_bytes()
        assert got.name.endswith(Path(url).name[-40:])
