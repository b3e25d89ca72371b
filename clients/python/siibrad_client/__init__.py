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

from . import errors
from ._codec import RawArray
from .client import PROTOCOL_VERSION, Client, PendingRequest
from .errors import (
    AmbiguousError,
    AmbiguousMapError,
    AmbiguousParcellationError,
    AmbiguousRegionError,
    AmbiguousSpaceError,
    AtlasNotFoundError,
    ClientError,
    DaemonStartError,
    DaemonUnavailableError,
    DataUnavailableError,
    InvalidParams,
    InvalidPointsError,
    InvalidSpecError,
    MapNotFoundError,
    NotFoundError,
    ParcellationNotFoundError,
    RegionNotFoundError,
    ReplyTimeoutError,
    RequestCancelled,
    SiibradError,
    SpaceNotFoundError,
    UpstreamError,
)
from .models import Atlas, Map, Parcellation, Ref, Region, Space

__all__ = [
    "PROTOCOL_VERSION",
    "AmbiguousError",
    "AmbiguousMapError",
    "AmbiguousParcellationError",
    "AmbiguousRegionError",
    "AmbiguousSpaceError",
    "Atlas",
    "AtlasNotFoundError",
    "Client",
    "ClientError",
    "DaemonStartError",
    "DaemonUnavailableError",
    "DataUnavailableError",
    "InvalidParams",
    "InvalidPointsError",
    "InvalidSpecError",
    "Map",
    "MapNotFoundError",
    "NotFoundError",
    "Parcellation",
    "ParcellationNotFoundError",
    "PendingRequest",
    "RawArray",
    "Ref",
    "Region",
    "RegionNotFoundError",
    "ReplyTimeoutError",
    "RequestCancelled",
    "SiibradError",
    "Space",
    "SpaceNotFoundError",
    "UpstreamError",
    "__version__",
    "errors",
]
