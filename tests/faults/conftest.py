"""Fixtures of the fault tests: the misbehaving loopback HTTP server."""

from __future__ import annotations

from helpers.http_server import http_server

__all__ = ["http_server"]
