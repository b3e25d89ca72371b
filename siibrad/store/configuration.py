"""Configuration sources: where the siibra-configurations JSON tree comes from.

Contract (shared contract C): :func:`open_configuration` turns a spec into a
:class:`ConfigurationSource` whose ``root`` is a local folder holding ``atlases/ spaces/
parcellations/ maps/ ...`` (an extension may hold only some of them). Specs:

- a folder (``/data/siibra-configurations``, ``~/my-extension``): used in place;
- an archive (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``; a path, ``file://`` or ``http(s)://``):
  extracted safely (``siibrad.store.archive``) into ``cache_dir/configurations`` keyed by its
  sha256, so it is extracted again only when its content changes;
- ``github:TAG``: the tag's archive of FZJ-INM1-BDA/siibra-configurations from GitHub
  (codeload), else the same tag from the EBRAINS GitLab mirror (project 892); downloaded once
  through the fetcher (timeouts, retries, mirrors, cache) and extracted; every later start reads
  the extracted tree from the cache without any network. ``gitlab:TAG`` asks GitLab only.

Failures: a remote source that cannot be had raises ONE ``ConfigurationUnavailableError`` whose
message lists each attempt and says how to work offline; a local folder that is not a
configuration raises ``ConfigurationError``; a hostile archive raises ``UnsafeArchiveError``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import structlog

from siibrad.errors import (
    ConfigurationError,
    ConfigurationUnavailableError,
    SiibradError,
    UnsafeArchiveError,
)
from siibrad.settings import Settings
from siibrad.store.archive import Limits, extract
from siibrad.store.cache import CONFIGURATION_KEY, DownloadCache, now_iso, sha256_of
from siibrad.store.fetch import Fetcher, HttpFetcher

log = structlog.get_logger("siibrad.store")

GITHUB_REPOSITORY = "FZJ-INM1-BDA/siibra-configurations"
GITLAB_SERVER = "https://gitlab.ebrains.eu"
GITLAB_PROJECT = 892
CONFIGURATION_FOLDERS = ("atlases", "spaces", "parcellations", "maps", "features")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
COMPLETE_MARKER = ".siibrad-complete"
STALE_STAGING_S = 3600.0
HOSTS = {"github": "GitHub", "gitlab": "EBRAINS GitLab"}
OFFLINE_HINT = (
    "To work offline, point SIIBRAD_CONFIGURATION (or --configuration) at a local copy: "
    "SIIBRAD_CONFIGURATION=/path/to/siibra-configurations (a folder) or "
    "SIIBRAD_CONFIGURATION=/path/to/siibra-configurations.zip; or let a proxy or a folder "
    'stand in for the hosts with SIIBRAD_MIRRORS="https://codeload.github.com=..."'
)


@dataclass(frozen=True, slots=True)
class ConfigurationSource:
    """A configuration ready to read: ``root`` is a local folder of siibra JSON specs."""

    root: Path
    spec: str
    kind: str
    """``"folder"``, ``"zip"``, ``"tar"``, ``"github"`` or ``"gitlab"`` (where it came from)."""
    tag: str | None = None
    digest: str | None = None
    """sha256 of the archive, or a fingerprint of the folder's file names, sizes and mtimes."""
    url: str | None = None


def github_archive_url(tag: str) -> str:
    """The GitHub archive of a tag (codeload: no API rate limit, no redirect)."""
    return f"https://codeload.github.com/{GITHUB_REPOSITORY}/tar.gz/{quote(tag, safe='')}"


def gitlab_archive_url(tag: str) -> str:
    """The EBRAINS GitLab archive of a tag (the same repository, mirrored)."""
    return (
        f"{GITLAB_SERVER}/api/v4/projects/{GITLAB_PROJECT}/repository/archive.tar.gz"
        f"?sha={quote(tag, safe='')}"
    )


def open_configuration(
    spec: str | Path, settings: Settings | None = None, *, fetcher: Fetcher | None = None
) -> ConfigurationSource:
    """The configuration named by ``spec`` (see the module docstring), fetched if need be."""
    settings = settings or Settings.from_env()
    if isinstance(spec, Path):
        return _open_path(spec.expanduser(), str(spec), settings)
    text = spec.strip()
    for scheme in ("github", "gitlab"):
        if text.startswith(scheme + ":"):
            tag = text[len(scheme) + 1 :].strip()
            if not tag:
                raise ConfigurationError(
                    f"{text!r} names no tag; use e.g. {scheme}:siibra-1.0.1-alpha.25", spec=text
                )
            return _open_tag(scheme, tag, text, settings, fetcher)
    if text.startswith(("http://", "https://")):
        return _open_remote_archive(text, settings, fetcher)
    if text.startswith("file://"):
        return _open_path(Path(unquote(urlsplit(text).path)), text, settings)
    if not text:
        raise ConfigurationError("an empty configuration spec", spec=spec)
    return _open_path(Path(text).expanduser(), text, settings)


