"""The neuroglancer/precomputed provider on real datasets, over the loopback mirror (real fetch).

Each dataset in ../shared/data/precomputed was converted from a NIfTI file with the reference
writers (see its SOURCE.txt); read back through HttpFetcher over HTTP it must equal that file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers.mirror import *  # noqa: F403  (the fixtures)
from helpers.mirror import EXTENSION_PLACEHOLDER, MirrorServer

from siibrad.errors import UnsupportedError
from siibrad.maps.array_cache import DecodedArrayCache
from siibrad.maps.volumes import PROVIDERS
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher

BIGBRAIN = "bigbrain/full_cls_1000um.nii.gz"
DATASETS = {
    "bigbrain-cls-1mm-raw-gzip": BIGBRAIN,
    "bigbrain-cls-1mm-sharded-raw": BIGBRAIN,
    "bigbrain-cls-1mm-sharded-gzip": BIGBRAIN,
    "jba31-mpm-lh-cseg": "julich-brain/v3.1-mpm-mni152/JulichBrainAtlas31_LH.nii.gz",
    "mni152-t1-jpeg": "templates/mni152-icbm2009c-asym/ICBM2009asym_niivue_cropped.nii.gz",
}
PROVIDER = PROVIDERS["neuroglancer/precomputed"]
PROJECT = Path(__file__).resolve().parents[2]


def dataset_url(name: str) -> str:
    """The dataset's URL under the extension placeholder, which the mirror settings serve."""
    return f"{EXTENSION_PLACEHOLDER}precomputed/{name}"


def arrays_of(settings: Settings) -> DecodedArrayCache:
    return DecodedArrayCache(settings.cache_dir / "maps" / "arrays")


