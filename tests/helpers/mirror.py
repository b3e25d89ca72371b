"""A loopback "EBRAINS" for tests and benchmarks: the real files of ../shared/data over HTTP.

``MirrorServer`` serves, on 127.0.0.1, every file listed in ``shared/data/MIRROR.tsv`` at the
path of its real URL (``https://data-proxy.ebrains.eu/api/v1/...`` →
``http://127.0.0.1:PORT/data-proxy.ebrains.eu/api/v1/...``) and the whole ``shared/data`` tree
under ``/shared-data/`` (the convention of the fsl-juelich extension, whose URLs start with the
placeholder ``http://127.0.0.1:PORT/shared-data/``). ``mirrors_setting`` gives the
``SIIBRAD_MIRRORS`` value that sends both through the server, so the real fetch path
(``HttpFetcher``: HTTP, cache, checksums) runs in tests. URLs the mirror does not hold get 404,
exactly what an incomplete EBRAINS mirror does (50 of Julich-Brain 1.18's 212 files).

Fixtures: ``mirror_server`` (one per session), ``mirror_settings`` (offline Settings whose
mirrors point at it, cache in the test's tmp_path), ``shared_maps_settings`` (the same with a
cache shared by the whole session, so the 1.18 sparse index is built once per run),
``maps_catalog`` (the offline configuration + the fsl-juelich extension) and
``shared_map_store`` (a MapStore on HttpFetcher over that session cache).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.http_server import LoopbackServer
from siibrad.catalog import Catalog
from siibrad.maps.store import MapStore
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher

EXTENSION_PLACEHOLDER = "http://127.0.0.1:PORT/shared-data/"

__all__ = [  # the fixtures, for ``from helpers.mirror import *`` in a test module
    "maps_catalog",
    "mirror_server",
    "mirror_settings",
    "shared_map_store",
    "shared_maps_settings",
]


def mirror_table(shared_data: Path) -> list[tuple[str, Path]]:
    """(real URL, local file) rows of MIRROR.tsv."""
    rows: list[tuple[str, Path]] = []
    with (shared_data / "MIRROR.tsv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            rows.append((row["url"], shared_data / row["path"]))
    return rows


def url_path(url: str) -> str:
    """The loopback path of a real URL: ``https://host/p`` → ``/host/p``."""
    return "/" + url.split("://", 1)[1]


class MirrorServer(LoopbackServer):
    """A LoopbackServer preloaded with MIRROR.tsv and the shared-data tree."""

    def __init__(self, shared_data: Path) -> None:
        super().__init__()
        self.shared_data = shared_data
        self.hosts: set[str] = set()
        for url, path in mirror_table(shared_data):
            self.add_file(url_path(url), path)
            self.hosts.add(url.split("://", 1)[0] + "://" + url.split("/")[2])
        self.add_directory("/shared-data", shared_data)

    def local_url(self, url: str) -> str:
        """Where this server serves a real URL."""
        return self.url + url_path(url)

    @property
    def mirrors_setting(self) -> str:
        """``SIIBRAD_MIRRORS``: every mirrored host, plus the extension placeholder."""
        rules = [f"{host}={self.url}/{host.split('://', 1)[1]}" for host in sorted(self.hosts)]
        rules.append(f"{EXTENSION_PLACEHOLDER.rstrip('/')}={self.url}/shared-data")
        return ",".join(rules)


def mirror_settings_for(server: MirrorServer, cache_dir: Path) -> Settings:
    """Offline settings (no origin contacted) whose mirrors point at ``server``."""
    return Settings.from_env(
        {},
        cache_dir=cache_dir,
        mirrors=server.mirrors_setting,
        offline=True,
        fetch_retries=1,
        connect_timeout_s=5.0,
        read_timeout_s=30.0,
    )


@pytest.fixture(scope="session")
def mirror_server(shared_data: Path) -> Iterator[MirrorServer]:
    """The loopback EBRAINS mirror, started once per session."""
    server = MirrorServer(shared_data)
    with server:
        yield server


@pytest.fixture
def mirror_settings(mirror_server: MirrorServer, tmp_path: Path) -> Settings:
    """Settings for one test: mirrors → the loopback server, cache under tmp_path, offline."""
    return mirror_settings_for(mirror_server, tmp_path / "mirror-cache")


@pytest.fixture(scope="session")
def shared_maps_settings(
    mirror_server: MirrorServer, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Like ``mirror_settings`` but one cache for the session (decoded maps built once)."""
    return mirror_settings_for(mirror_server, shared_cache_dir(tmp_path_factory))


def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per pytest session, whichever module asks first."""
    return tmp_path_factory.getbasetemp() / "maps-session-cache"


@pytest.fixture(scope="session")
def maps_catalog(shared_data: Path) -> Catalog:
    """The offline configuration plus the fsl-juelich extension."""
    return Catalog.load(
        shared_data / "siibra-configurations",
        extensions=[shared_data / "extensions" / "fsl-juelich"],
    )


@pytest.fixture(scope="session")
def shared_map_store(
    mirror_server: MirrorServer, tmp_path_factory: pytest.TempPathFactory, maps_catalog: Catalog
) -> MapStore:
    """A MapStore on the real fetch path whose cache lives for the session (built once)."""
    settings = mirror_settings_for(mirror_server, shared_cache_dir(tmp_path_factory))
    return MapStore(settings, HttpFetcher(settings), maps_catalog)
