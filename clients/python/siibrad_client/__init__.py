"""Thin Python client of the siibrad daemon: siibra's brain atlases, warm and shared.

>>> from siibrad_client import Client                                   # doctest: +SKIP
>>> with Client() as siibra:                                            # doctest: +SKIP
...     siibra.get_region("julich 3.1", "hoc1 left").name
'Area hOc1 (V1, 17, CalcS) left'

Importing this package loads neither zmq nor numpy (both are imported on first use), so a
script pays for them only when it talks to the daemon. See docs/client.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._codec import RawArray
from .client import PROTOCOL_VERSION, Client, PendingRequest
from .errors import (
    AmbiguousError,
    ClientError,
    DaemonStartError,
    DaemonUnavailableError,
    NotFoundError,
    ReplyTimeoutError,
    RequestCancelled,
    SiibradError,
)
from .models import Atlas, Map, Parcellation, Ref, Region, Space

__all__ = [
    "PROTOCOL_VERSION",
    "AmbiguousError",
    "Atlas",
    "Client",
    "ClientError",
    "DaemonStartError",
    "DaemonUnavailableError",
    "Map",
    "NotFoundError",
    "Parcellation",
    "PendingRequest",
    "RawArray",
    "Ref",
    "Region",
    "ReplyTimeoutError",
    "RequestCancelled",
    "SiibradError",
    "Space",
    "__version__",
]