def chunk_requests(server: MirrorServer, name: str, since: int) -> list[str]:
    """Paths of requests for chunk or shard files of a dataset after request number ``since``."""
    return [
        r.path
        for r in server.requests[since:]
        if f"/precomputed/{name}/" in r.path and not r.path.endswith(("/info", "/transform.json"))
    ]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_equals_its_nifti_source_and_maps_back_on_the_second_load(
    shared_data: Path, mirror_server: MirrorServer, mirror_settings: Settings, name: str
) -> None:
    """Voxels and affine equal the source NIfTI (jpeg within its loss); a reload is a memmap."""
    fetcher = HttpFetcher(mirror_settings)
    arrays = arrays_of(mirror_settings)
    decoded = PROVIDER.load(dataset_url(name), fetcher=fetcher, arrays=arrays)
    img = nib.load(shared_data / DATASETS[name])
    expected = np.asarray(img.dataobj)
    assert decoded.array.shape == expected.shape
    np.testing.assert_array_equal(decoded.affine, img.affine)
    if name.endswith("jpeg"):
        diff = np.abs(decoded.array.astype(np.int16) - expected.astype(np.int16))
        assert diff.mean() < 1 and diff.max() <= 8
    else:
        np.testing.assert_array_equal(decoded.array, expected)
    assert decoded.array.dtype == expected.dtype  # uint32 labels narrowed back to uint8

    files = sorted(arrays.root.rglob("*.npy"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    before = len(mirror_server.requests)
    again = PROVIDER.load(dataset_url(name), fetcher=HttpFetcher(mirror_settings), arrays=arrays)
    assert isinstance(again.array, np.memmap)
    assert files[0].stat().st_mtime_ns == stamp
    assert chunk_requests(mirror_server, name, before) == []
    np.testing.assert_array_equal(again.affine, decoded.affine)


def test_a_new_process_maps_the_decoded_scale_back_without_reading_chunks(
    mirror_server: MirrorServer, mirror_settings: Settings
) -> None:
    """Another process on the same cache gets the .npy as a memmap; no chunk is requested."""
    name = "jba31-mpm-lh-cseg"
    first = PROVIDER.load(
        dataset_url(name), fetcher=HttpFetcher(mirror_settings), arrays=arrays_of(mirror_settings)
    )
    before = len(mirror_server.requests)
    script = (
        "import json, numpy as np\n"
        "from siibrad.settings import Settings\n"
        "from siibrad.store.fetch import HttpFetcher\n"
        "from siibrad.maps.array_cache import DecodedArrayCache\n"
        "from siibrad.maps.volumes import PROVIDERS\n"
        "s = Settings.from_env()\n"
        "d = PROVIDERS['neuroglancer/precomputed'].load(\n"
        f"    {dataset_url(name)!r}, fetcher=HttpFetcher(s),\n"
        "    arrays=DecodedArrayCache(s.cache_dir / 'maps' / 'arrays'))\n"
        "print(json.dumps({'memmap': isinstance(d.array, np.memmap),\n"
        "                  'sum': int(d.array.sum(dtype=np.int64))}))\n"
    )
    env = {
        **os.environ,
        "SIIBRAD_CACHE_DIR": str(mirror_settings.cache_dir),
        "SIIBRAD_MIRRORS": mirror_settings.mirrors,
        "SIIBRAD_OFFLINE": "1",
        "SIIBRAD_LOG_LEVEL": "warning",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply == {"memmap": True, "sum": int(first.array.sum(dtype=np.int64))}
    assert chunk_requests(mirror_server, name, before) == []


@pytest.mark.parametrize(
    ("name", "shape", "origin_mm"),
    [
        ("bigbrain-cls-1mm-raw-gzip", (70, 77, 61), (-70.1666, -72.0100, -58.2777)),
        ("jba31-mpm-lh-cseg", (79, 99, 83), (-77.5, -114.5, -77.5)),
    ],
)
def test_a_small_budget_reads_the_coarser_scale_with_its_own_voxel_centres(
    shared_data: Path,
    mirror_settings: Settings,
    name: str,
    shape: tuple[int, int, int],
    origin_mm: tuple[float, float, float],
) -> None:
    """Below the 1 mm size, the 2 mm scale: its shape, 2 mm voxels, centres per research §5."""
    decoded = PROVIDER.load(
        dataset_url(name),
        fetcher=HttpFetcher(mirror_settings),
        arrays=arrays_of(mirror_settings),
        max_volume_bytes=int(np.prod(shape)) * 4,
    )
    assert decoded.array.shape == shape
    transform = np.array(
        json.loads((shared_data / "precomputed" / name / "transform.json").read_text())
    )
    expected = transform @ np.diag([2e6, 2e6, 2e6, 1.0])
    expected[:3, 3] += transform[:3, :3] @ np.full(3, 1e6)
    expected[:3] /= 1e6
    np.testing.assert_allclose(decoded.affine, expected, atol=1e-9)
    np.testing.assert_allclose(np.diag(decoded.affine)[:3], [2.0, 2.0, 2.0])
    # 1 mm centres start half a millimetre inside the corner, 2 mm centres a whole one
    np.testing.assert_allclose(decoded.affine[:3, 3], origin_mm, atol=1e-4)
    full = np.asarray(nib.load(shared_data / DATASETS[name]).dataobj)
    assert set(np.unique(decoded.array)) <= set(np.unique(full))


def test_no_scale_within_the_budget_is_unsupported_naming_the_setting(
    mirror_settings: Settings,
) -> None:
    """A budget below the coarsest scale raises UnsupportedError naming SIIBRAD_MAX_VOLUME_MB."""
    with pytest.raises(UnsupportedError) as err:
        PROVIDER.load(
            dataset_url("mni152-t1-jpeg"),
            fetcher=HttpFetcher(mirror_settings),
            arrays=arrays_of(mirror_settings),
            max_volume_bytes=1000,
        )
    assert err.value.data["setting"] == "SIIBRAD_MAX_VOLUME_MB"
    assert not list(arrays_of(mirror_settings).root.rglob("*.npy"))


def test_max_volume_setting_reads_megabytes_from_the_environment() -> None:
    """SIIBRAD_MAX_VOLUME_MB is in MiB; the default is siibra's 0.2 GiB."""
    assert Settings.from_env({}).max_volume_bytes == int(0.2 * 1024**3)
    assert Settings.from_env({"SIIBRAD_MAX_VOLUME_MB": "1.5"}).max_volume_bytes == 1572864


def test_deep_on_disk_layout_in_a_mirror_directory_reads_like_the_flat_one(
    shared_data: Path, mirror_settings: Settings, tmp_path: Path
) -> None:
    """neuroglancer-scripts' default layout (x0-x1/y0-y1/z0-z1.gz), as a local copy, is read too."""
    name = "bigbrain-cls-1mm-raw-gzip"
    flat = shared_data / "precomputed" / name
    deep = tmp_path / "copy" / name
    for source in flat.rglob("*"):
        if source.is_file():
            relative = source.relative_to(flat)
            if relative.parent != Path("."):  # a chunk file: x0-x1_y0-y1_z0-z1(.gz)
                relative = relative.parent / relative.name.replace("_", "/")
            (deep / relative).parent.mkdir(parents=True, exist_ok=True)
            (deep / relative).symlink_to(source)
    assert (deep / "1mm" / "0-32" / "0-32" / "0-32.gz").is_symlink()
    settings = Settings.from_env(
        {},
        cache_dir=tmp_path / "cache",
        mirrors=f"https://precomputed.example.org/data={tmp_path / 'copy'}",
        offline=True,
    )
    url = f"https://precomputed.example.org/data/{name}"
    decoded = PROVIDER.load(url, fetcher=HttpFetcher(settings), arrays=arrays_of(settings))
    expected = np.asarray(nib.load(shared_data / BIGBRAIN).dataobj)
    np.testing.assert_array_equal(decoded.array, expected)
