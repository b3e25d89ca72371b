"""Configuration sources: folders, zips, and pinned GitHub tags served by loopback mirrors."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers.http_server import LoopbackServer

from siibrad.errors import ConfigurationError, ConfigurationUnavailableError, UnsafeArchiveError
from siibrad.settings import Settings
from siibrad.store.configuration import (
    COMPLETE_MARKER,
    github_archive_url,
    gitlab_archive_url,
    open_configuration,
)
from siibrad.store.fetch import HttpFetcher
from siibrad.store.retry import Backoff

TAG = "siibra-1.0.1-alpha.20"
GITHUB_PATH = f"/codeload/FZJ-INM1-BDA/siibra-configurations/tar.gz/{TAG}"
GITLAB_PATH = f"/gitlab/api/v4/projects/892/repository/archive.tar.gz?sha={TAG}"


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


@pytest.fixture(scope="session")
def github_tarball(configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real configuration as GitHub packs a tag: one top folder named after the commit."""
    path = tmp_path_factory.mktemp("archives") / "github.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        tar.add(configuration_dir, arcname="FZJ-INM1-BDA-siibra-configurations-177023a")
    return path


@pytest.fixture(scope="session")
def configuration_zip(configuration_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real configuration as a .zip with a siibra-configurations/ top folder."""
    path = tmp_path_factory.mktemp("archives") / "siibra-configurations.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for base, _dirs, files in os.walk(configuration_dir):
            for name in files:
                full = Path(base) / name
                zf.write(full, "siibra-configurations/" + str(full.relative_to(configuration_dir)))
    return path


def mirrored(server_url: str, tmp_path: Path, **changes: object) -> Settings:
    """Settings whose GitHub and GitLab hosts are served by the loopback server, offline."""
    values: dict[str, object] = {
        "cache_dir": tmp_path / "cache",
        "mirrors": f"https://codeload.github.com={server_url}/codeload,"
        f"https://gitlab.ebrains.eu={server_url}/gitlab",
        "offline": True,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
        "fetch_retries": 1,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def fast(settings: Settings) -> HttpFetcher:
    return HttpFetcher(settings, backoff=Backoff(base_s=0.01, cap_s=0.05))


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# --- local sources --------------------------------------------------------------------------


def test_folder_is_used_in_place(configuration_dir: Path) -> None:
    """A folder is its own root, with a stable fingerprint."""
    source = open_configuration(str(configuration_dir))
    assert (source.root, source.kind, source.tag) == (configuration_dir, "folder", None)
    assert source.digest == open_configuration(configuration_dir).digest
    assert (source.root / "parcellations").is_dir()


def test_extension_folder_opens(shared_data: Path) -> None:
    """An extension folder with only maps/ and parcellations/ is a valid source."""
    source = open_configuration(shared_data / "extensions" / "fsl-juelich")
    assert source.kind == "folder" and (source.root / "parcellations").is_dir()


def test_folder_without_configuration_is_refused(tmp_path: Path) -> None:
    """A folder with none of atlases/ spaces/ parcellations/ maps/ raises ConfigurationError."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError) as err:
        open_configuration(tmp_path / "empty")
    assert "parcellations/" in err.value.message


def test_missing_path_says_how_to_work_offline(tmp_path: Path) -> None:
    """A path that does not exist raises ConfigurationUnavailableError with the offline hint."""
    with pytest.raises(ConfigurationUnavailableError) as err:
        open_configuration(str(tmp_path / "nowhere"))
    assert "SIIBRAD_CONFIGURATION=/path/to/siibra-configurations" in err.value.message


def test_zip_is_extracted_once_and_again_only_when_changed(
    configuration_zip: Path, configuration_dir: Path, tmp_path: Path
) -> None:
    """A zip is extracted into the cache keyed by its digest, and re-extracted when it changes."""
    settings = Settings(cache_dir=tmp_path / "cache")
    local = tmp_path / "config.zip"
    local.write_bytes(configuration_zip.read_bytes())
    first = open_configuration(str(local), settings)
    assert first.kind == "zip" and first.root.name == "siibra-configurations"
    assert count_files(first.root) == count_files(configuration_dir)
    marker = first.root.parent / COMPLETE_MARKER
    stamp = marker.stat().st_mtime_ns
    again = open_configuration(str(local), settings)
    assert (again.root, again.digest) == (first.root, first.digest)
    assert marker.stat().st_mtime_ns == stamp
    with zipfile.ZipFile(local, "a") as zf:
        zf.writestr("siibra-configurations/atlases/extra.json", "{}")
    changed = open_configuration(str(local), settings)
    assert changed.digest != first.digest and changed.root != first.root
    assert (changed.root / "atlases" / "extra.json").is_file()


def test_zip_with_traversal_member_is_refused(tmp_path: Path) -> None:
    """A configuration zip with a ../ member raises UnsafeArchiveError naming it."""
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("atlases/a.json", "{}")
        zf.writestr("../../outside.json", "{}")
    with pytest.raises(UnsafeArchiveError) as err:
        open_configuration(bad, Settings(cache_dir=tmp_path / "cache"))
    assert err.value.data["member"] == "../../outside.json"
    assert not (tmp_path / "outside.json").exists()


def test_zip_declaring_an_absurd_size_is_refused(tmp_path: Path) -> None:
    """A zip whose member claims ~4 GiB is refused before anything is written."""
    bad = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("atlases/a.json", "{}")
        zf.writestr("maps/huge.bin", b"x" * 10)
    data = bytearray(bad.read_bytes())
    entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)  # 2nd central entry
    data[entry + 24 : entry + 28] = (0xFFFFFFFE).to_bytes(4, "little")
    bad.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError) as err:
        open_configuration(bad, Settings(cache_dir=tmp_path / "cache"))
    assert err.value.data["member"] == "maps/huge.bin"
    assert "4294967294 bytes" in err.value.message
    assert not list((tmp_path / "cache" / "configurations").glob("zip-*"))


