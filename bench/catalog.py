"""Catalogue benchmark (issue 2): siibrad and siibra-python side by side, in one run.

    .venv/bin/python bench/catalog.py              # full run (about two minutes)
    .venv/bin/python bench/catalog.py --quick      # smoke run: one process each, few specs
    .venv/bin/python bench/catalog.py --no-siibra  # siibrad only (no .venv-siibra needed)

What is measured, every time in fresh processes so that nothing is warm by accident:

- siibrad: ``import siibrad.catalog``; ``Catalog.load`` of the whole configuration with every
  index built (contract A), from the shared folder and from a zip of it, cold (empty
  ``SIIBRAD_CACHE_DIR``: first start ever) and warm (the cache of an earlier start); the index
  build share of a load; the first ``catalog.region`` after loading; then every region spec of
  ``tests/data/compat/specs.json`` resolved in process, first call and repeated.
- siibra-python 1.0.1a25, in its own venv (``bench/_siibra_python.py``) on the same offline
  configuration: ``import siibra``, building the registries (atlases, spaces, parcellations,
  maps), the first ``get_region``, then the same spec list, first call and repeated.

Each side runs ``--runs`` times; the table shows the median over runs of each statistic
(the machine is shared and noisy), the ratio siibra-python / siibrad, and the issue's goals
(load ≤ 0.5 s warm, resolution median ≤ 20 µs and p99 ≤ 1 ms) marked met or missed.
Timings are wall-clock ``perf_counter`` and include raising and catching the not-found and
ambiguous errors, which are answers too. ``--json PATH`` also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _siibra_python import (
    DEFAULT_CONFIGURATION,
    PROJECT,
    SIIBRA_VERSION,
    SiibraPythonError,
    run_snippet,
)

SPECS = PROJECT / "tests" / "data" / "compat" / "specs.json"
GOAL_LOAD_S = 0.5
GOAL_MEDIAN_S = 20e-6
GOAL_P99_S = 1e-3
CHILD_TIMEOUT_S = 600.0


# --- statistics and formatting -----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    >>> percentile([1.0, 2.0, 3.0, 4.0], 99)
    4.0
    """
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p99": percentile(values, 99),
        "max": max(values),
        "n": float(len(values)),
    }


