"""The ``siibrad`` command line: serve, status, stop, call.

Contract: ``siibrad serve`` runs the daemon in the foreground (``--detach``: in the background,
returning once it is ready, or failing with its log); ``siibrad status [--json]`` describes the
running daemon (exit 1 when none runs); ``siibrad stop`` asks it to shut down and waits;
``siibrad call METHOD [JSON]`` prints the JSON result (exit 1 with the error on stderr on an
error reply), starting a daemon first if none runs. Exit status 2 means the command itself
could not run (bad arguments, unsafe runtime dir, no daemon reachable).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from siibrad import __version__
from siibrad.errors import SiibradError
from siibrad.logging import configure_logging
from siibrad.rpc.session import Limits
from siibrad.settings import Settings
from siibrad.transport.runtime import (
    AlreadyRunningError,
    RuntimeDirError,
    check_private_dir,
    resolve_runtime_dir,
)
from siibrad.transport.zmq_client import (
    CliConnection,
    DaemonStartFailed,
    DaemonUnreachable,
    find_daemon,
    start_detached,
)

EXIT_ERROR_REPLY = 1
EXIT_UNUSABLE = 2


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siibrad",
        description="siibra's brain atlases as a warm per-user daemon.",
    )
    parser.add_argument("--version", action="version", version=f"siibrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def runtime(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--runtime-dir",
            type=Path,
            help="directory of the daemon's socket and daemon.json "
            "(default: $SIIBRAD_RUNTIME_DIR, $XDG_RUNTIME_DIR/siibrad, <tmp>/siibrad-<uid>)",
        )

    serve = sub.add_parser("serve", help="run the daemon (foreground unless --detach)")
    runtime(serve)
    serve.add_argument("--configuration", help="folder, .zip or github:TAG (SIIBRAD_CONFIGURATION)")
    serve.add_argument(
        "--extension", action="append", default=None, help="extra configuration (repeatable)"
    )
    serve.add_argument(
        "--idle-timeout", type=float, metavar="S", help="exit after S idle seconds (0 = never)"
    )
    serve.add_argument("--log-format", choices=("auto", "json", "console"))
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--workers", type=int, default=2, help="worker threads for heavy requests")
    serve.add_argument(
        "--max-request-bytes", type=int, default=Limits().max_request_bytes, metavar="N"
    )
    serve.add_argument("--max-in-flight", type=int, default=Limits().max_in_flight_per_client)
    serve.add_argument("--shutdown-grace", type=float, default=5.0, metavar="S")
    serve.add_argument("--detach", action="store_true", help="run in the background")
    serve.add_argument("--ready-timeout", type=float, default=120.0, metavar="S")

    status = sub.add_parser("status", help="describe the running daemon")
    runtime(status)
    status.add_argument("--json", action="store_true", help="print daemon/status as JSON")

    stop = sub.add_parser("stop", help="shut the running daemon down")
    runtime(stop)
    stop.add_argument("--timeout", type=float, default=30.0, metavar="S")

    call = sub.add_parser("call", help="call one method and print its JSON result")
    runtime(call)
    call.add_argument("method", help="e.g. region/resolve")
    call.add_argument("params", nargs="?", default="{}", help="JSON object of params")
    call.add_argument("--timeout", type=float, default=60.0, metavar="S")
    call.add_argument("--no-start", action="store_true", help="fail instead of starting a daemon")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``siibrad`` script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            try:
                return _serve(args)
            except SiibradError as exc:
                _err(f"siibrad: cannot start: {exc.message}")
                return EXIT_UNUSABLE
        if args.command == "status":
            return _status(args)
        if args.command == "stop":
            return _stop(args)
        return _call(args)
    except (RuntimeDirError, AlreadyRunningError, DaemonStartFailed, DaemonUnreachable) as exc:
        _err(f"siibrad: {exc}")
        return EXIT_UNUSABLE


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.runtime_dir is not None:
        overrides["runtime_dir"] = args.runtime_dir.absolute()
    for name, field in (
        ("configuration", "configuration"),
        ("idle_timeout", "idle_timeout_s"),
        ("log_format", "log_format"),
        ("log_level", "log_level"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "extension", None):
        overrides["extensions"] = tuple(args.extension)
    return Settings.from_env(**overrides)


def _serve(args: argparse.Namespace) -> int:
    from siibrad.daemon import ServeOptions, run_daemon  # noqa: PLC0415 (heavy imports)

    settings = _settings(args)
    runtime_dir = resolve_runtime_dir(settings.runtime_dir).absolute()
    if args.detach:
        info = start_detached(runtime_dir, _serve_argv(args), args.ready_timeout)
        _out(f"siibrad {info.version} ready, pid {info.pid}, {info.endpoints['zmq']}")
        return 0
    configure_logging(settings.log_format, settings.log_level)
    limits = Limits(
        max_request_bytes=args.max_request_bytes, max_in_flight_per_client=args.max_in_flight
    )
    options = ServeOptions(
        limits=limits, workers=max(1, args.workers), shutdown_grace_s=args.shutdown_grace
    )
    return run_daemon(settings, options)


def _serve_argv(args: argparse.Namespace) -> list[str]:
    """The options of this ``serve --detach`` for the detached foreground daemon."""
    argv: list[str] = []
    for option, value in (
        ("--configuration", args.configuration),
        ("--idle-timeout", args.idle_timeout),
        ("--log-format", args.log_format),
        ("--log-level", args.log_level),
        ("--workers", args.workers),
        ("--max-request-bytes", args.max_request_bytes),
        ("--max-in-flight", args.max_in_flight),
        ("--shutdown-grace", args.shutdown_grace),
    ):
        if value is not None:
            argv += [option, str(value)]
    for extension in args.extension or ():
        argv += ["--extension", extension]
    return argv


def _runtime_dir(args: argparse.Namespace) -> Path:
    path = resolve_runtime_dir(args.runtime_dir).absolute()
    if path.exists():
        check_private_dir(path)
    return path


def _status(args: argparse.Namespace) -> int:
    runtime_dir = _runtime_dir(args)
    info = find_daemon(runtime_dir) if runtime_dir.exists() else None
    if info is None:
        _out(f"siibrad is not running (runtime dir {runtime_dir})")
        return 1
    with CliConnection(info.endpoints["zmq"], timeout_s=10.0) as conn:
        status = conn.call("daemon/status")
    if args.json:
        _out(json.dumps(status, indent=2))
    else:
        _out(format_status(status))
    return 0


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**2:.1f} MiB"


def _duration(seconds: float) -> str:
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def format_status(status: dict[str, Any]) -> str:
    """``daemon/status`` for humans."""
    conf, cat, req = status["configuration"], status["catalog"], status["requests"]
    source = conf["spec"] + (f" (tag {conf['tag']})" if conf.get("tag") else f" ({conf['kind']})")
    lines = [
        f"siibrad {status['version']} (protocol {status['protocol_version']}) running, "
        f"pid {status['pid']}, up {_duration(status['uptime_s'])}",
        f"  instance       {status['instance_id']}",
        f"  endpoint       {status['endpoints']['zmq']}",
        f"  configuration  {source}",
        f"  catalogue      {cat['atlases']} atlases, {cat['spaces']} spaces, "
        f"{cat['parcellations']} parcellations, {cat['maps']} maps, {cat['regions']} regions; "
        f"{len(cat['problems'])} problems",
        f"  memory         RSS {_mib(status['memory']['rss_bytes'])}"
        f" (peak {_mib(status['memory']['peak_rss_bytes'])})",
        f"  clients        {status['clients']['connected']} connected",
        f"  requests       {req['served']} served, {req['errors']} errors, "
        f"{req['in_flight']} in flight, {req['replies_dropped']} replies dropped",
    ]
    lines.extend(f"  problem        {p['path']}: {p['reason']}" for p in cat["problems"][:10])
    return "\n".join(lines)


def _stop(args: argparse.Namespace) -> int:
    runtime_dir = _runtime_dir(args)
    info = find_daemon(runtime_dir) if runtime_dir.exists() else None
    if info is None:
        _out(f"siibrad is not running (runtime dir {runtime_dir})")
        return 0
    with CliConnection(info.endpoints["zmq"], timeout_s=10.0) as conn:
        conn.call("daemon/shutdown")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not (runtime_dir / "daemon.json").exists():
            _out(f"siibrad (pid {info.pid}) stopped")
            return 0
        time.sleep(0.05)
    _err(f"siibrad (pid {info.pid}) did not stop within {args.timeout:g} s")
    return EXIT_UNUSABLE


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot print {type(obj).__name__}")


def _call(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        _err(f"siibrad: params are not valid JSON: {exc}")
        return EXIT_UNUSABLE
    if not isinstance(params, dict):
        _err("siibrad: params must be a JSON object")
        return EXIT_UNUSABLE
    runtime_dir = _runtime_dir(args)
    info = find_daemon(runtime_dir) if runtime_dir.exists() else None
    if info is None:
        if args.no_start:
            _err(f"siibrad is not running (runtime dir {runtime_dir})")
            return EXIT_UNUSABLE
        info = start_detached(runtime_dir, [])
    with CliConnection(info.endpoints["zmq"], timeout_s=args.timeout) as conn:
        try:
            result = conn.call(args.method, params)
        except SiibradError as error:
            _err(f"error {error.type} ({error.code}): {error.message}")
            if error.data:
                _err(json.dumps(error.data, indent=2, default=_json_default))
            return EXIT_ERROR_REPLY
    _out(json.dumps(result, indent=2, ensure_ascii=False, default=_json_default))
    return 0
