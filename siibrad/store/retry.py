"""When to try a download again: exponential backoff with full jitter and ``Retry-After``.

Contract: :meth:`Backoff.delay_s` gives the pause before retry ``attempt`` (0-based), capped at
``cap_s``; a server's ``Retry-After`` (seconds or an HTTP date) wins when present, capped at
``retry_after_cap_s`` so that a hostile or confused server cannot park a request for hours.
Which failures are retried is decided by the caller (see ``siibrad.store.download``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses between attempts: ``base_s * 2**attempt`` with full jitter, capped."""

    base_s: float = 0.5
    cap_s: float = 30.0
    retry_after_cap_s: float = 120.0
    jitter: bool = True

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 = the first retry).

        >>> Backoff(base_s=1.0, jitter=False).delay_s(3)
        8.0
        >>> Backoff(base_s=1.0, cap_s=5.0, jitter=False).delay_s(10)
        5.0
        >>> Backoff(retry_after_cap_s=60.0).delay_s(0, retry_after_s=3600.0)
        60.0
        """
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.retry_after_cap_s))
        ceiling = min(self.cap_s, self.base_s * (2.0 ** min(attempt, 32)))
        # Full jitter spreads the retries of many clients hit by one outage.
        return random.uniform(0.0, ceiling) if self.jitter else ceiling


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds requested by a ``Retry-After`` header (delta-seconds or HTTP date), else ``None``.

    >>> parse_retry_after("2")
    2.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT",
    ...                   now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC))
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
