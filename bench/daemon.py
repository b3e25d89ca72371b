"""Benchmark of the daemon through the Python client, side by side with siibra-python.

Usage::

    .venv/bin/python bench/daemon.py              # full run (a few minutes)
    .venv/bin/python bench/daemon.py --quick      # smoke run, seconds
    .venv/bin/python bench/daemon.py --no-siibra  # siibrad only

Measured in one run (the machine is noisy: every figure is a median over repeated rounds):

- ``region/resolve`` round trip through ``Client.get_region``-level calls, p50 and p99 over
  a list of Julich-Brain 3.1 specs (goal p50 ≤ 0.3 ms, p99 ≤ 2 ms); siibra-python: the same
  specs with ``siibra.get_region`` in process, repeated (and the first call).
- a fresh process doing ``Client()`` plus its first answer, wall time seen by the parent:
  with the daemon already running (goal ≤ 150 ms) and with auto-start included (goal ≤ 1 s);
  siibra-python: a fresh process doing ``import siibra`` plus its first ``get_region``.
- aggregate throughput of 8 client processes sending small requests one at a time
  (goal ≥ 10,000/s), and with 16 requests in flight per process (``Client.submit``).

The daemon runs on the offline configuration in a temporary runtime dir and cache, started by
the client's own auto-start; nothing is left running afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
sys.path.insert(0, str(BENCH))

CONFIGURATION = PROJECT.parent / "shared" / "data" / "siibra-configurations"
PARCELLATION = "julich 3.1"
SPECS = [
    "hoc1 left", "hoc1 right", "hoc2 left", "44 left", "44 right", "45 left", "4a left",
    "4p right", "3b left", "fg1 left", "fg2 right", "te 1.0 left", "ifs1 left", "frontal lobe",
    "hoc1", "v1", "temporal lobe", "CA1 (Hippocampus) left", "Area 6d1 (PreCG) right",
    "AREA_44_IFG_RIGHT",
]  # fmt: skip


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.0
    """
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


# --- siibrad side ---------------------------------------------------------------------------


