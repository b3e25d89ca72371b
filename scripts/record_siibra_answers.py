"""Record siibra-python's answers to every case of tests/data/compat/specs.json.

Run it with the interpreter of the reference venv (siibra 1.0.1a25), from the project root::

    .venv-siibra/bin/python scripts/record_siibra_answers.py

It points ``SIIBRA_USE_CONFIGURATION`` at ``../shared/data/siibra-configurations`` unless the
variable is already set (``--configuration`` overrides both) and writes
``tests/data/compat/siibra-<version>.json`` (``siibra-1.0.1a25.json``): one answer per case id,
recorded exactly as siibra behaves, quirks included. Nothing is "fixed" here; where siibrad
deliberately differs, the difference is documented in docs/compatibility.md and pinned by
tests/unit/test_compatibility.py.

Answer shapes (``outcome`` is the field every comparison starts from):

- ``{"outcome": "ok", "name", "id", "key", ...}``; regions add ``parcellation_id``, maps add
  ``parcellation_id``, ``space_id``, ``maptype``;
- ``{"outcome": "not_found", "what": "region"|"parcellation"|"space"|"atlas"|"map", ...}``;
- ``{"outcome": "ambiguous", "what": "region", "candidates": [{"name", "id"}, ...]}`` in siibra's
  order (siibra raises ``RuntimeError("... resulted in multiple matches ...")``);
- ``{"outcome": "error", "error_type", "message"}`` for anything else (bad regex, empty spec...);
- find_regions: ``{"outcome": "ok", "regions": [{"parcellation_id", "name", "id"}, ...]}``.

siibra orders tied candidates through a ``set`` of regions hashed by their id string, so the
order of ties depends on ``PYTHONHASHSEED``. The script therefore runs the cases in two child
processes with different hash seeds, keeps the answers of seed 0 and flags every case whose
answer changed with the seed (``"order_stable": false`` when only the order changed,
``"seed_dependent": true`` when the outcome itself changed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
SPECS = PROJECT / "tests" / "data" / "compat" / "specs.json"
DEFAULT_CONFIGURATION = PROJECT.parent / "shared" / "data" / "siibra-configurations"
HASH_SEEDS = ("0", "1")


def configuration_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order (a content fingerprint)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def configuration_tag(root: Path) -> str | None:
    """The tag named in ``<root>.SOURCE.txt`` beside the configuration folder, if any."""
    source = root.parent / f"{root.name}.SOURCE.txt"
    if not source.is_file():
        return None
    match = re.search(r"^Tag\s*:\s*(\S+)", source.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else None


# --- the worker: runs inside the siibra venv with a fixed PYTHONHASHSEED ----------------------


def _error(exc: BaseException) -> dict[str, Any]:
    return {"outcome": "error", "error_type": type(exc).__name__, "message": str(exc)}


def _registry_failure(exc: BaseException, what: str) -> dict[str, Any]:
    """siibra's registries raise IndexError both for "no match" and for an empty spec."""
    if isinstance(exc, IndexError) and "no entry matching" in str(exc):
        return {
            "outcome": "not_found",
            "what": what,
            "error_type": type(exc).__name__,
            "message": str(exc).split("\n")[0],
        }
    return _error(exc)


def _concept(obj: Any) -> dict[str, Any]:
    return {"outcome": "ok", "name": obj.name, "id": obj.id, "key": obj.key}


def _region(region: Any) -> dict[str, Any]:
    return {
        "outcome": "ok",
        "name": region.name,
        "id": region.id,
        "key": region.key,
        "parcellation_id": region.parcellation.id,
    }


def _region_ref(region: Any) -> dict[str, Any]:
    return {"parcellation_id": region.parcellation.id, "name": region.name, "id": region.id}


def _answer_region(siibra: Any, case: dict[str, Any]) -> dict[str, Any]:
    try:
        parcellation = siibra.get_parcellation(case["parcellation"])
    except Exception as exc:
        return _registry_failure(exc, "parcellation")
    spec = case["region"]
    try:
        return _region(siibra.get_region(case["parcellation"], spec))
    except ValueError as exc:
        if "could not be decoded" not in str(exc):
            return _error(exc)
        return {
            "outcome": "not_found",
            "what": "region",
            "error_type": "ValueError",
            "message": str(exc),
        }
    except RuntimeError as exc:
        if "resulted in multiple matches" not in str(exc):
            return _error(exc)
        # The message joins names with ", " although names contain commas: ask for the tuple.
        candidates = parcellation.get_region(spec, allow_tuple=True)
        return {
            "outcome": "ambiguous",
            "what": "region",
            "candidates": [{"name": r.name, "id": r.id} for r in candidates],
            "error_type": "RuntimeError",
            "message": str(exc),
        }
    except Exception as exc:
        return _error(exc)


def _answer_registry(siibra: Any, case: dict[str, Any]) -> dict[str, Any]:
    what = case["kind"]
    lookup = {
        "space": siibra.get_space,
        "parcellation": siibra.get_parcellation,
        "atlas": siibra.atlases.get,
    }[what]
    try:
        return _concept(lookup(case["spec"]))
    except Exception as exc:
        return _registry_failure(exc, what)


def _answer_map(siibra: Any, case: dict[str, Any]) -> dict[str, Any]:
    MapNotFound = siibra.exceptions.MapNotFound
    try:
        parcellation = siibra.get_parcellation(case["parcellation"])
    except Exception as exc:
        return _registry_failure(exc, "parcellation")
    try:
        found = parcellation.get_map(
            space=case["space"], maptype=case["maptype"], spec=case.get("spec", "")
        )
    except MapNotFound as exc:
        return {
            "outcome": "not_found",
            "what": "map",
            "error_type": "MapNotFound",
            "message": str(exc),
        }
    except Exception as exc:
        return _error(exc)
    answer = _concept(found)
    answer.update(
        parcellation_id=found.parcellation.id,
        space_id=found.space.id,
        maptype=found.maptype.name.lower(),
    )
    return answer


