"""``daemon/*``: liveness, status, shutdown, and a cancellable diagnostic job.

``daemon/ping`` works before ``initialize`` (it is the liveness probe of discovery);
``daemon/sleep`` occupies one worker for a while, reporting ``$/progress`` and honouring
``$/cancelRequest``, so client authors can test cancellation, progress and Busy for real.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from siibrad.errors import InvalidParams
from siibrad.methods import MethodContext, method

MAX_SLEEP_S = 60.0


@dataclass(frozen=True, slots=True)
class NoParams:
    """A method without params."""


@dataclass(frozen=True, slots=True)
class SleepParams:
    duration_s: float


@method("daemon/ping", before_initialize=True)
def daemon_ping(ctx: MethodContext, params: NoParams) -> dict[str, Any]:
    """Liveness: answers at once with this daemon's instance id."""
    return {"pong": True, "instance_id": ctx.daemon.instance_id}


@method("daemon/status")
def daemon_status(ctx: MethodContext, params: NoParams) -> dict[str, Any]:
    """Versions, uptime, configuration, memory, clients, requests, catalogue problems."""
    return ctx.daemon.status()


@method("daemon/shutdown")
def daemon_shutdown(ctx: MethodContext, params: NoParams) -> dict[str, Any]:
    """Stop the daemon gracefully after this reply (in-flight work may finish, bounded)."""
    ctx.daemon.request_shutdown("daemon/shutdown")
    return {"shutting_down": True, "instance_id": ctx.daemon.instance_id}


@method("daemon/sleep", heavy=True)
def daemon_sleep(ctx: MethodContext, params: SleepParams) -> dict[str, Any]:
    """Occupy a worker for duration_s (at most 60), reporting progress; cancellable."""
    if not 0.0 <= params.duration_s <= MAX_SLEEP_S:
        raise InvalidParams(
            f"duration_s must be between 0 and {MAX_SLEEP_S:g}",
            fields=[{"field": "duration_s", "problem": f"must be in [0, {MAX_SLEEP_S:g}]"}],
        )
    started = time.monotonic()
    deadline = started + params.duration_s
    ctx.progress("begin", title="sleeping", percentage=0)
    step_s = 0.02
    last_report = started
    while (now := time.monotonic()) < deadline:
        ctx.check_cancelled()
        if now - last_report >= 0.25:
            done = (now - started) / params.duration_s if params.duration_s else 1.0
            ctx.progress("report", percentage=int(done * 100))
            last_report = now
        time.sleep(min(step_s, max(0.0, deadline - now)))
    ctx.progress("end", message="done")
    return {"slept_s": round(time.monotonic() - started, 6)}