@contextmanager
def daemon_environment() -> Iterator[dict[str, str]]:
    """A private runtime dir and cache; the environment client processes run with."""
    runtime = Path(tempfile.mkdtemp(prefix="sdb-"))
    cache = Path(tempfile.mkdtemp(prefix="sdb-cache-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIIBRAD_")}
    env.update(
        SIIBRAD_RUNTIME_DIR=str(runtime),
        SIIBRAD_CACHE_DIR=str(cache),
        SIIBRAD_CONFIGURATION=str(CONFIGURATION),
        SIIBRAD_LOG_LEVEL="warning",
    )
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield env
    finally:
        stop_daemon(runtime)
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def stop_daemon(runtime: Path) -> None:
    """Stop the daemon of ``runtime`` (if any) and wait until its connection file is gone."""
    from siibrad_client import Client, SiibradError

    if not (runtime / "daemon.json").exists():
        return
    pid = json.loads((runtime / "daemon.json").read_text()).get("pid")
    try:
        with Client(runtime_dir=runtime, autostart=False, connect_timeout_s=5) as client:
            client.shutdown()
    except SiibradError:
        pass
    for _ in range(600):  # bounded: until the file is gone and the process has exited
        if not (runtime / "daemon.json").exists() and not _alive(pid):
            return
        time.sleep(0.05)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def measure_round_trips(rounds: int, calls: int) -> dict[str, Any]:
    """region/resolve and daemon/ping latency through one client (µs), median of rounds."""
    from siibrad_client import Client

    with Client() as client:
        for spec in SPECS:  # warm the daemon's memo and the connection
            client.call("region/resolve", {"parcellation": PARCELLATION, "region": spec})
        p50s, p99s, ping50s = [], [], []
        for _ in range(rounds):
            samples = []
            for i in range(calls):
                params = {"parcellation": PARCELLATION, "region": SPECS[i % len(SPECS)]}
                t0 = time.perf_counter()
                client.call("region/resolve", params)
                samples.append(time.perf_counter() - t0)
            p50s.append(percentile(samples, 0.5))
            p99s.append(percentile(samples, 0.99))
            pings = []
            for _ in range(calls // 4):
                t0 = time.perf_counter()
                client.call("daemon/ping")
                pings.append(time.perf_counter() - t0)
            ping50s.append(percentile(pings, 0.5))
    return {
        "resolve_p50_s": statistics.median(p50s),
        "resolve_p99_s": statistics.median(p99s),
        "ping_p50_s": statistics.median(ping50s),
    }


FIRST_ANSWER = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    from siibrad_client import Client
    client = Client()
    region = client.get_region({parcellation!r}, "hoc1 left")
    print(time.perf_counter() - t0, client.started_daemon)
    client.close()
    """
)


def fresh_process(env: dict[str, str]) -> tuple[float, float, bool]:
    """Wall time (parent's view), in-process time, and whether it started the daemon."""
    code = FIRST_ANSWER.format(parcellation=PARCELLATION)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"client process failed: {out.stderr.strip()}")
    inner, started = out.stdout.split()
    return wall, float(inner), started == "True"


WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from siibrad_client import Client
    count, window, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    client = Client(autostart=False)
    params = [{{"parcellation": {parcellation!r}, "region": s}} for s in {specs!r}]
    client.call("region/resolve", params[0])
    while not os.path.exists(go):
        time.sleep(0.001)
    start = time.time()
    if window <= 1:
        for i in range(count):
            client.call("region/resolve", params[i % len(params)])
    else:
        pending = []
        for i in range(count):
            pending.append(client.submit("region/resolve", params[i % len(params)]))
            if len(pending) >= window:
                pending.pop(0).result()
        for p in pending:
            p.result()
    print(json.dumps({{"start": start, "end": time.time(), "count": count}}))
    client.close()
    """
)


def measure_throughput(env: dict[str, str], processes: int, count: int, window: int) -> float:
    """Aggregate requests/s of ``processes`` clients released together by a barrier file."""
    code = WORKER.format(parcellation=PARCELLATION, specs=SPECS)
    go = Path(env["SIIBRAD_RUNTIME_DIR"]) / f"go-{window}-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(count), str(window), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(0.5)  # let every worker connect and shake hands before the barrier opens
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"throughput worker failed: {err.strip()}")
        reports.append(json.loads(out))
    go.unlink()
    span = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return sum(r["count"] for r in reports) / span


def measure_siibrad(quick: bool) -> dict[str, Any]:
    rounds, calls = (1, 300) if quick else (5, 4000)
    starts = 1 if quick else 3
    processes, count = (2, 200) if quick else (8, 3000)
    results: dict[str, Any] = {}
    with daemon_environment() as env:
        autostart = []
        for _ in range(starts):
            wall, _inner, started = fresh_process(env)
            assert started, "the fresh process should have auto-started the daemon"
            autostart.append(wall)
            stop_daemon(Path(env["SIIBRAD_RUNTIME_DIR"]))
        results["autostart_wall_s"] = statistics.median(autostart)
        running = [fresh_process(env) for _ in range(3 if quick else 7)]  # first one starts it
        results["running_wall_s"] = statistics.median(w for w, _, s in running if not s)
        results["running_inner_s"] = statistics.median(i for _, i, s in running if not s)
        results.update(measure_round_trips(rounds, calls))
        results["throughput_sync"] = statistics.median(
            measure_throughput(env, processes, count, 1) for _ in range(1 if quick else 3)
        )
        results["throughput_window16"] = statistics.median(
            measure_throughput(env, processes, count, 16) for _ in range(1 if quick else 3)
        )
        results["processes"] = processes
    return results


# --- siibra-python side ---------------------------------------------------------------------

SIIBRA_SNIPPET = """
t0 = time.perf_counter()
import siibra
region = siibra.get_region(ARGS["parcellation"], "hoc1 left")
first_answer_s = time.perf_counter() - t0
firsts, repeated = [], []
for spec in ARGS["specs"]:
    t = time.perf_counter(); siibra.get_region(ARGS["parcellation"], spec)
    firsts.append(time.perf_counter() - t)
for _ in range(ARGS["rounds"]):
    for spec in ARGS["specs"]:
        t = time.perf_counter(); siibra.get_region(ARGS["parcellation"], spec)
        repeated.append(time.perf_counter() - t)
emit({"first_answer_s": first_answer_s, "firsts": firsts, "repeated": repeated})
"""


def measure_siibra(quick: bool) -> dict[str, Any]:
    from _siibra_python import run_snippet

    runs = []
    for _ in range(1 if quick else 3):
        snippet = run_snippet(
            SIIBRA_SNIPPET,
            args={"parcellation": PARCELLATION, "specs": SPECS, "rounds": 2 if quick else 10},
            configuration=CONFIGURATION,
        )
        runs.append({**snippet.value, "wall_s": snippet.wall_s})
    return {
        "fresh_wall_s": statistics.median(r["wall_s"] for r in runs),
        "first_answer_s": statistics.median(r["first_answer_s"] for r in runs),
        "first_call_p50_s": statistics.median(statistics.median(r["firsts"]) for r in runs),
        "resolve_p50_s": statistics.median(percentile(r["repeated"], 0.5) for r in runs),
        "resolve_p99_s": statistics.median(percentile(r["repeated"], 0.99) for r in runs),
    }


# --- report ---------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3g} ms"


def _ratio(ours: float | None, theirs: float | None, higher_is_better: bool = False) -> str:
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return "-"
    factor = ours / theirs if higher_is_better else theirs / ours
    return f"{factor:.3g}x"


def render(ours: dict[str, Any], theirs: dict[str, Any] | None) -> str:
    t = theirs or {}
    rows = [
        ("region/resolve round trip p50", _ms(ours["resolve_p50_s"]),
         _ms(t.get("resolve_p50_s")), _ratio(ours["resolve_p50_s"], t.get("resolve_p50_s")),
         "<= 0.3 ms", ours["resolve_p50_s"] <= 0.3e-3),
        ("region/resolve round trip p99", _ms(ours["resolve_p99_s"]),
         _ms(t.get("resolve_p99_s")), _ratio(ours["resolve_p99_s"], t.get("resolve_p99_s")),
         "<= 2 ms", ours["resolve_p99_s"] <= 2e-3),
        ("daemon/ping round trip p50", _ms(ours["ping_p50_s"]), "-", "-", "", None),
        ("first call in a process (siibra: per spec)", _ms(ours["running_inner_s"]),
         _ms(t.get("first_call_p50_s")), "-", "", None),
        ("fresh process, daemon running", _ms(ours["running_wall_s"]),
         _ms(t.get("fresh_wall_s")), _ratio(ours["running_wall_s"], t.get("fresh_wall_s")),
         "<= 150 ms", ours["running_wall_s"] <= 0.15),
        ("fresh process, auto-start included", _ms(ours["autostart_wall_s"]),
         _ms(t.get("fresh_wall_s")), _ratio(ours["autostart_wall_s"], t.get("fresh_wall_s")),
         "<= 1 s", ours["autostart_wall_s"] <= 1.0),
        (f"throughput, {ours['processes']} processes, sync",
         f"{ours['throughput_sync']:,.0f}/s", "-", "-", ">= 10,000/s",
         ours["throughput_sync"] >= 10_000 if ours["processes"] == 8 else None),
        (f"throughput, {ours['processes']} processes, 16 in flight",
         f"{ours['throughput_window16']:,.0f}/s", "-", "-", ">= 10,000/s",
         ours["throughput_window16"] >= 10_000 if ours["processes"] == 8 else None),
    ]  # fmt: skip
    header = ("measure", "siibrad", "siibra-python", "ratio", "goal", "met")
    table = [header] + [
        (m, a, b, r, g, "-" if ok is None else ("met" if ok else "MISSED"))
        for m, a, b, r, g, ok in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    parser.add_argument("--no-siibra", action="store_true", help="skip siibra-python")
    parser.add_argument("--json", action="store_true", help="also print the raw numbers")
    args = parser.parse_args(argv)
    ours = measure_siibrad(args.quick)
    theirs = None if args.no_siibra else measure_siibra(args.quick)
    print(f"bench/daemon.py: {os.cpu_count()} cores, {'quick' if args.quick else 'full'} run, "
          "medians of repeated rounds; ratio = how many times faster siibrad is")  # fmt: skip
    print(render(ours, theirs))
    if args.json:
        print(json.dumps({"siibrad": ours, "siibra_python": theirs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