def _answer_find(siibra: Any, case: dict[str, Any]) -> dict[str, Any]:
    try:
        if case.get("parcellation"):
            parcellation = siibra.get_parcellation(case["parcellation"])
            # what siibra.find_regions does per parcellation
            found = parcellation.find(case["spec"], filter_children=True, find_topmost=False)
        else:
            found = siibra.find_regions(case["spec"])
    except Exception as exc:
        return _error(exc)
    return {"outcome": "ok", "regions": [_region_ref(r) for r in found]}


ANSWER = {
    "region": _answer_region,
    "space": _answer_registry,
    "parcellation": _answer_registry,
    "atlas": _answer_registry,
    "map": _answer_map,
    "find_regions": _answer_find,
}


def run_worker(specs_path: Path) -> None:
    """Answer every case in this process and print ``{"version", "answers"}`` as JSON."""
    # siibra is imported here only: the driver runs without it, and the worker's environment
    # (PYTHONHASHSEED, SIIBRA_USE_CONFIGURATION) must be in place before the import.
    import siibra  # noqa: PLC0415
    import siibra.exceptions  # noqa: PLC0415

    logging.getLogger("siibra").setLevel(logging.ERROR)
    cases = json.loads(specs_path.read_text(encoding="utf-8"))["cases"]
    answers = {case["id"]: ANSWER[case["kind"]](siibra, case) for case in cases}
    json.dump(
        {"version": siibra.__version__, "distribution": version("siibra"), "answers": answers},
        sys.stdout,
    )


# --- the driver ----------------------------------------------------------------------------


def _say(line: str) -> None:
    sys.stderr.write(line.rstrip("\n") + "\n")


def _order_free(answer: dict[str, Any]) -> Any:
    """The answer with its lists turned into sorted lists: equal iff equal up to order."""
    canon = dict(answer)
    for field in ("regions", "candidates"):
        if field in canon:
            canon[field] = sorted(json.dumps(x, sort_keys=True) for x in canon[field])
    canon.pop("message", None)  # the ambiguity message lists names in the (unstable) order
    return canon


def run_driver(args: argparse.Namespace) -> int:
    configuration = Path(args.configuration).resolve()
    if not (configuration / "parcellations").is_dir():
        _say(f"not a siibra-configurations folder: {configuration}")
        return 2
    runs: dict[str, dict[str, Any]] = {}
    for seed in HASH_SEEDS:
        env = dict(
            os.environ,
            PYTHONHASHSEED=seed,
            SIIBRA_USE_CONFIGURATION=str(configuration),
            SIIBRA_LOG_LEVEL="ERROR",
        )
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", "--specs", str(args.specs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=args.timeout_s,
            check=False,
        )
        if proc.returncode != 0:
            _say(proc.stderr)
            return proc.returncode
        runs[seed] = json.loads(proc.stdout)
        _say(
            f"PYTHONHASHSEED={seed}: {len(runs[seed]['answers'])} answers "
            f"in {time.perf_counter() - started:.1f} s"
        )

    base = runs[HASH_SEEDS[0]]
    answers: dict[str, dict[str, Any]] = base["answers"]
    for seed in HASH_SEEDS[1:]:
        for case_id, other in runs[seed]["answers"].items():
            mine = answers[case_id]
            if mine == other:
                continue
            if _order_free(mine) == _order_free(other):
                mine["order_stable"] = False
            else:
                mine["seed_dependent"] = True

    specs_bytes = Path(args.specs).read_bytes()
    record = {
        "about": (
            "siibra-python's answers to tests/data/compat/specs.json, recorded by "
            "scripts/record_siibra_answers.py; do not edit by hand."
        ),
        "siibra_version": base["distribution"],
        "siibra_version_string": base["version"],
        "configuration": {
            "tag": configuration_tag(configuration),
            "sha256": configuration_digest(configuration),
        },
        "specs_sha256": hashlib.sha256(specs_bytes).hexdigest(),
        "recorded_with": {
            "python": platform.python_version(),
            "hash_seeds": list(HASH_SEEDS),
        },
        "answers": answers,
    }
    out = Path(args.output) if args.output else SPECS.parent / f"siibra-{base['distribution']}.json"
    out.write_text(json.dumps(record, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
    counts: dict[str, int] = {}
    for answer in answers.values():
        counts[answer["outcome"]] = counts.get(answer["outcome"], 0) + 1
    unstable = sum(1 for a in answers.values() if a.get("order_stable") is False)
    dependent = sum(1 for a in answers.values() if a.get("seed_dependent"))
    _say(
        f"wrote {out.relative_to(PROJECT) if out.is_relative_to(PROJECT) else out}: "
        f"{len(answers)} cases {counts}; order depends on the hash seed in {unstable}, "
        f"outcome in {dependent}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", default=str(SPECS), help="the spec list (default: %(default)s)")
    parser.add_argument(
        "--configuration",
        default=os.environ.get("SIIBRA_USE_CONFIGURATION") or str(DEFAULT_CONFIGURATION),
        help="siibra-configurations folder (default: $SIIBRA_USE_CONFIGURATION, else ../shared)",
    )
    parser.add_argument(
        "--output", help="where to write (default: tests/data/compat/siibra-<version>.json)"
    )
    parser.add_argument("--timeout-s", type=float, default=900.0, help="per worker run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(Path(args.specs))
        return 0
    return run_driver(args)


if __name__ == "__main__":
    sys.exit(main())
