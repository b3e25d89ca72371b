"""Safe extraction: hostile members are refused by name, nothing is written outside the tree."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from siibrad.errors import UnsafeArchiveError
from siibrad.store.archive import Limits, extract


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A tar.gz of regular files (name, bytes) and raw TarInfo entries, in order."""
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if isinstance(member, tuple):
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
            else:
                tar.addfile(member)
    return path


def link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def make_zip(
    path: Path, members: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return path


def test_tar_extracts_files_and_internal_links(tmp_path: Path) -> None:
    """Regular files, folders and links that stay inside come out intact."""
    archive = make_tar(
        tmp_path / "ok.tar.gz",
        [
            ("top/atlases/a.json", b"{}"),
            ("top/maps/m.json", b"[]"),
            link("top/alias.json", "atlases/a.json"),
        ],
    )
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out/top/atlases/a.json").read_bytes() == b"{}"
    assert (tmp_path / "out/top/alias.json").is_symlink()
    assert (tmp_path / "out/top/alias.json").read_bytes() == b"{}"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (("../evil.txt", b"x"), "'..'"),
        (("top/../../evil.txt", b"x"), "'..'"),
        (("/etc/evil.txt", b"x"), "absolute"),
    ],
)
def test_tar_path_traversal_is_refused_by_name(
    tmp_path: Path, member: tuple[str, bytes], why: str
) -> None:
    """A tar member with ../ or an absolute name is refused, naming it; nothing is written."""
    archive = make_tar(tmp_path / "bad.tar.gz", [("top/ok.json", b"{}"), member])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out")
    assert err.value.data["member"] == member[0]
    assert member[0] in err.value.message and why in err.value.message
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "entry",
    [
        link("top/up", "../../outside"),
        link("top/abs", "/etc/passwd"),
        link("top/hard", "/etc/passwd", hard=True),
        link("top/hard2", "not/a/member", hard=True),
    ],
)
def test_tar_links_out_of_the_tree_are_refused(tmp_path: Path, entry: tarfile.TarInfo) -> None:
    """Symbolic or hard links whose target leaves the tree are refused, naming the member."""
    archive = make_tar(tmp_path / "bad.tar.gz", [("top/ok.json", b"{}"), entry])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out")
    assert err.value.data["member"] == entry.name
    assert not (tmp_path / "out").exists()


def test_tar_member_below_a_link_is_refused(tmp_path: Path) -> None:
    """The link-then-write-through-it trick ('a' -> dir, then 'a/file') is refused."""
    archive = make_tar(tmp_path / "bad.tar.gz", [link("top/a", "."), ("top/a/file.json", b"{}")])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out")
    assert err.value.data["member"] == "top/a/file.json"


def test_tar_device_is_refused(tmp_path: Path) -> None:
    """Character devices and fifos never come out of an archive."""
    fifo = tarfile.TarInfo("top/pipe")
    fifo.type = tarfile.FIFOTYPE
    archive = make_tar(tmp_path / "bad.tar.gz", [fifo])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out")
    assert err.value.data["member"] == "top/pipe"


def test_zip_traversal_and_outward_symlink_are_refused(tmp_path: Path) -> None:
    """Zip members with ../ or a symlink out of the tree are refused by name."""
    traversal = make_zip(tmp_path / "t.zip", [("ok.json", b"{}"), ("../../evil.json", b"{}")])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(traversal, tmp_path / "out1")
    assert err.value.data["member"] == "../../evil.json"
    outward = make_zip(
        tmp_path / "l.zip", [("ok.json", b"{}")], symlinks={"escape": "../../../etc"}
    )
    with pytest.raises(UnsafeArchiveError) as err:
        extract(outward, tmp_path / "out2")
    assert err.value.data["member"] == "escape"
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()


def test_absurd_member_size_is_refused_before_writing(tmp_path: Path) -> None:
    """A member over max_member_bytes is refused before anything is extracted."""
    archive = make_zip(tmp_path / "big.zip", [("a.json", b"{}"), ("huge.bin", b"\0" * 4096)])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out", Limits(max_member_bytes=1024))
    assert err.value.data["member"] == "huge.bin"
    assert not (tmp_path / "out").exists()


def test_absurd_total_size_is_refused(tmp_path: Path) -> None:
    """An archive that unpacks past max_total_bytes (a zip bomb) is refused."""
    archive = make_tar(tmp_path / "bomb.tar.gz", [(f"f{i}.bin", b"\0" * 1000) for i in range(10)])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out", Limits(max_total_bytes=5000))
    assert "more than 5000 bytes" in err.value.message
    assert not (tmp_path / "out").exists()


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    """More members than max_members is refused."""
    archive = make_zip(tmp_path / "many.zip", [(f"f{i}.json", b"{}") for i in range(20)])
    with pytest.raises(UnsafeArchiveError) as err:
        extract(archive, tmp_path / "out", Limits(max_members=10))
    assert "20 members" in err.value.message


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    """Bytes that are neither zip nor tar raise UnsafeArchiveError, not a tarfile error."""
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>not an archive</html>")
    with pytest.raises(UnsafeArchiveError):
        extract(junk, tmp_path / "out")
