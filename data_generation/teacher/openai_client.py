"""`OpenAITeacher`: any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, ...) through the `openai` SDK.

One private event loop in a daemon thread owns the `AsyncOpenAI` client, its connection pool, the
in-flight semaphore and the rate limiter, so `complete_all` (sync) and `complete` (async, from any
event loop) share one pool and one concurrency bound, and the client is never used across loops.

Per request: cache lookup (hits and duplicates inside a batch cost nothing) -> rate limit -> at most
`concurrency` in flight -> POST -> validate the JSON -> account tokens and dollars -> cache write.
The SDK's own retries are off; ours are bounded, back off exponentially with full jitter, honour
`Retry-After`, retry 408/409/429/5xx, timeouts, dropped connections and malformed bodies, and stop
at once on other 4xx (an auth error also stops every queued request: no retry storm).

This module is the engine (loop thread, concurrency, retries, accounting); the wire-level pieces
(`OpenAIConfig`, request bodies, reply parsing) are in `openai_wire.py`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass, replace
from typing import Any, Coroutine, Sequence, TypeVar

import httpx2  # the HTTP library the openai SDK is built on
import openai
from tqdm.auto import tqdm

from data_generation.teacher.accounting import PriceTable, UsageMeter
from data_generation.teacher.base import Completion, Request, TeacherError
from data_generation.teacher.cache import ResponseCache
from data_generation.teacher.limits import (
    RateLimiter,
    backoff_delay,
    retry_after_seconds,
)
from data_generation.teacher.openai_wire import (
    Answer,
    Malformed,
    OpenAIConfig,
    build_body,
    parse_answer,
    prompt_tokens,
    redact,
    transport_reason,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE_STATUS = {408, 409, 429}  # and every 5xx
FATAL_FOR_ALL = {401, 403}  # the key is wrong for every request: stop the whole run


class _LoopThread:
    """A private asyncio loop in a daemon thread; coroutines are submitted to it from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="openai-teacher", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> "asyncio.Future[T]":
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[return-value]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass
class _State:
    """Objects bound to the private loop, created on it."""

    client: openai.AsyncOpenAI
    semaphore: asyncio.Semaphore
    inflight: dict[str, "asyncio.Future[Completion]"]