# --- pinned tags ----------------------------------------------------------------------------


def test_github_tag_downloads_once_then_starts_offline(
    http_server: LoopbackServer, github_tarball: Path, configuration_dir: Path, tmp_path: Path
) -> None:
    """github:TAG is fetched once (via the mirror), and a second start needs no network at all."""
    http_server.add_file(GITHUB_PATH, github_tarball)
    settings = mirrored(http_server.url, tmp_path)
    source = open_configuration(f"github:{TAG}", settings, fetcher=fast(settings))
    assert (source.kind, source.tag) == ("github", TAG)
    assert source.url == github_archive_url(TAG)
    assert source.root.name == "FZJ-INM1-BDA-siibra-configurations-177023a"
    assert count_files(source.root) == count_files(configuration_dir)
    assert http_server.hits(GITHUB_PATH) == 1

    offline = mirrored(dead_url(), tmp_path)  # every host is now unreachable
    again = open_configuration(f"github:{TAG}", offline)
    assert (again.root, again.digest, again.kind) == (source.root, source.digest, "github")
    assert http_server.hits(GITHUB_PATH) == 1


def test_silent_github_falls_back_to_gitlab(
    http_server: LoopbackServer, github_tarball: Path, tmp_path: Path
) -> None:
    """GitHub accepting but never answering is bounded by the timeout; GitLab then serves."""
    http_server.add_file(GITHUB_PATH, github_tarball)
    http_server.hang(GITHUB_PATH)
    http_server.add_file(GITLAB_PATH, github_tarball)
    settings = mirrored(http_server.url, tmp_path, read_timeout_s=0.5)
    source = open_configuration(f"github:{TAG}", settings, fetcher=fast(settings))
    assert source.kind == "gitlab" and source.url == gitlab_archive_url(TAG)
    assert (source.root / "parcellations").is_dir()
    assert http_server.hits(GITHUB_PATH) == 1 and http_server.hits(GITLAB_PATH) == 1


def test_github_and_gitlab_unreachable_give_one_clear_error(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """Both hosts down: ONE ConfigurationUnavailableError listing both and how to work offline."""
    http_server.hang(GITHUB_PATH)
    settings = mirrored(http_server.url, tmp_path, read_timeout_s=0.5)
    with pytest.raises(ConfigurationUnavailableError) as err:
        open_configuration(f"github:{TAG}", settings, fetcher=fast(settings))
    message = err.value.message
    assert "SIIBRAD_CONFIGURATION=/path/to/siibra-configurations" in message and ".zip" in message
    assert [a["via"] for a in err.value.data["attempts"]] == ["github", "gitlab"]
    assert [a["type"] for a in err.value.data["attempts"]] == [
        "FetchTimeoutError",
        "DataUnavailableError",
    ]
    assert not list((tmp_path / "cache").glob("configurations/github-*"))


def test_hostile_github_archive_is_refused_and_forgotten(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """A tag archive with a link out of the tree: UnsafeArchiveError naming it, not kept."""
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(hostile, "w:gz") as tar:
        ok = tarfile.TarInfo("repo-abc/atlases/a.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        escape = tarfile.TarInfo("repo-abc/maps/escape")
        escape.type = tarfile.SYMTYPE
        escape.linkname = "../../../../home"
        tar.addfile(escape)
    http_server.add_file(GITHUB_PATH, hostile)
    settings = mirrored(http_server.url, tmp_path)
    fetcher = fast(settings)
    with pytest.raises(UnsafeArchiveError) as err:
        open_configuration(f"github:{TAG}", settings, fetcher=fetcher)
    assert err.value.data["member"] == "repo-abc/maps/escape"
    assert fetcher.cache.record(github_archive_url(TAG)) is None
    assert not list((tmp_path / "cache" / "configurations").glob("github-*"))


def test_gitlab_spec_asks_gitlab_only(
    http_server: LoopbackServer, github_tarball: Path, tmp_path: Path
) -> None:
    """gitlab:TAG never contacts GitHub."""
    http_server.add_file(GITLAB_PATH, github_tarball)
    settings = mirrored(http_server.url, tmp_path)
    source = open_configuration(f"gitlab:{TAG}", settings, fetcher=fast(settings))
    assert source.kind == "gitlab"
    assert http_server.hits(GITHUB_PATH) == 0


def test_remote_zip_url_is_a_source(
    http_server: LoopbackServer, configuration_zip: Path, tmp_path: Path
) -> None:
    """An http(s) URL of a configuration zip (e.g. an institute copy) is fetched and extracted."""
    url = http_server.add_file("/copies/siibra-configurations.zip", configuration_zip)
    settings = Settings(cache_dir=tmp_path / "cache")
    source = open_configuration(url, settings)
    assert source.kind == "zip" and (source.root / "atlases").is_dir()
    assert open_configuration(url, settings).root == source.root
    assert http_server.hits("/copies/siibra-configurations.zip") == 1