def human_s(seconds: float | None) -> str:
    """A duration with a unit that keeps three significant digits.

    >>> human_s(0.0000123)
    '12.3 µs'
    >>> human_s(1.5)
    '1.50 s'
    """
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g} {unit}" if value >= 10 else f"{value:.2f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def median_of(runs: Sequence[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else None


# --- the siibrad side: fresh child processes of this very script -------------------------------


def child_main(task: dict[str, Any], out: Path) -> None:
    """Runs in a child process: one measurement, written as JSON to ``out``."""
    started = time.perf_counter()
    from siibrad.catalog import Catalog  # the import is what is timed
    from siibrad.errors import SiibradError
    from siibrad.settings import Settings

    result: dict[str, Any] = {"import_s": time.perf_counter() - started}
    settings = Settings.from_env(env={}, cache_dir=Path(task["cache_dir"]))
    if task.get("breakdown"):
        result.update(_breakdown(task["source"], settings))
        out.write_text(json.dumps(result), encoding="utf-8")
        return
    started = time.perf_counter()
    catalog = Catalog.load(task["source"], settings=settings)
    result["load_s"] = time.perf_counter() - started
    result["counts"] = catalog.counts()
    if task.get("specs") is not None:
        result.update(_resolve(catalog, task["specs"], task["repeats"], SiibradError))
    out.write_text(json.dumps(result), encoding="utf-8")


def _breakdown(source: str, settings: Any) -> dict[str, float]:
    """Split a warm load into reading + parsing and index building (its own process).

    This reaches past contract A into the catalogue's loader; when those internals move, the
    breakdown is simply left out of the table.
    """
    try:
        from siibrad.catalog import Catalog
        from siibrad.catalog.loader import load_folders
        from siibrad.store.configuration import open_configuration

        started = time.perf_counter()
        opened = open_configuration(source, settings)
        loaded = load_folders([opened.root])
        parsed = time.perf_counter()
        Catalog(loaded, opened)
        done = time.perf_counter()
    except (ImportError, TypeError, AttributeError):
        return {}
    return {"parse_s": parsed - started, "index_s": done - parsed}


def _resolve(
    catalog: Any, specs: list[list[str]], repeats: int, expected: type[Exception]
) -> dict[str, Any]:
    def once(parcellation: str, region: str) -> float:
        started = time.perf_counter()
        # not found / ambiguous / invalid are answers, timed like the others
        with contextlib.suppress(expected):
            catalog.region(parcellation, region)
        return time.perf_counter() - started

    first = [once(p, r) for p, r in specs]
    repeated = [once(p, r) for _ in range(repeats) for p, r in specs]
    return {"first_region_s": first[0], "first": first, "repeated": repeated}


def run_child(task: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(task), str(out)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("SIIBRAD_")},
        )
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"siibrad child failed:\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def measure_siibrad(
    configuration: Path, specs: list[list[str]], runs: int, repeats: int, with_zip: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {"sources": {}}
    with tempfile.TemporaryDirectory(prefix="bench-catalog-src-") as tmp:
        sources = {"folder": str(configuration)}
        if with_zip:
            sources["zip"] = str(_zip_of(configuration, Path(tmp) / "siibra-configurations.zip"))
        for name, source in sources.items():
            cold, warm, split = [], [], []
            for i in range(runs):
                cache = Path(tmp) / f"cache-{name}-{i}"
                cold.append(run_child({"source": source, "cache_dir": str(cache)}))
                warm.append(run_child({"source": source, "cache_dir": str(cache)}))
                split.append(
                    run_child({"source": source, "cache_dir": str(cache), "breakdown": True})
                )
            results["sources"][name] = {"cold": cold, "warm": warm, "split": split}
        resolve_cache = Path(tmp) / "cache-resolve"
        results["resolve"] = [
            run_child(
                {
                    "source": str(configuration),
                    "cache_dir": str(resolve_cache),
                    "specs": specs,
                    "repeats": repeats,
                }
            )
            for _ in range(runs)
        ]
    return results


def _zip_of(folder: Path, target: Path) -> Path:
    """A zip of the configuration, as a user would download it (built in a temp dir)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
    return target


# --- the siibra-python side ----------------------------------------------------------------------

SIIBRA_SNIPPET = """
started = time.perf_counter()
import siibra
result = {"import_s": time.perf_counter() - started}
started = time.perf_counter()
names = ("atlases", "spaces", "parcellations", "maps")
counts = {name: len(getattr(siibra, name)) for name in names}
result["registries_s"] = time.perf_counter() - started
result["counts"] = counts

def once(parcellation, region):
    started = time.perf_counter()
    try:
        siibra.get_region(parcellation, region)
    except Exception:
        pass  # ValueError (none), RuntimeError (several), others: answers too
    return time.perf_counter() - started

specs = ARGS["specs"]
first = [once(p, r) for p, r in specs]
result["first_region_s"] = first[0]
result["first"] = first
result["repeated"] = [once(p, r) for _ in range(ARGS["repeats"]) for p, r in specs]
emit(result)
"""


def measure_siibra(
    configuration: Path, specs: list[list[str]], runs: int, repeats: int
) -> list[dict[str, Any]]:
    results = []
    for _ in range(runs):
        snippet = run_snippet(
            SIIBRA_SNIPPET,
            args={"specs": specs, "repeats": repeats},
            configuration=configuration,
            timeout_s=CHILD_TIMEOUT_S,
        )
        results.append({**snippet.value, "process_wall_s": snippet.wall_s})
    return results


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    siibrad: float | None
    siibra: float | None = None
    goal: float | None = None

    def cells(self) -> list[str]:
        ratio = (
            f"{self.siibra / self.siibrad:,.0f}x"
            if self.siibra and self.siibrad and self.siibra / self.siibrad >= 10
            else f"{self.siibra / self.siibrad:.1f}x"
            if self.siibra and self.siibrad
            else ""
        )
        goal, status = "", ""
        if self.goal is not None:
            goal = f"≤ {human_s(self.goal)}"
            status = (
                "—" if self.siibrad is None else "met" if self.siibrad <= self.goal else "MISSED"
            )
        return [self.metric, human_s(self.siibrad), human_s(self.siibra), ratio, goal, status]


def resolution_stats(runs: Sequence[dict[str, Any]], which: str) -> dict[str, float | None]:
    per_run = [summary(run[which]) for run in runs if run.get(which)]
    return {k: median_of(per_run, k) for k in ("median", "p99", "max")}


def build_rows(ours: dict[str, Any], theirs: list[dict[str, Any]] | None) -> list[Row]:
    theirs = theirs or []
    folder = ours["sources"]["folder"]
    rows = [
        Row("import", median_of(folder["cold"], "import_s"), median_of(theirs, "import_s")),
        Row(
            "load + index, folder, cold (first start)",
            median_of(folder["cold"], "load_s"),
            median_of(theirs, "registries_s"),
        ),
        Row(
            "load + index, folder, warm disk cache",
            median_of(folder["warm"], "load_s"),
            median_of(theirs, "registries_s"),
            GOAL_LOAD_S,
        ),
        Row("  of which reading + parsing JSON", median_of(folder["split"], "parse_s")),
        Row("  of which building every index", median_of(folder["split"], "index_s")),
    ]
    if "zip" in ours["sources"]:
        archive = ours["sources"]["zip"]
        rows += [
            Row("load + index, zip, cold (extract)", median_of(archive["cold"], "load_s")),
            Row(
                "load + index, zip, warm disk cache",
                median_of(archive["warm"], "load_s"),
                goal=GOAL_LOAD_S,
            ),
        ]
    resolve = ours["resolve"]
    rows.append(
        Row(
            "first region after load",
            median_of(resolve, "first_region_s"),
            median_of(theirs, "first_region_s"),
        )
    )
    start_ours = [
        r["import_s"] + r["load_s"] + r["first_region_s"] for r in resolve if "first_region_s" in r
    ]
    start_theirs = [r["import_s"] + r["registries_s"] + r["first_region_s"] for r in theirs]
    rows.append(
        Row(
            "import + load + first region",
            statistics.median(start_ours) if start_ours else None,
            statistics.median(start_theirs) if start_theirs else None,
        )
    )
    goals: dict[str, float | None] = {"median": GOAL_MEDIAN_S, "p99": GOAL_P99_S, "max": None}
    for which, label in (("first", "first call"), ("repeated", "repeated")):
        mine, other = resolution_stats(resolve, which), resolution_stats(theirs, which)
        for stat in ("median", "p99", "max"):
            rows.append(Row(f"resolution, {label}: {stat}", mine[stat], other[stat], goals[stat]))
    return rows


def slowest(
    specs: list[list[str]],
    ours: Sequence[dict[str, Any]],
    theirs: Sequence[dict[str, Any]],
    which: str = "first",
    count: int = 5,
) -> str:
    """The specs siibrad answers slowest (median over runs), with siibra's time for each."""

    def per_spec(runs: Sequence[dict[str, Any]]) -> list[float | None]:
        usable = [run[which] for run in runs if len(run.get(which, ())) == len(specs)]
        if not usable:
            return [None] * len(specs)
        return [statistics.median(times) for times in zip(*usable, strict=True)]

    mine, other = per_spec(ours), per_spec(theirs)
    order = sorted(range(len(specs)), key=lambda i: -(mine[i] or 0.0))[:count]
    lines = [f"Slowest {which} calls in siibrad (siibra-python for the same spec):"]
    for i in order:
        parcellation, region = specs[i]
        lines.append(
            f"  {human_s(mine[i]):>9}  {human_s(other[i]):>9}  {parcellation!r} / {region!r}"
        )
    return "\n".join(lines)


def render(rows: Sequence[Row], header: Sequence[str]) -> str:
    table = [list(header)] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        first = line[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(table[0]), rule, *(fmt(line) for line in table[1:])])


# --- main ----------------------------------------------------------------------------------------


def region_specs(path: Path, every: int = 1) -> list[list[str]]:
    cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    pairs = [[c["parcellation"], c["region"]] for c in cases if c["kind"] == "region"]
    return pairs[::every]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run, 1/8 of the specs")
    parser.add_argument("--no-siibra", action="store_true", help="measure siibrad only")
    parser.add_argument("--runs", type=int, help="fresh processes per side (default 3, quick 1)")
    parser.add_argument("--repeats", type=int, help="repeated passes (default 5, quick 2)")
    parser.add_argument("--configuration", type=Path, default=DEFAULT_CONFIGURATION)
    parser.add_argument("--specs", type=Path, default=SPECS)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child[0]), Path(args.child[1]))
        return 0

    runs = args.runs or (1 if args.quick else 3)
    repeats = args.repeats or (2 if args.quick else 5)
    specs = region_specs(args.specs, every=8 if args.quick else 1)
    say: Callable[[str], object] = lambda line: sys.stderr.write(line + "\n")  # noqa: E731
    say(f"siibrad: {runs} run(s) of {len(specs)} region specs x {repeats} repeats ...")
    ours = measure_siibrad(args.configuration, specs, runs, repeats, with_zip=not args.quick)
    theirs: list[dict[str, Any]] | None = None
    note = "siibra-python not measured (--no-siibra)"
    if not args.no_siibra:
        say(f"siibra-python {SIIBRA_VERSION}: {runs} run(s) ...")
        try:
            theirs = measure_siibra(args.configuration, specs, runs, repeats)
            note = f"siibra-python {SIIBRA_VERSION} in .venv-siibra, same configuration"
        except SiibraPythonError as exc:
            note = f"siibra-python not measured: {exc}"

    counts = ours["resolve"][0]["counts"]
    print(
        f"Catalogue benchmark: {args.configuration}\n"
        f"{counts.get('parcellations')} parcellations, {counts.get('regions')} regions, "
        f"{len(specs)} region specs; {runs} fresh process(es) per side, {repeats} repeated "
        f"passes; medians over runs.\n{note}.\n"
    )
    print(
        render(
            build_rows(ours, theirs), ["", "siibrad", "siibra-python", "ratio", "goal", "status"]
        )
    )
    print()
    print(slowest(specs, ours["resolve"], theirs or []))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"siibrad": ours, "siibra_python": theirs, "specs": len(specs)}),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
