"""Point assignment: siibrad (through its client and a real daemon) beside siibra-python.

Both sides fetch the same real files from the same loopback mirror (tests/helpers/mirror.py;
siibra through a configuration copy with rewritten URLs, scripts/siibra_mirror_config.py).
Prints one table of medians (the machine is shared and noisy: compare ratios, not absolutes)::

    .venv/bin/python bench/assign.py [--repeat 50] [--siibra-timeout 120]

Rows: labelled Julich-Brain 3.1 (MNI152) for 1 / 10,000 / 1,000,000 points and one point with
sigma 5 mm; statistical Julich-Brain 1.18 for 1 and 10,000 points; daemon restart to the
first assignment with a warm cache; sparse index build (time, peak traced memory); daemon RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import structlog

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT / "tests"), str(PROJECT / "bench"), str(PROJECT / "scripts")]
SHARED = PROJECT.parent / "shared" / "data"

from _siibra_python import SiibraPythonError, run_snippet  # noqa: E402
from helpers.mirror import MirrorServer, mirror_settings_for  # noqa: E402
from siibra_mirror_config import make_mirror_configuration  # noqa: E402
from siibrad_client import Client  # noqa: E402

from siibrad.catalog import Catalog  # noqa: E402
from siibrad.maps.store import MapStore  # noqa: E402
from siibrad.store.fetch import HttpFetcher  # noqa: E402

LABELLED = {"parcellation": "julich 3.1", "space": "mni152", "maptype": "labelled"}
STATISTICAL = {"parcellation": "julich 1.18", "space": "mni152", "maptype": "statistical"}
POINT = [[-8.0, -90.0, 4.0]]


def random_points(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).uniform([-70, -105, -50], [70, 70, 80], (n, 3))


def timings_ms(fn: Any, repeat: int) -> list[float]:
    """Sorted wall times (ms) of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)


def median_ms(fn: Any, repeat: int) -> float:
    return statistics.median(timings_ms(fn, repeat))


def p50_p99_ms(fn: Any, repeat: int) -> str:
    """``"p50 (p99)"`` in ms over ``repeat`` calls after 50 warm-up calls."""
    timings_ms(fn, 50)
    times = timings_ms(fn, repeat)
    return f"{statistics.median(times):.3f} ({times[int(0.99 * (len(times) - 1))]:.2f})"


