"""One HTTP download into a temporary file, with timeouts, retries, a size cap and a digest.

Contract: :meth:`Downloader.download` GETs one URL (no mirrors: the fetcher chooses the URL),
streams the body into a new file in ``temp_dir`` and returns it with its sha256 and size; the
caller renames it into place. On failure the temporary file is gone and a siibrad error says
why. What is retried (up to ``settings.fetch_retries`` times, pauses from :class:`Backoff`):
refused or reset connections, 429 and 5xx answers (``Retry-After`` honoured), truncated bodies.
What is not: a connect or read timeout (a firewall that drops packets or a server that never
answers will not wake up; the caller moves on to the next mirror), 4xx answers, bodies over
the size cap, and wrong content. The EBRAINS token goes only to EBRAINS hosts over https (or
loopback) and is never logged; requests drops it itself when a redirect changes the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import structlog
from urllib3.exceptions import NameResolutionError

from siibrad.errors import (
    ChecksumMismatchError,
    DataUnavailableError,
    FetchFailedError,
    FetchTimeoutError,
    SiibradError,
)
from siibrad.settings import Settings
from siibrad.store.retry import Backoff, parse_retry_after

log = structlog.get_logger("siibrad.store")

EBRAINS_HOSTS: tuple[str, ...] = ("ebrains.eu",)
"""Hosts (and their subdomains) that receive the EBRAINS token."""

CHUNK_BYTES = 256 * 1024
USER_AGENT = "siibrad (+https://github.com/FZJ-INM1-BDA/siibra-python)"

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A complete, not yet published download: a temporary file and what we know of it."""

    path: Path
    sha256: str
    size_bytes: int
    url: str
    etag: str | None
    last_modified: str | None


def part_suffix() -> str:
    """``.<host>.<pid>`` for temporary files, so a sweep can tell whose download died."""
    return f".{socket.gethostname().replace('.', '_')}.{os.getpid()}"