# --- local ----------------------------------------------------------------------------------


def _open_path(path: Path, spec: str, settings: Settings) -> ConfigurationSource:
    if path.is_dir():
        root = find_root(path)
        if root is None:
            raise ConfigurationError(
                f"{path} is not a siibra configuration: it has none of the folders "
                + ", ".join(f"{f}/" for f in CONFIGURATION_FOLDERS),
                spec=spec,
                path=str(path),
            )
        return ConfigurationSource(root, spec, "folder", None, folder_fingerprint(root))
    if path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES):
        return _open_local_archive(path.resolve(), spec, settings)
    if path.exists():
        raise ConfigurationError(
            f"{path} is neither a folder nor a .zip/.tar.gz archive", spec=spec, path=str(path)
        )
    raise ConfigurationUnavailableError(
        f"the configuration {path} does not exist. {OFFLINE_HINT}", spec=spec, path=str(path)
    )


def find_root(folder: Path, depth: int = 2) -> Path | None:
    """The shallowest folder at or below ``folder`` holding a configuration folder."""
    level = [folder]
    for _ in range(depth + 1):
        for candidate in level:
            if any((candidate / name).is_dir() for name in CONFIGURATION_FOLDERS):
                return candidate
        level = sorted(
            child
            for parent in level
            for child in parent.iterdir()
            if child.is_dir() and not child.name.startswith(".")
        )
    return None


def folder_fingerprint(root: Path) -> str:
    """sha256 over the relative names, sizes and mtimes of the files under ``root``."""
    digest = hashlib.sha256()
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(base, name)
            st = os.stat(path)
            rel = os.path.relpath(path, root)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _archive_kind(name: str) -> str:
    return "zip" if name.lower().endswith(".zip") else "tar"


def _open_local_archive(path: Path, spec: str, settings: Settings) -> ConfigurationSource:
    cache = DownloadCache(settings)
    try:
        st = path.stat()
        key = f"{CONFIGURATION_KEY}file:{path}"
        rec = cache.index.get(key)
        stat_sig = [st.st_size, st.st_mtime_ns, st.st_ino]
        # An unchanged archive (same size, mtime, inode) is not even re-hashed.
        if isinstance(rec, dict) and rec.get("stat") == stat_sig:
            source = _source_from_record(rec, cache.root, spec)
            if source is not None:
                return source
        digest = sha256_of(path)
        with cache.lock(key):
            root = _extracted(cache, path, digest, f"{_archive_kind(path.name)}-{digest[:16]}")
            record = _record(
                cache.root, root, kind=_archive_kind(path.name), tag=None, digest=digest, url=None
            )
            cache.index.set(key, {**record, "stat": stat_sig})
        return ConfigurationSource(root, spec, _archive_kind(path.name), None, digest)
    finally:
        cache.close()


# --- remote ---------------------------------------------------------------------------------


def _open_tag(
    scheme: str, tag: str, spec: str, settings: Settings, fetcher: Fetcher | None
) -> ConfigurationSource:
    cache = DownloadCache(settings)
    key = CONFIGURATION_KEY + spec
    try:
        source = _source_from_record(cache.index.get(key), cache.root, spec)
        if source is not None:
            return source  # the promised offline restart: no network at all
        urls = [("gitlab", gitlab_archive_url(tag))]
        if scheme == "github":
            urls.insert(0, ("github", github_archive_url(tag)))
        with cache.lock(key):
            source = _source_from_record(cache.index.get(key), cache.root, spec)
            if source is not None:
                return source
            source = _download_first(
                urls, spec, tag=tag, settings=settings, fetcher=fetcher, cache=cache
            )
            cache.index.set(
                key,
                _record(
                    cache.root,
                    source.root,
                    kind=source.kind,
                    tag=tag,
                    digest=source.digest,
                    url=source.url,
                ),
            )
            log.info("configuration.cached", spec=spec, via=source.kind, root=str(source.root))
            return source
    finally:
        cache.close()


