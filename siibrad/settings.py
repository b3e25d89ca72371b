"""Settings of the daemon and the in-process API, read once from the environment.

Every knob has one name here and one environment variable (``SIIBRAD_*``); the command line
overrides with ``Settings.from_env(**overrides)``. Secrets (the EBRAINS token) are kept out of
``repr`` so that a logged settings object never leaks them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_CONFIGURATION = "github:siibra-1.0.1-alpha.25"
"""The configuration tag matching siibra-python 1.0.1a25, whose format siibrad implements."""

DEFAULT_MAX_VOLUME_MB = 0.2 * 1024
"""siibra's default ``SIIBRA_MAX_FETCH_SIZE_BYTES`` (0.2 GiB), the budget of one decoded volume."""


def _user_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "siibrad"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    configuration: str = DEFAULT_CONFIGURATION
    extensions: tuple[str, ...] = ()
    cache_dir: Path = field(default_factory=lambda: _user_cache_dir(os.environ))
    runtime_dir: Path | None = None
    mirrors: str = ""
    mirrors_file: Path | None = None
    offline: bool = False
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    fetch_retries: int = 3
    max_download_bytes: int = 8 * 1024**3
    download_cache_max_bytes: int = 20 * 1024**3
    ebrains_token: str | None = field(default=None, repr=False)
    idle_timeout_s: float = 0.0
    memory_budget_bytes: int = 1536 * 1024**2
    max_volume_bytes: int = int(DEFAULT_MAX_VOLUME_MB * 1024**2)
    log_format: str = "auto"
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``SIIBRAD_*`` variables (and ``HBP_AUTH_TOKEN``), then ``overrides``."""
        env = os.environ if env is None else env
        ext = env.get("SIIBRAD_EXTENSIONS", "")
        settings = cls(
            configuration=env.get("SIIBRAD_CONFIGURATION") or DEFAULT_CONFIGURATION,
            extensions=tuple(p for p in ext.split(os.pathsep) if p),
            cache_dir=Path(env["SIIBRAD_CACHE_DIR"])
            if env.get("SIIBRAD_CACHE_DIR")
            else _user_cache_dir(env),
            runtime_dir=Path(env["SIIBRAD_RUNTIME_DIR"])
            if env.get("SIIBRAD_RUNTIME_DIR")
            else None,
            mirrors=env.get("SIIBRAD_MIRRORS", ""),
            mirrors_file=Path(env["SIIBRAD_MIRRORS_FILE"])
            if env.get("SIIBRAD_MIRRORS_FILE")
            else None,
            offline=env.get("SIIBRAD_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"},
            connect_timeout_s=_float(env, "SIIBRAD_CONNECT_TIMEOUT_S", 10.0),
            read_timeout_s=_float(env, "SIIBRAD_READ_TIMEOUT_S", 60.0),
            fetch_retries=int(_float(env, "SIIBRAD_FETCH_RETRIES", 3)),
            max_download_bytes=int(_float(env, "SIIBRAD_MAX_DOWNLOAD_BYTES", 8 * 1024**3)),
            download_cache_max_bytes=int(_float(env, "SIIBRAD_CACHE_MAX_MB", 20 * 1024) * 1024**2),
            ebrains_token=env.get("SIIBRAD_EBRAINS_TOKEN") or env.get("HBP_AUTH_TOKEN") or None,
            idle_timeout_s=_float(env, "SIIBRAD_IDLE_TIMEOUT_S", 0.0),
            memory_budget_bytes=int(_float(env, "SIIBRAD_MEMORY_BUDGET_MB", 1536) * 1024**2),
            max_volume_bytes=int(
                _float(env, "SIIBRAD_MAX_VOLUME_MB", DEFAULT_MAX_VOLUME_MB) * 1024**2
            ),
            log_format=env.get("SIIBRAD_LOG_FORMAT", "auto"),
            log_level=env.get("SIIBRAD_LOG_LEVEL", "info"),
        )
        return replace(settings, **overrides) if overrides else settings
