"""Token buckets, backoff and Retry-After parsing (pure functions, a fake clock)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import pytest

from data_generation.teacher.limits import (
    RateLimiter,
    TokenBucket,
    backoff_delay,
    retry_after_seconds,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_spaces_requests():
    clock = FakeClock()
    bucket = TokenBucket(600, burst_s=1.0, clock=clock)  # 10/s, holds 10
    waits = [bucket.reserve() for _ in range(13)]
    assert waits[:10] == [0.0] * 10
    assert waits[10:] == pytest.approx([0.1, 0.2, 0.3])  # queued behind each other
    clock.now += 0.3  # the debt is paid off, nothing accrues beyond it
    assert bucket.reserve() == pytest.approx(0.1)


def test_bucket_refills_up_to_capacity_only():
    clock = FakeClock()
    bucket = TokenBucket(60, burst_s=2.0, clock=clock)  # 1/s, holds 2
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    clock.now += 3600
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 1.0])


def test_tiny_rates_still_let_one_request_through():
    bucket = TokenBucket(3, clock=FakeClock())  # 0.05/s: capacity is at least one unit
    assert bucket.reserve() == 0.0 and bucket.reserve() == pytest.approx(20.0)


def test_token_bucket_charges_by_amount():
    bucket = TokenBucket(60_000, clock=FakeClock())  # 1000 tokens/s
    assert bucket.reserve(800) == 0.0
    assert bucket.reserve(700) == pytest.approx(0.5)


def test_rate_limiter_sleeps_for_the_larger_wait():
    limiter = RateLimiter(requests_per_minute=6000, tokens_per_minute=60_000)  # 100 req/s, 1000 tok/s

    async def run() -> float:
        start = time.monotonic()
        for _ in range(3):
            await limiter.acquire(500)  # tokens: burst 1000, then 0.5 s per request
        return time.monotonic() - start

    assert 0.45 <= asyncio.run(run()) < 1.5
    assert limiter.waited_s == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_backoff_is_full_jitter_exponential_and_capped():
    rng = random.Random(0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 8.0)]:
        delays = [backoff_delay(attempt, base=0.5, cap=8.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling and min(delays) < 0.2 * ceiling  # spread over the range


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(30, abs=1.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds({"retry-after": past}, now=now) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None
    assert retry_after_seconds({"retry-after": "-5"}) == 0.0
