"""Fetching a URL to a complete, verified local file: mirrors first, then the cache, then HTTP.

Contract (shared contract B): ``Fetcher.fetch(url, expected_sha256=, max_bytes=, progress=)``
returns the path of a complete local file or raises one siibrad error:

- ``DataUnavailableError``: nowhere has it (404, a local mirror without the file, or an origin
  host we may not contact in offline mode); ``data`` names the ``url``, every ``attempts``
  entry, and the mirror setting to use (``mirrors_setting``, ``mirror_example``);
  ``data.absent`` is true when the file does not exist: some place answered so (HTTP 404/410,
  not in a local mirror directory) and every other place either answered so too or was skipped
  in offline mode. Readers of datasets made of many files (neuroglancer precomputed chunks)
  treat an absent file as empty and every other failure as an error;
- ``FetchFailedError`` (refused, 4xx/5xx after retries, truncated, over the size cap),
  ``FetchTimeoutError`` (no connection or no answer within the timeouts),
  ``ChecksumMismatchError`` (wrong sha256 or content that cannot be what the name says).

Order of places: the local-directory mirrors (the file is used in place, never copied), the
download cache (verified, see ``siibrad.store.cache``), then the URL mirrors and the origin in
the order of ``siibrad.store.mirrors.candidates``, each with its own retries. Only one process
downloads a URL at a time (a per-URL ``flock``); the others wait and then read the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import structlog

from siibrad.errors import (
    ChecksumMismatchError,
    DataUnavailableError,
    FetchFailedError,
    FetchTimeoutError,
    SiibradError,
)
from siibrad.settings import Settings
from siibrad.store.cache import DownloadCache, sha256_of
from siibrad.store.download import EBRAINS_HOSTS, Downloader, Progress
from siibrad.store.mirrors import Candidate, candidates, load_mirrors
from siibrad.store.retry import Backoff

log = structlog.get_logger("siibrad.store")


class Fetcher(Protocol):
    """Anything that turns a URL into a complete, verified local file."""

    def fetch(
        self,
        url: str,
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path: ...


class HttpFetcher:
    """The real fetcher: local mirrors, the per-user download cache, then HTTP with retries."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        token_hosts: Sequence[str] = EBRAINS_HOSTS,
        lock_timeout_s: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.mirrors = load_mirrors(settings)
        self.cache = DownloadCache(settings)
        self.lock_timeout_s = lock_timeout_s
        self._downloader = Downloader(settings, backoff=backoff, token_hosts=token_hosts)
        self._verified: dict[tuple[str, int, int], str] = {}
        self._swept = False

    def close(self) -> None:
        """Release the index connection (the fetcher reopens it on next use)."""
        self.cache.close()

    def fetch(
        self,
        url: str,
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """A complete local file for ``url`` (see the module docstring for the errors)."""
        if url.startswith("file://"):
            return self._local_file(url, Path(unquote(urlsplit(url).path)), expected_sha256)
        if not url.startswith(("http://", "https://")):
            raise DataUnavailableError(
                f"cannot fetch {url!r}: only http(s):// and file:// URLs are supported", url=url
            )
        places = candidates(url, self.mirrors)
        failures: list[tuple[Candidate, SiibradError]] = []
        for place in places:
            if place.path is None:
                continue
            try:
                path = self._local_file(url, place.path, expected_sha256)
            except SiibradError as exc:
                failures.append((place, exc))
                continue
            if progress is not None:
                size = path.stat().st_size
                progress(size, size)
            return path

        hit = self.cache.lookup(url, expected_sha256)
        if hit is not None:
            return hit
        cap = self.settings.max_download_bytes
        cap = cap if max_bytes is None else min(cap, max_bytes)
        remote = [p for p in places if p.url is not None]
        with self.cache.lock(url, timeout_s=self.lock_timeout_s):
            # Another process may have downloaded it while we waited for the lock.
            hit = self.cache.lookup(url, expected_sha256)
            if hit is not None:
                return hit
            if not self._swept:
                self.cache.sweep_parts()
                self._swept = True
            for place in remote:
                assert place.url is not None
                if place.via == "origin" and self.settings.offline:
                    failures.append(
                        (
                            place,
                            DataUnavailableError(
                                f"not contacting {_origin(url)}: offline mode (SIIBRAD_OFFLINE)",
                                url=url,
                                offline=True,
                            ),
                        )
                    )
                    continue
                started = time.monotonic()
                try:
                    done = self._downloader.download(
                        place.url,
                        self.cache.new_part_dir(),
                        max_bytes=cap,
                        progress=progress,
                        expected_sha256=expected_sha256,
                    )
                except SiibradError as exc:
                    # "not there" is an answer (precomputed datasets probe names), not a fault
                    report = log.info if exc.data.get("absent") is True else log.warning
                    report("fetch.failed", url=url, via=place.via, error=exc.message)
                    failures.append((place, exc))
                    continue
                path = self.cache.store(url, done, via=place.via)
                log.info(
                    "fetch.done",
                    url=url,
                    via=place.via,
                    size_bytes=done.size_bytes,
                    duration_s=round(time.monotonic() - started, 3),
                )
                return path
        raise _summary(url, failures)

    def _local_file(self, url: str, path: Path, expected_sha256: str | None) -> Path:
        try:
            st = path.stat()
        except OSError:
            raise DataUnavailableError(
                f"{path} does not exist", url=url, path=str(path), absent=True
            ) from None
        if not path.is_file():
            raise DataUnavailableError(f"{path} is not a file", url=url, path=str(path))
        if expected_sha256 is not None:
            key = (str(path), st.st_size, st.st_mtime_ns)
            digest = self._verified.get(key) or sha256_of(path)
            if digest != expected_sha256.lower():
                raise ChecksumMismatchError(
                    f"{path} has sha256 {digest}, expected {expected_sha256.lower()}",
                    url=url,
                    path=str(path),
                    sha256=digest,
                    expected_sha256=expected_sha256.lower(),
                )
            self._verified[key] = digest
        return path


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


RANK: tuple[type[SiibradError], ...] = (
    ChecksumMismatchError,
    FetchTimeoutError,
    FetchFailedError,
    DataUnavailableError,
)


def _summary(url: str, failures: list[tuple[Candidate, SiibradError]]) -> SiibradError:
    """One error for all failed places: the most telling kind, every attempt in ``data``."""
    host = urlsplit(url).hostname or "host"
    example = f"{_origin(url)}=/path/to/a/copy/of/{host}"
    attempts = [
        {"via": place.via, "type": exc.type, "message": exc.message} for place, exc in failures
    ]
    kind: type[SiibradError] = DataUnavailableError
    details: dict[str, object] = {}
    for candidate_kind in RANK:
        chosen = [exc for _, exc in failures if type(exc) is candidate_kind]
        if chosen:
            kind = candidate_kind
            details = dict(chosen[0].data)  # e.g. expected_sha256, status, max_bytes
            break
    # Absent only if a place said so and none failed otherwise; an offline skip proves nothing.
    absent = any(exc.data.get("absent") for _, exc in failures) and all(
        exc.data.get("absent") or exc.data.get("offline") for _, exc in failures
    )
    details.pop("absent", None)
    if absent:
        details["absent"] = True
    lines = "; ".join(f"{a['via']}: {a['message']}" for a in attempts) or "no place to try"
    message = (
        f"cannot get {url} ({lines}). To use a local copy or a proxy, set "
        f'SIIBRAD_MIRRORS="{example}" (or list PREFIX=TARGET lines in SIIBRAD_MIRRORS_FILE)'
    )
    return kind(
        message,
        **{**details, "url": url},
        attempts=attempts,
        mirrors_setting="SIIBRAD_MIRRORS",
        mirror_example=example,
    )