def _open_remote_archive(
    url: str, settings: Settings, fetcher: Fetcher | None
) -> ConfigurationSource:
    name = urlsplit(url).path
    kind = _archive_kind(name)
    cache = DownloadCache(settings)
    key = CONFIGURATION_KEY + url
    try:
        source = _source_from_record(cache.index.get(key), cache.root, url)
        if source is not None:
            return source
        with cache.lock(key):
            source = _download_first(
                [(kind, url)], url, tag=None, settings=settings, fetcher=fetcher, cache=cache
            )
            cache.index.set(
                key,
                _record(
                    cache.root, source.root, kind=kind, tag=None, digest=source.digest, url=url
                ),
            )
            return source
    finally:
        cache.close()


def _download_first(
    urls: list[tuple[str, str]],
    spec: str,
    *,
    tag: str | None,
    settings: Settings,
    fetcher: Fetcher | None,
    cache: DownloadCache,
) -> ConfigurationSource:
    """The first of ``urls`` that downloads, extracted; else ONE ConfigurationUnavailableError."""
    own = HttpFetcher(settings) if fetcher is None else None
    active: Fetcher = own if own is not None else fetcher  # type: ignore[assignment]
    attempts: list[dict[str, Any]] = []
    try:
        for kind, url in urls:
            try:
                archive = active.fetch(url)
            except SiibradError as exc:
                log.warning("configuration.unavailable", spec=spec, url=url, error=exc.type)
                # The fetcher's own message carries a mirror hint; here the offline hint
                # below is the one that helps, so keep only what happened at each place.
                inner = exc.data.get("attempts") or [{"message": exc.message}]
                reason = "; ".join(str(a["message"]) for a in inner)
                attempts.append({"via": kind, "url": url, "type": exc.type, "message": reason})
                continue
            digest = sha256_of(archive)
            name = f"{kind}-{_slug(tag or kind)}-{digest[:16]}"
            try:
                root = _extracted(cache, archive, digest, name)
            except UnsafeArchiveError:
                cache.forget(url)  # never keep a hostile archive around for the next start
                raise
            return ConfigurationSource(root, spec, kind, tag, digest, url)
    finally:
        if own is not None:
            own.close()
    lines = "; ".join(f"{HOSTS.get(a['via'], a['via'])}: {a['message']}" for a in attempts)
    raise ConfigurationUnavailableError(
        f"cannot get the siibra configuration {spec} ({lines}). {OFFLINE_HINT}",
        spec=spec,
        attempts=attempts,
        hint=OFFLINE_HINT,
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]


def _extracted(cache: DownloadCache, archive: Path, digest: str, name: str) -> Path:
    """The configuration root inside the extracted tree of ``archive`` (extracting it once)."""
    base = cache.root / "configurations"
    final = base / name
    if not (final / COMPLETE_MARKER).is_file():
        base.mkdir(parents=True, exist_ok=True)
        for leftover in base.glob(".tmp-*"):  # of an extraction killed long ago
            if time.time() - leftover.stat().st_mtime > STALE_STAGING_S:
                shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=base, prefix=".tmp-"))
        try:
            extract(archive, staging / "tree", Limits())
            (staging / "tree" / COMPLETE_MARKER).write_text(digest + "\n", encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)  # an incomplete leftover of a killed extraction
            os.replace(staging / "tree", final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("configuration.extracted", archive=archive.name, root=str(final))
    root = find_root(final)
    if root is None:
        raise ConfigurationError(
            f"{archive.name} holds no siibra configuration: none of the folders "
            + ", ".join(f"{f}/" for f in CONFIGURATION_FOLDERS),
            archive=str(archive),
        )
    return root


def _record(
    cache_root: Path, root: Path, *, kind: str, tag: str | None, digest: str | None, url: str | None
) -> dict[str, Any]:
    files = size = 0
    for base, _dirs, names in os.walk(root):
        for n in names:
            files += 1
            size += os.lstat(os.path.join(base, n)).st_size
    return {
        "kind": kind,
        "root": root.relative_to(cache_root).as_posix(),
        "tag": tag,
        "digest": digest,
        "url": url,
        "files": files,
        "size_bytes": size,
        "fetched_at": now_iso(),
    }


def _source_from_record(rec: object, cache_root: Path, spec: str) -> ConfigurationSource | None:
    if not isinstance(rec, dict) or "root" not in rec:
        return None
    root = cache_root / str(rec["root"])
    top = cache_root / Path(str(rec["root"])).parts[0] / Path(str(rec["root"])).parts[1]
    if not root.is_dir() or not (top / COMPLETE_MARKER).is_file():
        return None
    return ConfigurationSource(
        root, spec, str(rec["kind"]), rec.get("tag"), rec.get("digest"), rec.get("url")
    )
