"""Run a snippet in the siibra-python reference venv and get its JSON answer back.

Every benchmark compares siibrad with siibra-python 1.0.1a25 side by side in one run. siibra
cannot live in our venv (its pins clash with ours), so it gets its own venv at the project root,
``.venv-siibra``, and benchmarks talk to it through subprocesses. This module is the one place
that knows how; ``bench/catalog.py``, ``bench/daemon.py`` and ``bench/assign.py`` import it.

API (everything else is private)::

    from _siibra_python import run_snippet, siibra_python, SiibraPythonError

    python = siibra_python()          # .venv-siibra/bin/python; creates the venv when missing
    result = run_snippet(
        '''
        t0 = time.perf_counter()
        import siibra
        region = siibra.get_region(ARGS["parcellation"], ARGS["region"])
        emit({"name": region.name, "seconds": time.perf_counter() - t0})
        ''',
        args={"parcellation": "julich 3.1", "region": "hoc1 left"},
    )
    result.value      # {"name": "Area hOc1 (V1, 17, CalcS) left", "seconds": 2.1}
    result.wall_s     # wall time of the whole subprocess, interpreter start included

The snippet runs in a fresh interpreter of the siibra venv with ``SIIBRA_USE_CONFIGURATION``
pointing at the offline configuration (``../shared/data/siibra-configurations`` unless told
otherwise), siibra's logging quietened, and ``PYTHONHASHSEED=0`` (siibra orders tied
candidates by string hashes; a fixed seed makes runs comparable). Before it runs, ``json``,
``sys`` and ``time`` are imported, ``ARGS`` holds the JSON-decoded ``args``, and
``emit(value)`` records the JSON answer (call it once; the last call wins). Its stdout and
stderr are free for siibra's chatter: the answer travels through a private file, so progress
bars and log lines never corrupt it.

Creating the venv (first use only, a few minutes, PyPI access needed)::

    python3 -m venv .venv-siibra && .venv-siibra/bin/pip install --pre siibra==1.0.1a25

``run_snippet(..., create=False)`` or ``siibra_python(create=False)`` raise instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
SIIBRA_VERSION = "1.0.1a25"
"""The siibra-python release siibrad is measured against."""
DEFAULT_VENV = PROJECT / ".venv-siibra"
DEFAULT_CONFIGURATION = (
    Path(os.environ.get("SIIBRAD_SHARED_DATA", PROJECT.parent / "shared" / "data"))
    / "siibra-configurations"
)
"""The offline siibra-configurations folder both sides load."""

_PRELUDE = """\
import json as _json, sys as _sys, time, json, sys
with open(_sys.argv[1], encoding="utf-8") as _f:
    ARGS = _json.load(_f)
def emit(value):
    with open(_sys.argv[2], "w", encoding="utf-8") as _f:
        _json.dump(value, _f)
"""


class SiibraPythonError(RuntimeError):
    """The siibra venv is missing and may not be created, or a snippet failed (stderr attached)."""


@dataclass(frozen=True, slots=True)
class SnippetResult:
    """What a snippet emitted, how long the subprocess took, and what it wrote to stderr."""

    value: Any
    wall_s: float
    stderr: str


def siibra_python(venv: Path = DEFAULT_VENV, *, create: bool = True) -> Path:
    """The venv's interpreter with siibra installed; builds the venv first when ``create``."""
    python = venv / "bin" / "python"
    if python.is_file() and _has_siibra(python):
        return python
    if not create:
        raise SiibraPythonError(
            f"no siibra {SIIBRA_VERSION} in {venv}: create it with "
            f"`python3 -m venv {venv.name} && {venv.name}/bin/pip install --pre "
            f"siibra=={SIIBRA_VERSION}` (or run the bench without --no-create)"
        )
    base = shutil.which("python3") or sys.executable
    sys.stderr.write(f"creating {venv} with siibra {SIIBRA_VERSION} (first use only)...\n")
    if not python.is_file():
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=600)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--pre", f"siibra=={SIIBRA_VERSION}"],
        check=True,
        timeout=3600,
    )
    if not _has_siibra(python):
        raise SiibraPythonError(f"installing siibra {SIIBRA_VERSION} into {venv} failed")
    return python


def _has_siibra(python: Path) -> bool:
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('siibra'))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == SIIBRA_VERSION


def siibra_env(
    configuration: Path = DEFAULT_CONFIGURATION, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a siibra subprocess runs with (offline configuration, quiet, seed 0)."""
    env = dict(os.environ)
    env.update(
        SIIBRA_USE_CONFIGURATION=str(configuration),
        SIIBRA_LOG_LEVEL="ERROR",
        PYTHONHASHSEED="0",
        PYTHONUNBUFFERED="1",
    )
    if extra:
        env.update(extra)
    return env


def run_snippet(
    code: str,
    *,
    args: Any = None,
    configuration: Path = DEFAULT_CONFIGURATION,
    timeout_s: float = 900.0,
    env: Mapping[str, str] | None = None,
    venv: Path = DEFAULT_VENV,
    create: bool = True,
) -> SnippetResult:
    """Run ``code`` (dedented) in a fresh siibra interpreter; return what it ``emit``-ted.

    Raises ``SiibraPythonError`` with the tail of stderr when the snippet fails, emits nothing
    or runs past ``timeout_s`` (the subprocess is killed then).
    """
    if not (configuration / "parcellations").is_dir():
        raise SiibraPythonError(f"not a siibra-configurations folder: {configuration}")
    python = siibra_python(venv, create=create)
    with tempfile.TemporaryDirectory(prefix="siibra-snippet-") as tmp:
        script, args_path, out_path = (Path(tmp) / n for n in ("s.py", "args.json", "out.json"))
        script.write_text(_PRELUDE + textwrap.dedent(code), encoding="utf-8")
        args_path.write_text(json.dumps(args), encoding="utf-8")
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [str(python), str(script), str(args_path), str(out_path)],
                env=siibra_env(configuration, env),
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SiibraPythonError(f"siibra snippet ran past {timeout_s} s") from exc
        wall_s = time.perf_counter() - started
        if proc.returncode != 0 or not out_path.is_file():
            tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            why = f"exit status {proc.returncode}" if proc.returncode else "nothing emitted"
            raise SiibraPythonError(f"siibra snippet failed ({why}):\n{tail}")
        value = json.loads(out_path.read_text(encoding="utf-8"))
    return SnippetResult(value=value, wall_s=wall_s, stderr=proc.stderr)
