"""Copy a siibra-configurations folder with its data URLs rewritten to a loopback mirror.

siibra-python has no mirror setting: to make it fetch the same files from the same loopback
server as siibrad (tests/helpers/mirror.py), its configuration must name the server's URLs.
This script copies a configuration folder (and optional extension folders) and rewrites, in
every JSON file, each ``https://<host>/...`` of a mirrored host to
``http://127.0.0.1:PORT/<host>/...`` and the extension placeholder
``http://127.0.0.1:PORT/shared-data/`` to ``http://127.0.0.1:PORT/shared-data/``::

    .venv/bin/python scripts/siibra_mirror_config.py --base-url http://127.0.0.1:8765 \\
        --out /tmp/siibra-config-mirrored [--configuration ../shared/data/siibra-configurations]

Only string values change; files other than JSON are copied as they are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGURATION = PROJECT.parent / "shared" / "data" / "siibra-configurations"
MIRRORED_HOSTS = ("https://data-proxy.ebrains.eu/",)
EXTENSION_PLACEHOLDER = "http://127.0.0.1:PORT/shared-data/"


def rewrite_url(url: str, base_url: str, hosts: Iterable[str] = MIRRORED_HOSTS) -> str:
    """The loopback URL of ``url`` if its host is mirrored, else ``url`` unchanged."""
    base = base_url.rstrip("/")
    if url.startswith(EXTENSION_PLACEHOLDER):
        return f"{base}/shared-data/{url[len(EXTENSION_PLACEHOLDER) :]}"
    for host in hosts:
        if url.startswith(host):
            return f"{base}/{url.split('://', 1)[1]}"
    return url


def _rewrite(value: Any, base_url: str, hosts: Iterable[str]) -> Any:
    if isinstance(value, str):
        return rewrite_url(value, base_url, hosts)
    if isinstance(value, list):
        return [_rewrite(v, base_url, hosts) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, base_url, hosts) for k, v in value.items()}
    return value


def make_mirror_configuration(
    source: Path, target: Path, base_url: str, hosts: Iterable[str] = MIRRORED_HOSTS
) -> Path:
    """Copy ``source`` to ``target`` with URLs rewritten; returns ``target``."""
    hosts = tuple(hosts)
    if target.exists():
        shutil.rmtree(target)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".git") for part in relative.parts):
            continue
        out = target / relative
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                shutil.copyfile(path, out)
                continue
            out.write_text(json.dumps(_rewrite(data, base_url, hosts)), encoding="utf-8")
        else:
            shutil.copyfile(path, out)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8765")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--configuration", type=Path, default=DEFAULT_CONFIGURATION)
    parser.add_argument("--extension", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    make_mirror_configuration(args.configuration, args.out, args.base_url)
    for ext in args.extension:
        make_mirror_configuration(
            ext, args.out.parent / f"{args.out.name}-{ext.name}", args.base_url
        )
    sys.stdout.write(f"{args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