def start_daemon(runtime: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "siibrad", "serve", "--runtime-dir", str(runtime)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = runtime / "daemon.json"
        if info.is_file():
            return proc, json.loads(info.read_text())["endpoints"]["zmq"]
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError("daemon did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


SIIBRA_SNIPPET = """
import numpy as np, siibra, statistics, signal
res = {}
m = siibra.get_map(parcellation="julich 3.1", space="mni152", maptype="labelled")
pt = siibra.Point(ARGS["point"], space=m.space)
m.assign(pt)  # warm (fetch, decode)
ts = []
for _ in range(ARGS["repeat"]):
    t0 = time.perf_counter(); m.assign(pt); ts.append(time.perf_counter() - t0)
res["labelled_1"] = statistics.median(ts) * 1000
pts = siibra.PointCloud(np.array(ARGS["points10k"]), space=m.space)
t0 = time.perf_counter(); m.assign(pts); res["labelled_10k"] = (time.perf_counter() - t0) * 1000
def alarm(*_): raise TimeoutError()
signal.signal(signal.SIGALRM, alarm)
signal.alarm(int(ARGS["timeout"]))
try:
    t0 = time.perf_counter()
    m.assign(siibra.Point(ARGS["point"], space=m.space, sigma_mm=5.0))
    res["labelled_sigma5"] = (time.perf_counter() - t0) * 1000
except TimeoutError:
    res["labelled_sigma5"] = "> %d s" % ARGS["timeout"]
signal.alarm(0)
try:
    s = siibra.get_map(parcellation="julich 1.18", space="mni152", maptype="statistical")
    t0 = time.perf_counter(); s.assign(pt)
    res["statistical_1"] = (time.perf_counter() - t0) * 1000
except Exception as exc:
    res["statistical_1"] = "fails: " + type(exc).__name__
    res["statistical_10k"] = "fails: " + type(exc).__name__
emit(res)
"""


def fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING + 10))
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--round-trips", type=int, default=2000, help="calls for the 1-point rows")
    parser.add_argument("--siibra-timeout", type=int, default=120)
    args = parser.parse_args()
    rows: list[tuple[str, Any, Any, str]] = []
    with MirrorServer(SHARED) as server, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        base = Path(tmp)
        settings = mirror_settings_for(server, base / "cache")
        catalog = Catalog.load(SHARED / "siibra-configurations")
        # the sparse index build, in process, measured with tracemalloc
        store = MapStore(settings, HttpFetcher(settings), catalog)
        jba118 = catalog.map("julich 1.18", "mni152", "statistical")
        tracemalloc.start()
        t0 = time.perf_counter()
        store.warm(jba118)
        build_s = time.perf_counter() - t0
        peak_mb = tracemalloc.get_traced_memory()[1] / 1024**2
        tracemalloc.stop()
        del store
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIIBRAD_")}
        env.update(
            SIIBRAD_CONFIGURATION=str(SHARED / "siibra-configurations"),
            SIIBRAD_CACHE_DIR=str(base / "cache"),
            SIIBRAD_MIRRORS=server.mirrors_setting,
            SIIBRAD_OFFLINE="1",
            SIIBRAD_LOG_LEVEL="warning",
        )
        runtime = Path(tempfile.mkdtemp(prefix="sdb-"))
        proc, endpoint = start_daemon(runtime, env)
        p10k, p1m = random_points(10_000), random_points(1_000_000)
        with Client(endpoint, timeout_s=600) as client:
            client.call("map/assign", {**LABELLED, "points": POINT})
            ours: dict[str, Any] = {
                "labelled_1": p50_p99_ms(
                    lambda: client.call("map/assign", {**LABELLED, "points": POINT}),
                    args.round_trips,
                ),
                "labelled_10k": median_ms(
                    lambda: client.call("map/assign", {**LABELLED, "points": p10k}), 11
                ),
                "labelled_1M": median_ms(
                    lambda: client.call("map/assign", {**LABELLED, "points": p1m}), 3
                ),
                "labelled_sigma5": median_ms(
                    lambda: client.call(
                        "map/assign", {**LABELLED, "points": POINT, "sigma_mm": 5.0}
                    ),
                    11,
                ),
            }
            client.call("map/assign", {**STATISTICAL, "points": POINT})
            ours["statistical_1"] = p50_p99_ms(
                lambda: client.call("map/assign", {**STATISTICAL, "points": POINT}),
                args.round_trips,
            )
            ours["statistical_10k"] = median_ms(
                lambda: client.call("map/assign", {**STATISTICAL, "points": p10k}), 11
            )
            rss = rss_mb(proc.pid)
        proc.terminate()
        proc.wait(timeout=30)
        # restart with a warm cache: spawn → first labelled assignment answered; this daemon
        # runs at the default log level (one structlog line per request, to /dev/null here)
        t0 = time.perf_counter()
        proc, endpoint = start_daemon(runtime, {**env, "SIIBRAD_LOG_LEVEL": "info"})
        with Client(endpoint, timeout_s=120) as client:
            client.call("map/assign", {**LABELLED, "points": POINT})
        restart_s = time.perf_counter() - t0
        with Client(endpoint, timeout_s=120) as client:
            client.call("map/assign", {**STATISTICAL, "points": POINT})
            restart_stat_s = time.perf_counter() - t0
            ours["labelled_1_logged"] = p50_p99_ms(
                lambda: client.call("map/assign", {**LABELLED, "points": POINT}),
                args.round_trips,
            )
        proc.terminate()
        proc.wait(timeout=30)
        try:
            config = make_mirror_configuration(
                SHARED / "siibra-configurations", base / "siibra-config", server.url
            )
            theirs = run_snippet(
                SIIBRA_SNIPPET,
                args={
                    "point": POINT[0],
                    "points10k": p10k.tolist(),
                    "repeat": min(args.repeat, 20),
                    "timeout": args.siibra_timeout,
                },
                configuration=config,
                env={"SIIBRA_CACHEDIR": str(base / "siibra-cache")},
                timeout_s=args.siibra_timeout + 600,
            ).value
        except SiibraPythonError as exc:
            theirs = {"error": str(exc).splitlines()[0]}
    names = {
        "labelled_1": "assign 1 point, labelled JBA 3.1, round trip p50 (p99) (ms)",
        "labelled_1_logged": "... same, with the per-request log line on (level info)",
        "labelled_10k": "assign 10,000 points, labelled (ms)",
        "labelled_1M": "assign 1,000,000 points, labelled (ms)",
        "labelled_sigma5": "assign 1 point sigma 5 mm, labelled (ms)",
        "statistical_1": "assign 1 point, statistical JBA 1.18, p50 (p99) (ms)",
        "statistical_10k": "assign 10,000 points, statistical (ms)",
    }
    for key, label in names.items():
        mine, other = ours[key], theirs.get(key, "n/a" if key != "labelled_1_logged" else "")
        mine_ms = float(mine.split()[0]) if isinstance(mine, str) else mine
        ratio = f"{other / mine_ms:.0f}x" if isinstance(other, float) and mine_ms else ""
        rows.append((label, mine, other, ratio))
    rows.append(("daemon restart → first labelled assignment, warm cache (s)", restart_s, "", ""))
    rows.append(("... → first statistical assignment too (s)", restart_stat_s, "", ""))
    rows.append(("sparse index build JBA 1.18, 162 maps (s)", build_s, "", ""))
    rows.append(("sparse index build peak traced memory (MiB)", peak_mb, "", ""))
    rows.append(("daemon RSS with both maps warm (MiB)", rss, "", ""))
    width = max(len(r[0]) for r in rows)
    sys.stdout.write(f"{'measure':<{width}}  {'siibrad':>10}  {'siibra-python':>14}  ratio\n")
    for label, mine, other, ratio in rows:
        sys.stdout.write(f"{label:<{width}}  {fmt(mine):>10}  {fmt(other):>14}  {ratio}\n")
    if "error" in theirs:
        sys.stdout.write(f"siibra-python failed: {theirs['error']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
