"""Backoff pauses and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from siibrad.store.retry import Backoff, parse_retry_after


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """Without jitter the pauses double per attempt until the cap."""
    backoff = Backoff(base_s=0.5, cap_s=3.0, jitter=False)
    assert [backoff.delay_s(a) for a in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_stays_within_the_ceiling() -> None:
    """With full jitter each pause lies in [0, ceiling]."""
    backoff = Backoff(base_s=1.0, cap_s=4.0)
    for attempt in range(6):
        for _ in range(50):
            assert 0.0 <= backoff.delay_s(attempt) <= min(4.0, 2.0**attempt)


def test_retry_after_wins_but_is_capped() -> None:
    """A server's Retry-After replaces the backoff, up to retry_after_cap_s."""
    backoff = Backoff(retry_after_cap_s=10.0)
    assert backoff.delay_s(5, retry_after_s=2.0) == 2.0
    assert backoff.delay_s(0, retry_after_s=1e6) == 10.0


def test_retry_after_parses_seconds_and_http_dates() -> None:
    """Delta-seconds and HTTP dates both parse; garbage and the past do not wait."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after(" 7 ") == 7.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now)
        == 30.0
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    )
    assert parse_retry_after("tomorrow") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None
