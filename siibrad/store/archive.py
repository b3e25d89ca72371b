"""Safe extraction of configuration archives (.zip, .tar, .tar.gz).

Contract: :func:`extract` writes the regular files and folders of an archive under ``dest``
(which must not exist yet) or raises ``UnsafeArchiveError`` naming the offending member and
leaves nothing behind. Refused: absolute names, ``..`` components, members below a link,
links whose target leaves the tree, hard links to anything but an earlier member, devices and
fifos, more than ``limits.max_members`` members, a member over ``limits.max_member_bytes`` or a
total over ``limits.max_total_bytes`` (counted while writing, so a zip that lies about its
sizes is caught too). Every member is checked before the first byte is written. Symbolic links
inside the tree are recreated last; nothing is ever written through a link.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from siibrad.errors import UnsafeArchiveError


@dataclass(frozen=True, slots=True)
class Limits:
    """What an archive may hold; the defaults are ~100x the real siibra-configurations."""

    max_members: int = 100_000
    max_member_bytes: int = 512 * 1024**2
    max_total_bytes: int = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    size_bytes: int
    target: str = ""


def _normalise(archive: Path, name: str) -> str:
    """The member's safe relative POSIX name, or ``UnsafeArchiveError``.

    >>> _normalise(Path("a.zip"), "./atlases/x.json")
    'atlases/x.json'
    """
    clean = name.replace("\\", "/")
    if "\0" in clean or clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(
            f"{archive.name}: member {name!r} has an absolute path",
            archive=str(archive),
            member=name,
        )
    parts = [p for p in clean.split("/") if p not in {"", "."}]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{archive.name}: member {name!r} points outside the archive with '..'",
            archive=str(archive),
            member=name,
        )
    return "/".join(parts)


def _tar_members(archive: Path, tar: tarfile.TarFile) -> Iterator[tuple[_Member, tarfile.TarInfo]]:
    for info in tar:
        name = _normalise(archive, info.name)
        if info.isdir():
            yield _Member(name, "dir", 0), info
        elif info.isreg():
            yield _Member(name, "file", info.size), info
        elif info.issym():
            yield _Member(name, "symlink", 0, info.linkname), info
        elif info.islnk():
            try:
                target = _normalise(archive, info.linkname)
            except UnsafeArchiveError:
                raise UnsafeArchiveError(
                    f"{archive.name}: hard link {info.name!r} -> {info.linkname!r} leaves the "
                    "archive",
                    archive=str(archive),
                    member=info.name,
                ) from None
            yield _Member(name, "hardlink", 0, target), info
        else:
            raise UnsafeArchiveError(
                f"{archive.name}: member {info.name!r} is a device or fifo",
                archive=str(archive),
                member=info.name,
            )


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> Iterator[tuple[_Member, zipfile.ZipInfo]]:
    for info in zf.infolist():
        name = _normalise(archive, info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            yield _Member(name, "dir", 0), info
        elif stat.S_ISLNK(mode):
            if info.file_size > 4096:
                raise UnsafeArchiveError(
                    f"{archive.name}: link {info.filename!r} has an absurd target",
                    archive=str(archive),
                    member=info.filename,
                )
            target = zf.read(info).decode("utf-8", "replace")
            yield _Member(name, "symlink", 0, target), info
        else:
            yield _Member(name, "file", info.file_size), info


def _check(archive: Path, members: list[_Member], limits: Limits) -> None:
    if len(members) > limits.max_members:
        raise UnsafeArchiveError(
            f"{archive.name} has {len(members)} members, more than {limits.max_members}",
            archive=str(archive),
            member=members[limits.max_members].name,
        )
    total = 0
    links: set[str] = set()
    seen: set[str] = set()
    for m in members:
        parent = m.name
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in links:
                raise UnsafeArchiveError(
                    f"{archive.name}: member {m.name!r} lies below the link {parent!r}",
                    archive=str(archive),
                    member=m.name,
                )
        if m.kind == "symlink":
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.target))
            if m.target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchiveError(
                    f"{archive.name}: link {m.name!r} -> {m.target!r} leaves the archive",
                    archive=str(archive),
                    member=m.name,
                )
            links.add(m.name)
        if m.kind == "hardlink" and m.target not in seen:
            raise UnsafeArchiveError(
                f"{archive.name}: hard link {m.name!r} -> {m.target!r} is not an earlier member",
                archive=str(archive),
                member=m.name,
            )
        if m.size_bytes > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"{archive.name}: member {m.name!r} is {m.size_bytes} bytes, over the limit of "
                f"{limits.max_member_bytes}",
                archive=str(archive),
                member=m.name,
            )
        total += m.size_bytes
        if total > limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{archive.name} unpacks to more than {limits.max_total_bytes} bytes "
                f"(at member {m.name!r})",
                archive=str(archive),
                member=m.name,
            )
        seen.add(m.name)


def _copy(archive: Path, member: str, source: IO[bytes], target: Path, budget: list[int]) -> None:
    # O_EXCL | O_NOFOLLOW: never overwrite, never write through a link planted earlier.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            budget[0] -= len(block)
            if budget[0] < 0:
                raise UnsafeArchiveError(
                    f"{archive.name} unpacks to more bytes than it declares (at {member!r})",
                    archive=str(archive),
                    member=member,
                )
            out.write(block)


def extract(archive: Path, dest: Path, limits: Limits | None = None) -> None:
    """Extract ``archive`` (zip or tar, any compression) into the new folder ``dest``."""
    limits = limits or Limits()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zmembers = list(_zip_members(archive, zf))
                _check(archive, [m for m, _ in zmembers], limits)
                dest.mkdir(parents=True)
                try:
                    _write(archive, dest, limits, zmembers, zf.open)
                except BaseException:
                    shutil.rmtree(dest, ignore_errors=True)
                    raise
            return
        with tarfile.open(archive, "r:*") as tar:
            tmembers = list(_tar_members(archive, tar))
            _check(archive, [m for m, _ in tmembers], limits)
            dest.mkdir(parents=True)

            def open_tar(info: tarfile.TarInfo) -> IO[bytes]:
                handle = tar.extractfile(info)
                if handle is None:  # pragma: no cover - only regular files get here
                    raise UnsafeArchiveError(f"{info.name!r} has no data", member=info.name)
                return handle

            try:
                _write(archive, dest, limits, tmembers, open_tar)
            except BaseException:
                shutil.rmtree(dest, ignore_errors=True)
                raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError) and exc.filename == str(dest):
            raise
        raise UnsafeArchiveError(
            f"{archive.name} is not a readable zip or tar archive: {exc}",
            archive=str(archive),
            member="",
        ) from exc


def _write(
    archive: Path,
    dest: Path,
    limits: Limits,
    members: Sequence[tuple[_Member, Any]],
    opener: Callable[[Any], IO[bytes]],
) -> None:
    budget = [limits.max_total_bytes]
    root = dest.resolve()
    for m, info in members:
        if m.kind == "symlink" or not m.name:
            continue
        target = dest / m.name
        if not target.resolve().is_relative_to(root):
            raise UnsafeArchiveError(
                f"{archive.name}: member {m.name!r} would be written outside the tree",
                archive=str(archive),
                member=m.name,
            )
        if m.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif m.kind == "hardlink":
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dest / m.target, target, follow_symlinks=False)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()  # a later member of the same name wins, as in tar
            with opener(info) as source:
                _copy(archive, m.name, source, target, budget)
    for m, _ in members:
        if m.kind == "symlink":
            (dest / m.name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.target, dest / m.name)
