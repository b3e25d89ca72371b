"""Volume providers: one interface for every volumetric format a map can be stored in.

Contract: a :class:`VolumeProvider` turns one configured URL into a :class:`DecodedArray`
(array + voxel → mm affine), fetching through a :class:`Fetcher` (contract B; the store's
``HttpFetcher`` satisfies it structurally) and decoding through the on-disk
:class:`DecodedArrayCache`, so a second load of the same file is a memory map, not a gzip
decode. :func:`choose_format` picks the format siibra prefers among a volume's providers
(``nii``, then ``zip/nii``, then ``neuroglancer/precomputed``), and :func:`volume_parts`
lists the (volume, fragment, url) triples a map is made of. ``max_volume_bytes``
(``SIIBRAD_MAX_VOLUME_MB``) bounds the array a multi-resolution format decodes; single-file
formats ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from siibrad.catalog.model import Map, Volume
from siibrad.errors import UnsupportedError
from siibrad.maps.array_cache import DecodedArray, DecodedArrayCache
from siibrad.maps.precomputed import PrecomputedProvider

ByteProgress = Callable[[int, int | None], None]


class Fetcher(Protocol):
    """Contract B: a complete, verified local copy of a URL (see ``siibrad.store.fetch``)."""

    def fetch(
        self,
        url: str,
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        progress: ByteProgress | None = None,
    ) -> Path: ...


class VolumeProvider(Protocol):
    """Reads volumes of some formats; ``load`` returns the decoded array of one URL."""

    formats: ClassVar[tuple[str, ...]]

    def load(
        self,
        url: str,
        *,
        fetcher: Fetcher,
        arrays: DecodedArrayCache,
        progress: ByteProgress | None = None,
        max_volume_bytes: int | None = None,
    ) -> DecodedArray: ...


class NiftiProvider:
    """``nii``: a NIfTI-1/2 file, gzipped or not."""

    formats: ClassVar[tuple[str, ...]] = ("nii",)

    def load(
        self,
        url: str,
        *,
        fetcher: Fetcher,
        arrays: DecodedArrayCache,
        progress: ByteProgress | None = None,
        max_volume_bytes: int | None = None,
    ) -> DecodedArray:
        return arrays.get(fetcher.fetch(url, progress=progress))


class ZipNiftiProvider:
    """``zip/nii``: ``"<zip url> <member path>"``, a NIfTI file inside a zip archive."""

    formats: ClassVar[tuple[str, ...]] = ("zip/nii",)

    def load(
        self,
        url: str,
        *,
        fetcher: Fetcher,
        arrays: DecodedArrayCache,
        progress: ByteProgress | None = None,
        max_volume_bytes: int | None = None,
    ) -> DecodedArray:
        zip_url, _, member = url.partition(" ")
        if not member:
            raise UnsupportedError(f"zip/nii source without a member name: {url!r}", url=url)
        return arrays.get(fetcher.fetch(zip_url, progress=progress), member=member.strip())


PROVIDERS: dict[str, VolumeProvider] = {}
"""Format → provider, in siibra's order of preference."""


def register_provider(provider: VolumeProvider) -> None:
    """Make ``provider`` responsible for its formats."""
    for fmt in provider.formats:
        PROVIDERS[fmt] = provider


register_provider(NiftiProvider())
register_provider(ZipNiftiProvider())
register_provider(PrecomputedProvider())

PREFERRED_FORMATS = ("nii", "zip/nii", "neuroglancer/precomputed")


def choose_format(volume: Volume) -> str:
    """The first format of :data:`PREFERRED_FORMATS` that the volume offers and we can read."""
    for fmt in PREFERRED_FORMATS:
        if fmt in PROVIDERS and volume.providers_for(fmt):
            return fmt
    raise UnsupportedError(
        f"no readable volumetric format among {list(volume.formats)}",
        formats=list(volume.formats),
        readable=[f for f in PREFERRED_FORMATS if f in PROVIDERS],
    )


@dataclass(frozen=True, slots=True)
class MissingVolume:
    """A region whose map file could not be fetched or decoded, and why."""

    region: str
    url: str
    reason: str


@dataclass(frozen=True, slots=True)
class VolumePart:
    """One file of a map: volume number, fragment (``None`` if unfragmented), format, URL."""

    volume: int
    fragment: str | None
    format: str
    url: str


def volume_parts(map_: Map) -> list[VolumePart]:
    """Every (volume, fragment) file of a map, volumes in order, fragments in configured order."""
    parts: list[VolumePart] = []
    for number, volume in enumerate(map_.volumes):
        fmt = choose_format(volume)
        for provider in volume.providers_for(fmt):
            parts.append(VolumePart(number, provider.fragment, fmt, provider.url))
    return parts


def fragment_matches(requested: str | None, configured: str | None) -> bool:
    """siibra's rule: a requested fragment matches a configured one it is a substring of."""
    if requested is None or configured is None:
        return requested is None or configured is None
    return requested.lower() in configured.lower()
