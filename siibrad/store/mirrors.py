"""Mirrors: URL prefixes mapped to another base URL or to a local directory.

A mirror lets an air-gapped cluster, an institute proxy or a test stand in for an upstream
host. The setting is ``PREFIX=TARGET`` pairs separated by commas (``SIIBRAD_MIRRORS``) or one
pair per line in a mirrors file (``SIIBRAD_MIRRORS_FILE``; ``#`` starts a comment). TARGET is
an ``http(s)://`` base URL or a local directory (a path, or a ``file://`` URL). A rule whose
PREFIX is a whole file URL may name a local file as TARGET (``URL=/data/copy.nii.gz``), so a list
of single files, such as ``scripts/mirrors_from_tsv.py`` makes from ../shared/data/MIRROR.tsv,
stands in for scattered upstream files.

Contract: :func:`candidates` lists, for one URL, every place to try, mirrors first (longest
prefix first, then in the order given; the environment setting before the file), the origin
last. A URL's remainder after the prefix is appended to the target verbatim, query included;
in a local directory it becomes a relative path (percent-decoded; a query string stays part of
the file name as ``?query``), and a remainder that would leave the directory is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from siibrad.errors import ConfigurationError
from siibrad.settings import Settings


@dataclass(frozen=True, slots=True)
class Mirror:
    """One ``PREFIX=TARGET`` rule: ``target`` is a base URL, or ``directory`` a local folder."""

    prefix: str
    target: str
    directory: Path | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One place to get a URL from: ``url`` to download, or ``path`` to use in place."""

    url: str | None
    path: Path | None
    via: str
    """``"origin"`` or the mirror rule as ``PREFIX=TARGET`` (for logs and error messages)."""


def parse_mirrors(text: str, *, origin: str = "SIIBRAD_MIRRORS") -> tuple[Mirror, ...]:
    """Mirror rules from ``PREFIX=TARGET`` items separated by commas or newlines.

    >>> [m.target for m in parse_mirrors("https://a.org=http://127.0.0.1:8080/a")]
    ['http://127.0.0.1:8080/a']
    """
    rules: list[Mirror] = []
    items = (
        raw.strip()
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for raw in line.split(" #", 1)[0].split(",")
    )
    for item in items:
        if not item:
            continue
        # The prefix is itself a URL ("https://host"), so split at the first "=" only.
        prefix, sep, target = item.partition("=")
        prefix, target = prefix.strip(), target.strip()
        if not sep or not prefix or not target:
            raise ConfigurationError(
                f"{origin}: {item!r} is not PREFIX=TARGET "
                "(e.g. https://data-proxy.ebrains.eu=/srv/mirror/data-proxy.ebrains.eu)",
                setting=origin,
                item=item,
            )
        if target.startswith(("http://", "https://")):
            rules.append(Mirror(prefix, target.rstrip("/")))
        else:
            folder = Path(unquote(target[7:]) if target.startswith("file://") else target)
            rules.append(Mirror(prefix, target, folder.expanduser()))
    return tuple(rules)


def load_mirrors(settings: Settings) -> tuple[Mirror, ...]:
    """The mirror rules of ``settings``: ``settings.mirrors`` first, then the mirrors file."""
    rules = list(parse_mirrors(settings.mirrors))
    if settings.mirrors_file is not None:
        try:
            text = Path(settings.mirrors_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the mirrors file {settings.mirrors_file}: {exc.strerror or exc}",
                setting="SIIBRAD_MIRRORS_FILE",
                path=str(settings.mirrors_file),
            ) from exc
        rules.extend(parse_mirrors(text, origin=str(settings.mirrors_file)))
    return tuple(rules)


def _matches(url: str, prefix: str) -> bool:
    # "https://host" must not match "https://host.evil.org": a prefix ends at a boundary.
    if not url.startswith(prefix):
        return False
    if len(url) == len(prefix) or prefix.endswith(("/", "?", "=", "&")):
        return True
    return url[len(prefix)] in "/?#"


def local_path(directory: Path, remainder: str) -> Path | None:
    """Where ``remainder`` (a URL tail) lives under ``directory``; ``None`` if it would escape.

    >>> local_path(Path("/m"), "/api/v1/x%20y.nii.gz").as_posix()
    '/m/api/v1/x y.nii.gz'
    >>> local_path(Path("/m"), "/../etc/passwd") is None
    True
    """
    path_part, _, query = remainder.partition("?")
    parts = [unquote(p) for p in path_part.split("/") if p]
    if query and parts:
        parts[-1] = f"{parts[-1]}?{query}"
    if not parts or any(p in {".", ".."} or "/" in p or "\0" in p for p in parts):
        return None
    return directory.joinpath(*parts)


def candidates(url: str, mirrors: Sequence[Mirror]) -> list[Candidate]:
    """Every place to try for ``url``: matching mirrors (longest prefix first), then the origin."""
    matching = sorted((m for m in mirrors if _matches(url, m.prefix)), key=lambda m: -len(m.prefix))
    found: list[Candidate] = []
    for rule in matching:
        remainder = url[len(rule.prefix) :]
        via = f"{rule.prefix}={_redact(rule.target)}"
        if rule.directory is None:
            if remainder and not remainder.startswith(("/", "?", "#")) and rule.prefix[-1] != "/":
                remainder = "/" + remainder
            found.append(Candidate(rule.target + remainder, None, via))
        elif remainder == "":
            found.append(Candidate(None, rule.directory, via))  # the whole URL names one file
        else:
            path = local_path(rule.directory, remainder)
            if path is not None:
                found.append(Candidate(None, path, via))
    found.append(Candidate(url, None, "origin"))
    return found


def _redact(target: str) -> str:
    """``target`` without a ``user:password@`` part, for logs and error messages.

    >>> _redact("http://me:secret@proxy.example.org/x")
    'http://***@proxy.example.org/x'
    """
    parts = urlsplit(target)
    if parts.username is None and parts.password is None:
        return target
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def host_of(url: str) -> str:
    """The lower-case host name of ``url`` (empty when it has none)."""
    return (urlsplit(url).hostname or "").lower()
