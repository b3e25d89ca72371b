"""The per-user download cache: files under ``cache_dir/downloads``, indexed by diskcache.

Layout (all under ``settings.cache_dir``)::

    index/                    diskcache (SQLite, JSON values): "download:<url>" and
                              "configuration:<spec>" records
    downloads/ab/<hash>-name  one file per URL, keeping the URL's file name (nibabel needs it)
    downloads/.tmp/           downloads in progress (".part-*"), renamed into place when done
    locks/<hash>.lock         one lock file per URL (fcntl.flock; released by the kernel when
                              the holder dies, so a killed download never blocks the next one)
    configurations/           extracted configuration trees (see siibrad.store.configuration)

Contract: a file is published by an atomic rename, then recorded in the index; readers look up
the index and verify the file (size always; the full sha256 when the file is small or its
inode or mtime changed since it was recorded), so a half-written or altered file is never
returned: it is dropped and fetched again. Several processes may share the cache: SQLite keeps
the index consistent and the per-URL lock lets only one of them download a URL.

Eviction (``download_cache_max_bytes``, default 20 GiB): after a download that takes the
downloads over the cap, least recently used files go first, except files used in the last
``grace_s`` seconds (a caller that just got a path has not opened it yet), files pinned with
:meth:`DownloadCache.pinned`, and files whose lock is held. Files are unlinked, never
truncated, so a process that has one open or memory-mapped keeps reading it intact. Files
served in place from a local mirror are not in the cache and never evicted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import diskcache
import structlog

from siibrad.errors import FetchTimeoutError
from siibrad.settings import Settings
from siibrad.store.download import Downloaded

log = structlog.get_logger("siibrad.store")

FULL_VERIFY_MAX_BYTES = 32 * 1024**2
"""Cached files up to this size are re-hashed on every read; larger ones when their stat changed."""
USED_AT_RESOLUTION_S = 60.0
STALE_PART_AGE_S = 24 * 3600.0
DOWNLOAD_KEY = "download:"
CONFIGURATION_KEY = "configuration:"


def url_hash(url: str) -> str:
    """The sha256 of ``url``, naming its file and lock."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def file_name(url: str) -> str:
    """A safe local file name keeping the URL's own name and suffix.

    >>> file_name("https://x.org/a/JulichBrain%20v3.nii.gz?x=1")
    'JulichBrain_v3.nii.gz'
    """
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "data"
    return name if len(name) <= 80 else name[:40] + name[-40:]


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DownloadCache:
    """The download cache of one ``cache_dir``: cheap to create, shared by threads and processes."""

    def __init__(self, settings: Settings, *, grace_s: float = 600.0) -> None:
        self.root = Path(settings.cache_dir).expanduser()
        self.files_dir = self.root / "downloads"
        self.temp_dir = self.files_dir / ".tmp"
        self.locks_dir = self.root / "locks"
        self.max_bytes = settings.download_cache_max_bytes
        self.grace_s = grace_s
        self._index: diskcache.Cache | None = None

    # --- index ------------------------------------------------------------------------------

    @property
    def index(self) -> diskcache.Cache:
        """The diskcache index (opened on first use; JSON values, so nothing is unpickled)."""
        if self._index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            # Eviction is ours (it must respect pins and locks); diskcache must never cull.
            self._index = diskcache.Cache(
                str(self.root / "index"), disk=diskcache.JSONDisk, eviction_policy="none"
            )
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def record(self, url: str) -> dict[str, Any] | None:
        """The index record of ``url`` (not verified), or ``None``."""
        value = self.index.get(DOWNLOAD_KEY + url)
        return value if isinstance(value, dict) else None

    # --- locks ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, url: str, *, timeout_s: float = 3600.0, shared: bool = False) -> Iterator[None]:
        """Hold the cross-process lock of ``url`` (exclusive to download, shared to pin)."""
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        path = self.locks_dir / f"{url_hash(url)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            deadline = time.monotonic() + timeout_s
            delay_s = 0.01
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise FetchTimeoutError(
                            f"another process has held the download lock of {url} for more "
                            f"than {timeout_s:.0f} s",
                            url=url,
                        ) from None
                    time.sleep(delay_s)
                    delay_s = min(delay_s * 2, 0.25)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    @contextlib.contextmanager
    def pinned(self, url: str) -> Iterator[Path | None]:
        """Keep the cached file of ``url`` from eviction while the block runs."""
        with self.lock(url, shared=True):
            yield self.lookup(url)

    # --- read -------------------------------------------------------------------------------

    def lookup(self, url: str, expected_sha256: str | None = None) -> Path | None:
        """The verified cached file of ``url``, or ``None`` (a bad entry is dropped)."""
        rec = self.record(url)
        if rec is None:
            return None
        path = self.root / str(rec.get("path", ""))
        if expected_sha256 is not None and rec.get("sha256") != expected_sha256.lower():
            return None
        try:
            st = path.stat()
        except OSError:
            self._drop(url, rec, "file missing")
            return None
        if st.st_size != rec.get("size_bytes"):
            self._drop(url, rec, "size changed")
            return None
        changed = (st.st_ino, st.st_mtime_ns) != (rec.get("inode"), rec.get("mtime_ns"))
        if (changed or st.st_size <= FULL_VERIFY_MAX_BYTES) and sha256_of(path) != rec.get(
            "sha256"
        ):
            self._drop(url, rec, "sha256 changed")
            return None
        now = time.time()
        if changed or now - float(rec.get("used_at", 0.0)) > USED_AT_RESOLUTION_S:
            # Compare-and-set: never overwrite a record another process just replaced.
            with self.index.transact():
                if self.index.get(DOWNLOAD_KEY + url) == rec:
                    self.index.set(
                        DOWNLOAD_KEY + url,
                        {**rec, "used_at": now, "inode": st.st_ino, "mtime_ns": st.st_mtime_ns},
                    )
        return path

    def _drop(self, url: str, rec: dict[str, Any], reason: str) -> None:
        log.warning("cache.invalid", url=url, reason=reason, path=rec.get("path"))
        # Only delete the exact entry we judged, not one a concurrent writer just replaced.
        with self.index.transact(), contextlib.suppress(KeyError):
            if self.index.get(DOWNLOAD_KEY + url) == rec:
                self.index.delete(DOWNLOAD_KEY + url)

    # --- write ------------------------------------------------------------------------------

    def store(self, url: str, downloaded: Downloaded, *, via: str) -> Path:
        """Publish a finished download (atomic rename), record it, and evict if over the cap.

        The caller holds the lock of ``url``.
        """
        h = url_hash(url)
        rel = Path("downloads") / h[:2] / f"{h[2:18]}-{file_name(url)}"
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(downloaded.path, target)
        st = target.stat()
        self.index.set(
            DOWNLOAD_KEY + url,
            {
                "kind": "download",
                "url": url,
                "path": rel.as_posix(),
                "sha256": downloaded.sha256,
                "size_bytes": downloaded.size_bytes,
                "fetched_at": now_iso(),
                "etag": downloaded.etag,
                "last_modified": downloaded.last_modified,
                "via": via,
                "used_at": time.time(),
                "inode": st.st_ino,
                "mtime_ns": st.st_mtime_ns,
            },
        )
        self.evict(keep=url)
        return target

    def forget(self, url: str) -> None:
        """Drop ``url`` from the cache: its record and its file."""
        with self.lock(url):
            rec = self.record(url)
            if rec is not None:
                self.index.delete(DOWNLOAD_KEY + url)
                (self.root / str(rec["path"])).unlink(missing_ok=True)

    def new_part_dir(self) -> Path:
        """Where downloads in progress go (same file system as the cache: renames are atomic)."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return self.temp_dir

    def sweep_parts(self) -> int:
        """Remove leftovers of killed downloads: parts of dead local processes or a day old."""
        removed = 0
        if not self.temp_dir.is_dir():
            return 0
        host = socket.gethostname().replace(".", "_")
        for part in self.temp_dir.glob(".part-*"):
            _, _, tail = part.name.partition(".")  # ".part-xxxx.<host>.<pid>"
            pieces = tail.rsplit(".", 2)
            dead = False
            if len(pieces) == 3 and pieces[1] == host and pieces[2].isdigit():
                dead = not _alive(int(pieces[2]))
            with contextlib.suppress(OSError):
                if dead or time.time() - part.stat().st_mtime > STALE_PART_AGE_S:
                    part.unlink()
                    removed += 1
        return removed

    # --- eviction ---------------------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        """Every download record in the index."""
        found = []
        for key in self.index.iterkeys():
            if isinstance(key, str) and key.startswith(DOWNLOAD_KEY):
                rec = self.index.get(key)
                if isinstance(rec, dict):
                    found.append(rec)
        return found

    def evict(self, *, max_bytes: int | None = None, keep: str | None = None) -> list[str]:
        """Evict least recently used downloads until they fit ``max_bytes``; the evicted URLs."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        records = self.entries()
        total = sum(int(r.get("size_bytes", 0)) for r in records)
        if total <= cap:
            return []
        evicted: list[str] = []
        now = time.time()
        for rec in sorted(records, key=lambda r: float(r.get("used_at", 0.0))):
            if total <= cap:
                break
            url = str(rec["url"])
            if url == keep or now - float(rec.get("used_at", 0.0)) < self.grace_s:
                continue
            if self._evict_one(url, unused_since=now - self.grace_s):
                total -= int(rec.get("size_bytes", 0))
                evicted.append(url)
        if evicted:
            log.info("cache.evicted", count=len(evicted), remaining_bytes=total, cap_bytes=cap)
        return evicted

    def clear(self) -> list[str]:
        """Evict every download that is not pinned or being downloaded (ignores the grace)."""
        evicted = [str(r["url"]) for r in self.entries() if self._evict_one(str(r["url"]))]
        log.info("cache.cleared", count=len(evicted))
        return evicted

    def verify(self) -> dict[str, Any]:
        """Re-hash every cached download; drop the ones that changed. ``{"checked", "dropped"}``."""
        checked, dropped = 0, []
        for rec in self.entries():
            url = str(rec["url"])
            checked += 1
            path = self.root / str(rec.get("path", ""))
            try:
                intact = sha256_of(path) == rec.get("sha256")
            except OSError:
                intact = False
            if not intact:
                self._drop(url, rec, "sha256 changed")
                path.unlink(missing_ok=True)
                dropped.append(url)
        return {"checked": checked, "dropped": dropped}

    def _evict_one(self, url: str, *, unused_since: float | None = None) -> bool:
        try:
            with self.lock(url, timeout_s=0.0):
                rec = self.record(url)
                if rec is None:
                    return False
                # Re-read under the lock: a reader may have just used it after we listed it.
                if unused_since is not None and float(rec.get("used_at", 0.0)) > unused_since:
                    return False
                self.index.delete(DOWNLOAD_KEY + url)
                # unlink, never truncate: open handles and mmaps of the file stay valid.
                (self.root / str(rec["path"])).unlink(missing_ok=True)
                return True
        except FetchTimeoutError:
            return False  # pinned or being downloaded right now


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tree_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    for base, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(base, name)).st_size
                files += 1
    return files, size


