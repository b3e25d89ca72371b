"""bench/catalog.py runs end to end in smoke mode and prints its side-by-side table.

Timings are never asserted here (they belong to the bench's own output); the test pins that
the bench still runs against the current catalogue API and reports every row it promises.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
BENCH = PROJECT / "bench" / "catalog.py"
ROWS = (
    "import",
    "load + index, folder, cold (first start)",
    "load + index, folder, warm disk cache",
    "first region after load",
    "resolution, first call: median",
    "resolution, repeated: median",
    "resolution, repeated: p99",
)


def test_catalog_bench_quick_prints_a_table(configuration_dir: Path, tmp_path: Path) -> None:
    """`bench/catalog.py --quick --no-siibra` exits 0 and prints every row with a value."""
    raw = tmp_path / "catalog.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--no-siibra",
            "--configuration",
            str(configuration_dir),
            "--json",
            str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=PROJECT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if "siibrad" in line and "siibra-python" in line)
    assert header.split()[:2] == ["siibrad", "siibra-python"]
    for row in ROWS:
        line = next((ln for ln in lines if ln.startswith(row + " ")), None)
        assert line is not None, f"row {row!r} missing from:\n{proc.stdout}"
        value = line[len(row) :].split()
        assert value[1] in {"s", "ms", "µs", "ns"}, line  # a number with its unit
        float(value[0])
    assert "siibra-python not measured" in proc.stdout
    assert raw.is_file() and raw.stat().st_size > 0