def sends_token(url: str, token_hosts: Sequence[str]) -> bool:
    """Whether a request to ``url`` may carry the EBRAINS token.

    >>> sends_token("https://data-proxy.ebrains.eu/api/x", EBRAINS_HOSTS)
    True
    >>> sends_token("http://data-proxy.ebrains.eu/api/x", EBRAINS_HOSTS)
    False
    >>> sends_token("https://ebrains.eu.evil.org/x", EBRAINS_HOSTS)
    False
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not any(host == h or host.endswith("." + h) for h in token_hosts):
        return False
    # A bearer token over plain http is readable by every hop; loopback has no hops.
    return parts.scheme == "https" or host in {"127.0.0.1", "localhost", "::1"}


class _Retry(Exception):
    """A transient failure of one attempt: try again after a pause."""

    def __init__(self, error: SiibradError, retry_after_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after_s = retry_after_s


class Downloader:
    """Downloads single URLs; one per fetcher, safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        token_hosts: Sequence[str] = EBRAINS_HOSTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._backoff = backoff or Backoff()
        self._token_hosts = tuple(h.lower() for h in token_hosts)
        self._sleep = sleep
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe: one per thread.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
        return session

    def download(
        self,
        url: str,
        temp_dir: Path,
        *,
        max_bytes: int,
        progress: Progress | None = None,
        expected_sha256: str | None = None,
    ) -> Downloaded:
        """GET ``url`` into a new file in ``temp_dir``, retrying transient failures."""
        attempts = max(0, self._settings.fetch_retries) + 1
        for attempt in range(attempts):
            try:
                return self._attempt(url, temp_dir, max_bytes, progress, expected_sha256)
            except _Retry as retry:
                if attempt + 1 >= attempts:
                    raise retry.error from None
                delay_s = self._backoff.delay_s(attempt, retry.retry_after_s)
                log.info(
                    "fetch.retry",
                    url=url,
                    attempt=attempt + 1,
                    delay_s=round(delay_s, 3),
                    reason=retry.error.message,
                )
                self._sleep(delay_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        url: str,
        temp_dir: Path,
        max_bytes: int,
        progress: Progress | None,
        expected_sha256: str | None,
    ) -> Downloaded:
        headers = {}
        token = self._settings.ebrains_token
        if token and sends_token(url, self._token_hosts):
            headers["Authorization"] = f"Bearer {token}"
        timeout = (self._settings.connect_timeout_s, self._settings.read_timeout_s)
        try:
            response = self._session().get(url, headers=headers, stream=True, timeout=timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise FetchTimeoutError(
                f"no connection to {_origin(url)} within {timeout[0]} s", url=url
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise FetchTimeoutError(
                f"{_origin(url)} accepted the connection but sent no answer within {timeout[1]} s",
                url=url,
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            failure = FetchFailedError(f"cannot connect to {_origin(url)}: {_reason(exc)}", url=url)
            if _unresolvable(exc):
                raise failure from exc  # no DNS (offline, air-gapped): retrying cannot help
            raise _Retry(failure) from exc
        except requests.exceptions.RequestException as exc:
            raise FetchFailedError(f"cannot request {url}: {_reason(exc)}", url=url) from exc
        with response:
            _check_status(url, response)
            return self._receive(
                url,
                response,
                temp_dir,
                max_bytes=max_bytes,
                progress=progress,
                expected_sha256=expected_sha256,
            )

    def _receive(
        self,
        url: str,
        response: requests.Response,
        temp_dir: Path,
        *,
        max_bytes: int,
        progress: Progress | None,
        expected_sha256: str | None,
    ) -> Downloaded:
        declared = _int_or_none(response.headers.get("Content-Length"))
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in {
            "",
            "identity",
        }
        if declared is not None and not encoded and declared > max_bytes:
            raise FetchFailedError(
                f"{url} is {declared} bytes, over the cap of {max_bytes} bytes "
                "(SIIBRAD_MAX_DOWNLOAD_BYTES)",
                url=url,
                size_bytes=declared,
                max_bytes=max_bytes,
            )
        total = declared if not encoded else None
        temp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=temp_dir, prefix=".part-", suffix=part_suffix())
        path = Path(name)
        digest = hashlib.sha256()
        done = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    done += len(chunk)
                    if done > max_bytes:
                        raise FetchFailedError(
                            f"{url} exceeds the cap of {max_bytes} bytes "
                            "(SIIBRAD_MAX_DOWNLOAD_BYTES)",
                            url=url,
                            max_bytes=max_bytes,
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            if total is not None and done != total:
                raise _Retry(
                    FetchFailedError(
                        f"{url} ended after {done} of {total} bytes", url=url, size_bytes=done
                    )
                )
            sha256 = digest.hexdigest()
            if expected_sha256 is not None and sha256 != expected_sha256.lower():
                raise ChecksumMismatchError(
                    f"{url} has sha256 {sha256}, expected {expected_sha256.lower()}",
                    url=url,
                    sha256=sha256,
                    expected_sha256=expected_sha256.lower(),
                )
            check_content(url, path)
        except requests.exceptions.ChunkedEncodingError as exc:
            path.unlink(missing_ok=True)
            raise _Retry(
                FetchFailedError(f"{url} was cut off after {done} bytes: {_reason(exc)}", url=url)
            ) from exc
        except requests.exceptions.ContentDecodingError as exc:
            path.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{url} sent a body that cannot be decoded: {_reason(exc)}", url=url
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            path.unlink(missing_ok=True)
            if "timed out" in str(exc).lower():
                raise FetchTimeoutError(
                    f"{url} stalled for more than {self._settings.read_timeout_s} s "
                    f"after {done} bytes",
                    url=url,
                ) from exc
            raise _Retry(
                FetchFailedError(f"{url} broke off after {done} bytes: {_reason(exc)}", url=url)
            ) from exc
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Downloaded(
            path=path,
            sha256=sha256,
            size_bytes=done,
            url=response.url or url,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )


def _check_status(url: str, response: requests.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    where = _origin(response.url or url)
    if status in {404, 410}:
        raise DataUnavailableError(
            f"{url} does not exist on {where} (HTTP {status})", url=url, status=status, absent=True
        )
    if status == 429 or status >= 500:
        retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
        raise _Retry(
            FetchFailedError(f"{where} answered HTTP {status} for {url}", url=url, status=status),
            retry_after_s,
        )
    hint = ""
    if status in {401, 403} and sends_token(url, EBRAINS_HOSTS):
        hint = " (set HBP_AUTH_TOKEN or SIIBRAD_EBRAINS_TOKEN to a valid EBRAINS token)"
    raise FetchFailedError(
        f"{where} refused {url} with HTTP {status}{hint}", url=url, status=status
    )


HTML_STARTS = (b"<!doctype html", b"<html", b"<head")
NOT_HTML_SUFFIXES = (".gz", ".nii", ".zip", ".json", ".npy", ".tsv", ".csv", ".txt", ".mgz")


def check_content(url: str, path: Path) -> None:
    """Refuse a body that cannot be what the URL's file name says it is.

    Proxies and captive portals like to answer ``200 OK`` with an HTML page; a corrupted
    gzip or JSON file would otherwise be cached and fail much later, far from its cause.
    """
    name = urlsplit(url).path.lower()
    with path.open("rb") as f:
        head = f.read(512)
    problem = ""
    if name.endswith((".gz", ".tgz")) and not head.startswith(b"\x1f\x8b"):
        problem = "it is not gzip data"
    elif name.endswith(".zip") and not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        problem = "it is not a zip archive"
    elif name.endswith(NOT_HTML_SUFFIXES) and head.lstrip().lower().startswith(HTML_STARTS):
        problem = "it is an HTML page (a proxy or login page?)"
    elif name.endswith(".json") and path.stat().st_size <= 256 * 1024**2:
        try:
            json.loads(path.read_bytes())
        except ValueError:
            problem = "it is not valid JSON"
    if problem:
        raise ChecksumMismatchError(
            f"{url} sent content that cannot be right: {problem}", url=url, reason=problem
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _reason(exc: BaseException) -> str:
    # requests nests urllib3 errors three deep; the innermost says what actually happened.
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = str(inner) or type(inner).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _unresolvable(exc: BaseException) -> bool:
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, NameResolutionError | socket.gaierror):
            return True
        inner = inner.__context__ if inner.__context__ is not inner else None
    return False


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