class OpenAITeacher:
    """The `Teacher` protocol over HTTP. Build with `OpenAITeacher(OpenAIConfig(...))` or `from_env()`."""

    def __init__(self, config: OpenAIConfig | None = None) -> None:
        self.config = config = config or OpenAIConfig()
        config.validate()
        self.model = config.model
        self.meter = UsageMeter()
        self.prices = PriceTable(config.price_table, config.prices)
        self.cache = ResponseCache(config.cache_dir) if config.cache_dir else None
        self.limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self.server_ignores_n = False
        self._fatal: TeacherError | None = None
        self._rng = random.Random()
        self._bar: Any = None
        self._runner: _LoopThread | None = None
        self._state: _State | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, **overrides: Any) -> "OpenAITeacher":
        """OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, with keyword overrides of any config field."""
        return cls(OpenAIConfig.from_env(**overrides))

    # --- the Teacher protocol ------------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        """One request, awaited from any event loop (it runs on the teacher's own loop)."""
        runner = self._ensure_runner()
        if asyncio.get_running_loop() is runner.loop:
            return await self._complete(request)
        return await asyncio.wrap_future(runner.submit(self._complete(request)))

    def complete_all(self, requests: Sequence[Request]) -> list[Completion]:
        """Answer every request concurrently; results in request order. Stops at the first TeacherError."""
        if not requests:
            return []
        runner = self._ensure_runner()
        if threading.current_thread() is runner.thread:
            raise RuntimeError("complete_all() is blocking: from the teacher's own loop use `await complete()`")
        self._bar = tqdm(
            total=len(requests), desc=f"teacher {self.model}", unit="req", disable=not self.config.show_progress
        )
        future = runner.submit(self._complete_many(list(requests)))
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C or an error: stop queued requests too
            raise
        finally:
            self._bar.close()
            self._bar = None

    def usage(self) -> dict[str, Any]:
        """Totals for manifests: counts, retries by reason, tokens, estimated cost. Never the key."""
        price = self.prices.lookup(self.model)
        out = {"backend": "openai", "model": self.model, "base_url": self.config.base_url}
        out.update(self.meter.to_dict())
        out.update(
            {
                "price_usd_per_1m": None if price is None else {"prompt": price.prompt, "completion": price.completion},
                "server_ignores_n": self.server_ignores_n,
                "rate_limit_wait_s": round(self.limiter.waited_s, 3),
                "cache_dir": str(self.config.cache_dir) if self.config.cache_dir else None,
            }
        )
        return out

    def close(self) -> None:
        """Close the HTTP client and stop the private loop (idempotent)."""
        with self._lock:
            runner, state, self._runner, self._state = self._runner, self._state, None, None
        if runner is None:
            return
        if state is not None:
            try:
                runner.submit(state.client.close()).result(10)
            except Exception as exc:  # closing must not mask the caller's own error
                log.debug("closing the HTTP client failed: %s", exc)
        runner.stop()

    def __enter__(self) -> "OpenAITeacher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------------

    def _ensure_runner(self) -> _LoopThread:
        with self._lock:
            if self._runner is None:
                self._runner = _LoopThread()
            return self._runner

    def _loop_state(self) -> _State:
        if self._state is None:  # first use, on the private loop
            self._state = _State(self.config.make_client(), asyncio.Semaphore(self.config.concurrency), {})
        return self._state

    async def _complete_many(self, requests: list[Request]) -> list[Completion]:
        tasks = [asyncio.ensure_future(self._complete(r)) for r in requests]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            return [t.result() for t in tasks]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _complete(self, request: Request) -> Completion:
        state = self._loop_state()
        key = request.cache_key(self.model)
        n = request.decoding.n
        hit = self.cache.get(key, n=n) if self.cache is not None else None
        if hit is None and key in state.inflight:  # the same request earlier in this batch
            hit = replace(await asyncio.shield(state.inflight[key]), cached=True)
        if hit is not None:
            self.meter.cache_hits += 1
            self._answered()
            return hit
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "unretrieved"
        state.inflight[key] = future
        try:
            completion = await self._fetch(state, request)
            if self.cache is not None:
                self.cache.put(key, request, completion, model=self.model)
            future.set_result(completion)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else TeacherError("request cancelled"))
            raise
        finally:
            del state.inflight[key]
        self._answered()
        return completion

    def _answered(self) -> None:
        self.meter.requests += 1
        if self._bar is not None and not self._bar.disable:
            self._bar.set_postfix_str(self.meter.postfix(), refresh=False)
            self._bar.update(1)

    async def _fetch(self, state: _State, request: Request) -> Completion:
        """All n choices: one request with `n`, topped up with n=1 requests if the server ignores `n`."""
        n, seed = request.decoding.n, request.decoding.seed
        replies: list[Answer] = []
        if n == 1 or not self.server_ignores_n:
            replies.append(await self._send(state, request, n, seed))
            got = len(replies[0].choices)
            if got < n and not self.server_ignores_n:
                self.server_ignores_n = True
                log.warning(
                    "%s returned %d choice(s) for n=%d: it ignores `n`; filling up with separate "
                    "n=1 requests from now on",
                    self.config.base_url,
                    got,
                    n,
                )
        have = sum(len(r.choices) for r in replies)
        extra = [self._send(state, request, 1, None if seed is None else seed + i) for i in range(have, n)]
        replies.extend(await asyncio.gather(*extra))
        choices = tuple(c for r in replies for c in r.choices)[:n]
        return Completion(
            choices,
            self.model,
            sum(r.prompt_tokens for r in replies),
            sum(r.completion_tokens for r in replies),
            False,
            all(r.usage_from_server for r in replies),
        )

    async def _send(self, state: _State, request: Request, n: int, seed: int | None) -> Answer:
        """One HTTP request with our retry policy; accounts tokens and cost of the answer."""
        cfg = self.config
        body = build_body(request, self.model, n, seed)
        estimate = request.decoding.max_tokens * n + (prompt_tokens(request) if self.limiter.limits_tokens else 0)
        path = "/chat/completions" if request.api == "chat" else "/completions"
        for attempt in range(cfg.max_retries + 1):
            await self.limiter.acquire(estimate)
            async with state.semaphore:
                if self._fatal is not None:
                    raise self._fatal
                self.meter.http_requests += 1
                try:
                    # The SDK's post() + our own validation rather than chat.completions.create():
                    # the typed path's params transform and pydantic models cost ~1.4 ms of client
                    # CPU per request against ~0.8 ms here, which caps throughput at 64 in flight;
                    # auth, timeouts and the HTTP error classes are the SDK's either way.
                    raw = await state.client.post(path, body=body, cast_to=httpx2.Response)
                    answer = parse_answer(raw.content, request)
                    self._account(answer)
                    return answer
                except openai.APIStatusError as exc:
                    reason, delay = self._status_error(exc)
                    detail = str(exc.message)
                except openai.APIConnectionError as exc:  # APITimeoutError included
                    reason, delay, detail = transport_reason(exc), None, repr(exc.__cause__ or exc)
                except Malformed as exc:
                    reason, delay, detail = "malformed", None, str(exc)
            self.meter.retries[reason] += 1
            if attempt == cfg.max_retries:
                detail = redact(detail, cfg.api_key)[:300]
                raise TeacherError(
                    f"{cfg.base_url} (model {self.model!r}): gave up after "
                    f"{cfg.max_retries + 1} attempts, last failure: {reason} ({detail})"
                )
            if delay is None:
                delay = backoff_delay(attempt, base=cfg.backoff_base, cap=cfg.backoff_max, rng=self._rng)
            log.debug("retrying %s in %.2fs (attempt %d, %s)", request.api, delay, attempt + 1, reason)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _status_error(self, exc: openai.APIStatusError) -> tuple[str, float | None]:
        """(retry reason, server-requested delay) for retryable statuses; raises TeacherError otherwise."""
        status = exc.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            wait = retry_after_seconds(exc.response.headers)
            return f"http_{status}", None if wait is None else min(wait, self.config.retry_after_max)
        detail = redact(str(exc.message), self.config.api_key)[:300]
        hint = {
            401: " (check OPENAI_API_KEY)",
            403: " (the key lacks access to this model or endpoint)",
            404: " (check the model name and that base_url ends in /v1)",
        }.get(status, "")
        error = TeacherError(f"{self.config.base_url} (model {self.model!r}) answered HTTP {status}{hint}: {detail}")
        if status in FATAL_FOR_ALL:
            self._fatal = error
        raise error from None

    def _account(self, answer: Answer) -> None:
        cost = self.prices.cost(self.model, answer.prompt_tokens, answer.completion_tokens)
        self.meter.add_response(answer.prompt_tokens, answer.completion_tokens, cost, answer.usage_from_server)