def verify_cache(settings: Settings) -> dict[str, Any]:
    """Re-hash every cached download (``cache/verify``): ``{"checked", "dropped"}``."""
    cache = DownloadCache(settings)
    try:
        return cache.verify()
    finally:
        cache.close()


def clear_cache(settings: Settings) -> dict[str, Any]:
    """Remove every download not in use (``cache/clear``): ``{"evicted": n}``."""
    cache = DownloadCache(settings)
    try:
        return {"evicted": len(cache.clear())}
    finally:
        cache.close()


def cache_status(settings: Settings) -> dict[str, Any]:
    """What the per-user cache holds, for ``cache/status``: entries, bytes, location, kinds.

    ``kinds`` has ``download`` and ``configuration`` (from the index) and one entry per other
    folder of the cache directory (e.g. decoded maps), each ``{"entries", "size_bytes"}``.
    """
    root = Path(settings.cache_dir).expanduser()
    kinds: dict[str, dict[str, int]] = {
        "download": {"entries": 0, "size_bytes": 0},
        "configuration": {"entries": 0, "size_bytes": 0},
    }
    temp_bytes = 0
    if (root / "index").is_dir():
        cache = DownloadCache(settings)
        try:
            for key in cache.index.iterkeys():
                rec = cache.index.get(key)
                if not isinstance(rec, dict) or not isinstance(key, str):
                    continue
                kind = "download" if key.startswith(DOWNLOAD_KEY) else "configuration"
                kinds[kind]["entries"] += 1
                kinds[kind]["size_bytes"] += int(rec.get("size_bytes", 0))
        finally:
            cache.close()
        if (root / "downloads" / ".tmp").is_dir():
            temp_bytes = _tree_size(root / "downloads" / ".tmp")[1]
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_dir() and child.name not in {
                "index",
                "downloads",
                "configurations",
                "locks",
            }:
                files, size = _tree_size(child)
                kinds[child.name] = {"entries": files, "size_bytes": size}
    return {
        "location": str(root),
        "entries": sum(k["entries"] for k in kinds.values()),
        "size_bytes": sum(k["size_bytes"] for k in kinds.values()),
        "max_download_bytes": settings.download_cache_max_bytes,
        "partial_download_bytes": temp_bytes,
        "kinds": kinds,
    }
