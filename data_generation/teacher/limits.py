"""Client-side rate limits and the retry timing policy of the HTTP teacher.

Rate limits are token buckets that *reserve* capacity: `reserve(amount)` takes the amount at once
(the level may go negative) and returns how long the caller must sleep before sending. Later callers
see the debt and queue behind it, so requests leave in order at the configured rate without a lock
(asyncio is single-threaded between awaits) and without binding to one event loop.

Retries use exponential backoff with full jitter (sleep uniform in [0, min(cap, base * 2^k)]),
which spreads a burst of failures instead of having every client retry in lock-step; a server's
`Retry-After` (seconds or an HTTP date, or OpenAI's `retry-after-ms`) replaces the backoff.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from typing import Callable, Mapping


class TokenBucket:
    """`per_minute` units per minute; holds up to `burst_s` seconds' worth (at least one unit)."""

    def __init__(self, per_minute: float, *, burst_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be > 0 per minute, got {per_minute}")
        self.rate = per_minute / 60.0  # units per second
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity  # start full: the first `capacity` units go at once
        self._clock = clock
        self._last = clock()

    def reserve(self, amount: float = 1.0) -> float:
        """Take `amount` now; return the seconds to wait before using it (0 when available)."""
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._last) * self.rate)
        self._last = now
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate


class RateLimiter:
    """Requests/min and tokens/min together; either may be None (no limit)."""

    def __init__(
        self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None, *, burst_s: float = 1.0
    ) -> None:
        self.requests = TokenBucket(requests_per_minute, burst_s=burst_s) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, burst_s=burst_s) if tokens_per_minute else None
        self.waited_s = 0.0  # total time callers slept here, for the usage report

    @property
    def limits_tokens(self) -> bool:
        return self.tokens is not None

    async def acquire(self, tokens: int = 0) -> None:
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.reserve(1)
        if self.tokens is not None:
            wait = max(wait, self.tokens.reserve(tokens))
        if wait > 0:
            self.waited_s += wait
            await asyncio.sleep(wait)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for retry number `attempt` (0-based)."""
    ceiling = min(cap, base * (2**attempt))
    return (rng or random).uniform(0.0, ceiling)


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """The wait a server asked for, from `retry-after-ms`, or `retry-after` in seconds or HTTP date."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
