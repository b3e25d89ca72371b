"""Record siibra-python's assignment of the parity points to Julich-Brain 3.1 (labelled, MNI152).

The parity points are the 3,702 Allen Human Brain Atlas sample coordinates
(``shared/data/features/allen-ahba-samples/corrected_mni_coordinates.csv.gz``) followed by
1,000 seeded uniform points in a box a little larger than the brain (some fall outside the
map). siibra-python 1.0.1a25 (``.venv-siibra``) fetches the map's two NIfTI files from the
loopback mirror (tests/helpers/mirror.py) through a configuration copy whose URLs point at it
(scripts/siibra_mirror_config.py), then ``Map.assign(PointCloud)`` runs once; every row
(point index, region name, label, fragment) is written, compactly, to
``tests/data/maps/siibra-1.0.1a25-jba31-assign.json``. Run from the project root::

    .venv/bin/python scripts/record_siibra_assignments.py
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT / "tests"), str(PROJECT / "bench"), str(PROJECT / "scripts")]

from _siibra_python import SIIBRA_VERSION, run_snippet  # noqa: E402
from helpers.mirror import MirrorServer  # noqa: E402
from siibra_mirror_config import make_mirror_configuration  # noqa: E402

SHARED_DATA = PROJECT.parent / "shared" / "data"
ALLEN = "features/allen-ahba-samples/corrected_mni_coordinates.csv.gz"
RANDOM = {
    "seed": 20261121,
    "count": 1000,
    "low": [-85.0, -125.0, -85.0],
    "high": [85.0, 90.0, 95.0],
}
GOLDEN = PROJECT / "tests" / "data" / "maps" / f"siibra-{SIIBRA_VERSION}-jba31-assign.json"

SNIPPET = """
import numpy as np
import siibra
m = siibra.get_map(parcellation="julich 3.1", space="mni152", maptype="labelled")
points = siibra.PointCloud(np.array(ARGS["points"]), space=m.space)
t0 = time.perf_counter()
frame = m.assign(points)
seconds = time.perf_counter() - t0
rows = []
for _, row in frame.iterrows():
    region = row["region"]
    rows.append([int(row["input structure"]), None if region is None else region.name,
                 int(row["map value"]), row.get("fragment"), int(row["volume"])])
emit({"rows": rows, "seconds": seconds})
"""


def allen_points(shared_data: Path) -> npt.NDArray[np.float64]:
    """The Allen sample coordinates (mm, MNI152), in file order."""
    with gzip.open(shared_data / ALLEN, "rt") as fh:
        next(fh)
        return np.array([[float(v) for v in line.split(",")[1:4]] for line in fh if line.strip()])


def random_points(spec: dict[str, object]) -> npt.NDArray[np.float64]:
    """Seeded uniform points in a box (numpy's PCG64 stream is stable across versions)."""
    rng = np.random.default_rng(int(spec["seed"]))  # type: ignore[call-overload]
    return rng.uniform(spec["low"], spec["high"], (int(spec["count"]), 3))  # type: ignore[call-overload]


def parity_points(shared_data: Path, spec: dict[str, object] = RANDOM) -> npt.NDArray[np.float64]:
    return np.vstack([allen_points(shared_data), random_points(spec)])


def main() -> int:
    points = parity_points(SHARED_DATA)
    with MirrorServer(SHARED_DATA) as server, tempfile.TemporaryDirectory() as tmp:
        configuration = make_mirror_configuration(
            SHARED_DATA / "siibra-configurations", Path(tmp) / "configuration", server.url
        )
        result = run_snippet(
            SNIPPET,
            args={"points": points.tolist()},
            configuration=configuration,
            env={"SIIBRA_CACHEDIR": str(Path(tmp) / "siibra-cache")},
        )
    rows = result.value["rows"]
    names = sorted({r[1] for r in rows if r[1] is not None})
    code = {name: i for i, name in enumerate(names)}
    golden = {
        "siibra_version": SIIBRA_VERSION,
        "map": {"parcellation": "julich 3.1", "space": "mni152", "maptype": "labelled"},
        "points": {"allen": ALLEN, "random": RANDOM, "count": len(points)},
        "columns": ["point", "region (index into names)", "label", "fragment (0 left, 1 right)"],
        "names": names,
        "rows": [
            [r[0], -1 if r[1] is None else code[r[1]], r[2], 0 if "left" in str(r[3]) else 1]
            for r in rows
        ],
        "siibra_assign_s": round(result.value["seconds"], 3),
    }
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, separators=(",", ":")) + "\n", encoding="utf-8")
    sys.stdout.write(
        f"{len(rows)} rows for {len(points)} points -> {GOLDEN.relative_to(PROJECT)}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
