"""The download cache: verified reads, atomic publication, LRU eviction that spares files in use."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from siibrad.settings import Settings
from siibrad.store import cache as cache_module
from siibrad.store.cache import DownloadCache, cache_status, file_name
from siibrad.store.download import Downloaded


def put(cache: DownloadCache, url: str, data: bytes) -> Path:
    """Publish ``data`` as the download of ``url``, the way the fetcher does."""
    part = cache.new_part_dir() / f".part-test.{os.getpid()}"
    part.write_bytes(data)
    done = Downloaded(part, hashlib.sha256(data).hexdigest(), len(data), url, '"e1"', None)
    with cache.lock(url):
        return cache.store(url, done, via="origin")


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[DownloadCache]:
    store = DownloadCache(Settings(cache_dir=tmp_path / "cache"), grace_s=0.0)
    yield store
    store.close()


def test_stored_file_keeps_its_name_and_is_found_again(cache: DownloadCache) -> None:
    """A published download keeps the URL's file name and is returned by lookup."""
    path = put(cache, "https://h.org/a/map.nii.gz", b"\x1f\x8bdata")
    assert path.name.endswith("-map.nii.gz")
    assert cache.lookup("https://h.org/a/map.nii.gz") == path
    rec = cache.record("https://h.org/a/map.nii.gz")
    assert rec is not None and rec["size_bytes"] == 6 and rec["etag"] == '"e1"'
    assert not list(cache.temp_dir.iterdir())


def test_altered_file_is_detected_and_dropped(cache: DownloadCache) -> None:
    """A cached file changed in place (same size) fails its sha256 and is not returned."""
    url = "https://h.org/x.json"
    path = put(cache, url, b'{"a": 1}')
    path.write_bytes(b'{"a": 2}')
    assert cache.lookup(url) is None
    assert cache.record(url) is None


def test_large_file_is_rehashed_when_its_stat_changes(
    cache: DownloadCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the full-verify size a changed mtime triggers a re-hash that catches the change."""
    monkeypatch.setattr(cache_module, "FULL_VERIFY_MAX_BYTES", 0)
    url = "https://h.org/big.bin"
    path = put(cache, url, b"a" * 1000)
    assert cache.lookup(url) == path
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cache.lookup(url) is None


def test_missing_file_or_other_checksum_is_a_miss(cache: DownloadCache) -> None:
    """A deleted file, or a caller expecting other content, gets no hit."""
    url = "https://h.org/y.json"
    path = put(cache, url, b"[]")
    assert cache.lookup(url, expected_sha256="0" * 64) is None
    assert cache.lookup(url, expected_sha256=hashlib.sha256(b"[]").hexdigest()) == path
    path.unlink()
    assert cache.lookup(url) is None


def test_eviction_goes_least_recently_used_first(cache: DownloadCache) -> None:
    """Over the cap, the least recently used files are evicted until the rest fits."""
    urls = [f"https://h.org/{i}.bin" for i in range(3)]
    for i, url in enumerate(urls):
        put(cache, url, bytes([i]) * 100)
    index = cache.index
    for i, url in enumerate(urls):
        index.set("download:" + url, {**cache.record(url), "used_at": 1000.0 + i})  # type: ignore[dict-item]
    assert cache.evict(max_bytes=150) == [urls[0], urls[1]]
    assert cache.lookup(urls[2]) is not None
    assert cache.record(urls[0]) is None


def test_eviction_spares_pinned_and_recent_files_and_open_handles_survive(tmp_path: Path) -> None:
    """Pinned files and files used within the grace period stay; an open handle still reads."""
    cache = DownloadCache(Settings(cache_dir=tmp_path / "cache"), grace_s=3600.0)
    old, pinned, recent = "https://h.org/old", "https://h.org/pinned", "https://h.org/recent"
    for url in (old, pinned, recent):
        put(cache, url, b"z" * 100)
    for url in (old, pinned):
        cache.index.set("download:" + url, {**cache.record(url), "used_at": 0.0})  # type: ignore[dict-item]
    old_path = cache.lookup(old)
    assert old_path is not None
    cache.index.set("download:" + old, {**cache.record(old), "used_at": 0.0})  # type: ignore[dict-item]
    with old_path.open("rb") as handle, cache.pinned(pinned) as pinned_path:
        assert pinned_path is not None
        assert cache.evict(max_bytes=0) == [old]
        assert handle.read() == b"z" * 100
    assert cache.record(pinned) is not None and cache.record(recent) is not None
    cache.close()


def test_sweep_removes_parts_of_dead_processes_only(cache: DownloadCache) -> None:
    """Leftovers of a dead local process go; a live process's part stays."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    host = socket.gethostname().replace(".", "_")
    mine = cache.new_part_dir() / f".part-abc.{host}.{os.getpid()}"
    theirs = cache.new_part_dir() / f".part-def.{host}.{dead.stdout.strip()}"
    mine.write_bytes(b"1")
    theirs.write_bytes(b"2")
    assert cache.sweep_parts() == 1
    assert mine.exists() and not theirs.exists()


def test_status_reports_entries_bytes_location_and_kinds(tmp_path: Path) -> None:
    """cache_status counts downloads, and other cache folders as their own kinds."""
    settings = Settings(cache_dir=tmp_path / "cache")
    assert cache_status(settings)["entries"] == 0
    cache = DownloadCache(settings)
    put(cache, "https://h.org/a", b"x" * 10)
    put(cache, "https://h.org/b", b"y" * 30)
    cache.close()
    (tmp_path / "cache" / "maps").mkdir()
    (tmp_path / "cache" / "maps" / "m.npy").write_bytes(b"0" * 5)
    status = cache_status(settings)
    assert status["location"] == str(tmp_path / "cache")
    assert status["kinds"]["download"] == {"entries": 2, "size_bytes": 40}
    assert status["kinds"]["maps"] == {"entries": 1, "size_bytes": 5}
    assert (status["entries"], status["size_bytes"]) == (3, 45)


def test_file_names_are_safe() -> None:
    """URL file names are kept but never carry path separators or leading dots."""
    assert file_name("https://h.org/..%2F..%2Fetc%2Fpasswd") == "_.._etc_passwd"
    assert file_name("https://h.org/") == "data"


def test_verify_drops_altered_files_and_clear_spares_pins(cache: DownloadCache) -> None:
    """verify() re-hashes everything and drops changed files; clear() keeps pinned ones."""
    good, bad, pinned = "https://h.org/good", "https://h.org/bad", "https://h.org/pinned"
    for url in (good, bad, pinned):
        put(cache, url, b"q" * 64)
    bad_path = cache.lookup(bad)
    assert bad_path is not None
    bad_path.write_bytes(b"r" * 64)
    assert cache.verify() == {"checked": 3, "dropped": [bad]}
    assert not bad_path.exists()
    with cache.pinned(pinned):
        assert cache.clear() == [good]
    assert cache.record(pinned) is not None and cache.record(good) is None
