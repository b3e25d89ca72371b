"""Every volume provider passes one battery: same array and affine as nibabel, cached decode."""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from siibrad.catalog.model import Provider, Volume
from siibrad.errors import DataUnavailableError
from siibrad.maps.array_cache import DecodedArrayCache
from siibrad.maps.volumes import PROVIDERS, choose_format
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher

SOURCES = {
    "labelled uint8 3D": "julich-brain/v3.1-mpm-mni152/JulichBrainAtlas31_LH.nii.gz",
    "probability float32 3D": (
        "julich-brain/pmaps-mni152-2020/"
        "Area-25_l_N10_nlin2MNI152ASYM2009C_16.1_publicP_bc3b69f445a7d6db586b15476c88b2de.nii.gz"
    ),
    "FSL LAS 2 mm": "fsl-juelich-histological/Juelich-maxprob-thr25-2mm.nii.gz",
    "4D uint8": "fsl-juelich-histological/Juelich-prob-2mm.nii.gz",
}


def _as_format(kind: str, source: Path, tmp_path: Path) -> tuple[str, str]:
    """(format, url) serving ``source`` as .nii.gz, plain .nii, or a member of a zip."""
    if kind == "nii.gz":
        return "nii", source.as_uri()
    if kind == "nii":
        plain = tmp_path / (source.name.removesuffix(".gz"))
        with gzip.open(source) as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        return "nii", plain.as_uri()
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(source, f"maps/{source.name}")
    return "zip/nii", f"{archive.as_uri()} maps/{source.name}"


@pytest.mark.parametrize("kind", ["nii.gz", "nii", "zip/nii"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_provider_decodes_like_nibabel_and_reuses_the_decoded_copy(
    shared_data: Path, tmp_path: Path, kind: str, name: str
) -> None:
    """Array values, dtype range and affine equal nibabel's; a second load maps the .npy back."""
    source = shared_data / SOURCES[name]
    fmt, url = _as_format(kind, source, tmp_path)
    settings = Settings.from_env({}, cache_dir=tmp_path / "cache", offline=True)
    fetcher = HttpFetcher(settings)
    arrays = DecodedArrayCache(tmp_path / "cache" / "maps" / "arrays")
    provider = PROVIDERS[fmt]
    decoded = provider.load(url, fetcher=fetcher, arrays=arrays)
    img = nib.load(source)
    expected = np.asarray(img.dataobj)
    np.testing.assert_array_equal(decoded.array, expected)
    np.testing.assert_array_equal(decoded.affine, img.affine)
    assert decoded.array.dtype.itemsize <= expected.dtype.itemsize
    files = sorted((tmp_path / "cache" / "maps" / "arrays").rglob("*.npy"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = provider.load(url, fetcher=fetcher, arrays=arrays)
    assert isinstance(again.array, np.memmap)
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_truncated_file_is_data_unavailable(shared_data: Path, tmp_path: Path) -> None:
    """A cut-off .nii.gz raises DataUnavailableError, and leaves no decoded entry behind."""
    source = shared_data / SOURCES["labelled uint8 3D"]
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    settings = Settings.from_env({}, cache_dir=tmp_path / "cache", offline=True)
    arrays = DecodedArrayCache(tmp_path / "cache" / "arrays")
    with pytest.raises(DataUnavailableError):
        PROVIDERS["nii"].load(cut.as_uri(), fetcher=HttpFetcher(settings), arrays=arrays)
    assert not list((tmp_path / "cache" / "arrays").rglob("*.npy"))


def test_missing_zip_member_names_the_members(shared_data: Path, tmp_path: Path) -> None:
    """A zip/nii URL whose member is absent raises DataUnavailableError listing the members."""
    source = shared_data / SOURCES["FSL LAS 2 mm"]
    _, url = _as_format("zip/nii", source, tmp_path)
    settings = Settings.from_env({}, cache_dir=tmp_path / "cache", offline=True)
    arrays = DecodedArrayCache(tmp_path / "cache" / "arrays")
    with pytest.raises(DataUnavailableError) as info:
        PROVIDERS["zip/nii"].load(
            url.split(" ")[0] + " maps/other.nii.gz", fetcher=HttpFetcher(settings), arrays=arrays
        )
    assert info.value.data["members"] == [f"maps/{source.name}"]


def test_format_preference_follows_siibra() -> None:
    """nii is preferred over zip/nii and neuroglancer/precomputed, as in siibra."""
    volume = Volume(
        providers=(
            Provider("neuroglancer/precomputed", "https://ng.example/x"),
            Provider("zip/nii", "https://example.org/a.zip a.nii"),
            Provider("nii", "https://example.org/a.nii.gz"),
        )
    )
    assert choose_format(volume) == "nii"
