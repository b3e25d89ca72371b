"""The one error tree of siibrad, mirrored by ``protocol/errors.json``.

Every error carries a JSON-RPC ``code`` and a stable ``type`` (its ``data.type`` on the wire,
which the MATLAB and R clients switch on). Only the rpc dispatcher turns these into wire
errors; foreign exceptions (requests, nibabel, zmq, OSError) are translated where they occur.

::

    SiibradError
    ├── ProtocolError: ParseError, InvalidRequest, MethodNotFound, InvalidParams,
    │                  PayloadTooLarge, ProtocolVersionMismatch, Unauthorized
    ├── DaemonStateError: ServerNotInitialized, ShuttingDown, Busy, RequestCancelled,
    │                     InternalError
    ├── QueryError
    │   ├── NotFoundError: Atlas-, Space-, Parcellation-, Map-, RegionNotFoundError
    │   ├── AmbiguousError: AmbiguousAtlas-, -Space-, -Parcellation-, -Map-, -RegionError
    │   └── InvalidSpecError, InvalidPointsError, SpaceMismatchError, UnsupportedError
    └── UpstreamError
        ├── DataUnavailableError
        │   └── FetchFailedError
        │       └── FetchTimeoutError
        └── ChecksumMismatchError, ConfigurationError, ConfigurationUnavailableError,
            UnsafeArchiveError
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class SiibradError(Exception):
    """Root of every siibrad error: a message plus structured ``data`` for the wire."""

    code: ClassVar[int] = -32603
    type: ClassVar[str] = "SiibradError"

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = data

    def to_wire(self) -> dict[str, Any]:
        """The JSON-RPC error object: ``{"code", "message", "data": {"type", ...}}``."""
        return {
            "code": self.code,
            "message": self.message,
            "data": {"type": self.type, **self.data},
        }

    @staticmethod
    def from_wire(error: Mapping[str, Any]) -> SiibradError:
        """The matching exception for a wire error object (an unknown type maps to the root)."""
        data = dict(error.get("data") or {})
        cls = ERRORS_BY_TYPE.get(str(data.pop("type", "")), SiibradError)
        exc = cls.__new__(cls)
        SiibradError.__init__(exc, str(error.get("message", "")), **data)
        return exc

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self).type, self.message, self.data))


def _rebuild(type_name: str, message: str, data: dict[str, Any]) -> SiibradError:
    return SiibradError.from_wire({"message": message, "data": {"type": type_name, **data}})


# --- protocol -------------------------------------------------------------------------------


class ProtocolError(SiibradError):
    code = -32600
    type = "ProtocolError"


class ParseError(ProtocolError):
    code = -32700
    type = "ParseError"


class InvalidRequest(ProtocolError):
    code = -32600
    type = "InvalidRequest"


class MethodNotFound(ProtocolError):
    code = -32601
    type = "MethodNotFound"


class InvalidParams(ProtocolError):
    code = -32602
    type = "InvalidParams"


class PayloadTooLarge(ProtocolError):
    code = -32010
    type = "PayloadTooLarge"


class ProtocolVersionMismatch(ProtocolError):
    code = -32011
    type = "ProtocolVersionMismatch"


class Unauthorized(ProtocolError):
    code = -32012
    type = "Unauthorized"


# --- daemon state ---------------------------------------------------------------------------


class DaemonStateError(SiibradError):
    code = -32000
    type = "DaemonStateError"


class ServerNotInitialized(DaemonStateError):
    code = -32002
    type = "ServerNotInitialized"


class ShuttingDown(DaemonStateError):
    code = -32020
    type = "ShuttingDown"


class Busy(DaemonStateError):
    code = -32021
    type = "Busy"


class RequestCancelled(DaemonStateError):
    code = -32800
    type = "RequestCancelled"


class InternalError(DaemonStateError):
    code = -32603
    type = "InternalError"


# --- queries --------------------------------------------------------------------------------


class QueryError(SiibradError):
    code = 1000
    type = "QueryError"


class NotFoundError(QueryError):
    """A spec matched nothing; ``suggestions`` holds the closest names ("did you mean")."""

    code = 1100
    type = "NotFoundError"
    kind: ClassVar[str] = "object"

    def __init__(
        self, message: str, *, spec: Any = None, suggestions: Sequence[str] = (), **data: Any
    ) -> None:
        super().__init__(message, spec=spec, kind=self.kind, suggestions=list(suggestions), **data)

    @property
    def suggestions(self) -> list[str]:
        return list(self.data.get("suggestions", []))


class AtlasNotFoundError(NotFoundError):
    code = 1101
    type = "AtlasNotFoundError"
    kind = "atlas"


class SpaceNotFoundError(NotFoundError):
    code = 1102
    type = "SpaceNotFoundError"
    kind = "space"


class ParcellationNotFoundError(NotFoundError):
    code = 1103
    type = "ParcellationNotFoundError"
    kind = "parcellation"


class MapNotFoundError(NotFoundError):
    code = 1104
    type = "MapNotFoundError"
    kind = "map"


class RegionNotFoundError(NotFoundError):
    code = 1105
    type = "RegionNotFoundError"
    kind = "region"


class AmbiguousError(QueryError):
    """A spec matched several things; ``candidates`` holds them, best first."""

    code = 1200
    type = "AmbiguousError"
    kind: ClassVar[str] = "object"

    def __init__(
        self, message: str, *, spec: Any = None, candidates: Sequence[Any] = (), **data: Any
    ) -> None:
        super().__init__(message, spec=spec, kind=self.kind, candidates=list(candidates), **data)

    @property
    def candidates(self) -> list[Any]:
        return list(self.data.get("candidates", []))


class AmbiguousAtlasError(AmbiguousError):
    code = 1201
    type = "AmbiguousAtlasError"
    kind = "atlas"


class AmbiguousSpaceError(AmbiguousError):
    code = 1202
    type = "AmbiguousSpaceError"
    kind = "space"


class AmbiguousParcellationError(AmbiguousError):
    code = 1203
    type = "AmbiguousParcellationError"
    kind = "parcellation"


class AmbiguousMapError(AmbiguousError):
    code = 1204
    type = "AmbiguousMapError"
    kind = "map"


class AmbiguousRegionError(AmbiguousError):
    code = 1205
    type = "AmbiguousRegionError"
    kind = "region"


class InvalidSpecError(QueryError):
    code = 1300
    type = "InvalidSpecError"


class InvalidPointsError(QueryError):
    code = 1301
    type = "InvalidPointsError"


class SpaceMismatchError(QueryError):
    code = 1302
    type = "SpaceMismatchError"


class UnsupportedError(QueryError):
    code = 1303
    type = "UnsupportedError"


# --- upstream -------------------------------------------------------------------------------


class UpstreamError(SiibradError):
    code = 2000
    type = "UpstreamError"


class DataUnavailableError(UpstreamError):
    code = 2001
    type = "DataUnavailableError"


class FetchFailedError(DataUnavailableError):
    code = 2002
    type = "FetchFailedError"


class FetchTimeoutError(FetchFailedError):
    code = 2003
    type = "FetchTimeoutError"


class ChecksumMismatchError(UpstreamError):
    code = 2004
    type = "ChecksumMismatchError"


class ConfigurationError(UpstreamError):
    code = 2100
    type = "ConfigurationError"


class ConfigurationUnavailableError(UpstreamError):
    code = 2101
    type = "ConfigurationUnavailableError"


class UnsafeArchiveError(UpstreamError):
    code = 2102
    type = "UnsafeArchiveError"


def _all_subclasses(cls: type[SiibradError]) -> list[type[SiibradError]]:
    found: list[type[SiibradError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


ERRORS_BY_TYPE: dict[str, type[SiibradError]] = {c.type: c for c in _all_subclasses(SiibradError)}
"""Every error class by its wire ``data.type``."""
