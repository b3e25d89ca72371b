"""bench/daemon.py runs end to end in its quick mode and prints its table (no timing checks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "daemon.py"


def test_daemon_bench_quick_prints_the_table(configuration_dir: Path) -> None:
    """`bench/daemon.py --quick --no-siibra` exits 0 and prints every measured row."""
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-siibra"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for row in (
        "region/resolve round trip p50",
        "region/resolve round trip p99",
        "fresh process, daemon running",
        "fresh process, auto-start included",
        "throughput, 2 processes, sync",
    ):
        assert row in out.stdout
