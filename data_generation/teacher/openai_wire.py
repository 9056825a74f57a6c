"""Wire-level pieces of `OpenAITeacher`: where to connect, what to send, how to read the answer.

`OpenAIConfig` (endpoint, key, model, limits; read from OPENAI_BASE_URL / OPENAI_API_KEY /
OPENAI_MODEL) and the SDK client it builds; the JSON body of /chat/completions and /completions;
the parse and validation of a 2xx body into an `Answer` (a body that is not a well-formed
completion raises `Malformed`, which the client retries); token estimates; redaction of the key
from error text; and the classification of a transport failure as 'timeout' or 'connection'.
Nothing here awaits or retries: the async engine and the retry policy live in `openai_client.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import httpx2  # the HTTP library the openai SDK is built on
import openai

from data_generation.teacher.accounting import (
    DEFAULT_PRICE_TABLE,
    count_chat_tokens,
    count_tokens,
)
from data_generation.teacher.base import Choice, Request, TeacherError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
PLACEHOLDER_KEY = "sk-no-key-required"  # local servers (llama.cpp, vLLM) accept any key


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass
class OpenAIConfig:
    """Where and how to ask. `OpenAIConfig()` reads OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL."""

    base_url: str = field(default_factory=lambda: _env("OPENAI_BASE_URL", DEFAULT_BASE_URL))
    api_key: str = field(default_factory=lambda: _env("OPENAI_API_KEY", ""), repr=False)
    model: str = field(default_factory=lambda: _env("OPENAI_MODEL", DEFAULT_OPENAI_MODEL))
    timeout: float = 120.0  # seconds per HTTP attempt
    max_retries: int = 6  # retries after the first attempt
    backoff_base: float = 1.0  # full-jitter backoff: uniform(0, min(backoff_max, base * 2**retry))
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # cap on a server's Retry-After
    concurrency: int = 16  # HTTP requests in flight
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None  # estimate: prompt tokens + max_tokens * n
    cache_dir: str | Path | None = None  # None: no cache
    prices: Mapping[str, Mapping[str, float]] | None = None  # {"model": {"prompt": $/1M, "completion": $/1M}}
    price_table: str | Path | None = DEFAULT_PRICE_TABLE
    progress: bool = True  # tqdm bar in complete_all (rank 0 only)
    http_backend: str = "aiohttp"  # the SDK's aiohttp transport (less CPU per request) or "httpx2"

    @classmethod
    def from_env(
        cls, *, api_key_env: str = "OPENAI_API_KEY", prices_path: str | Path | None = None, **overrides: Any
    ) -> "OpenAIConfig":
        """Defaults from the environment; an override that is None keeps the default (CLI options)."""
        fields = {k: v for k, v in overrides.items() if v is not None}
        fields.setdefault("api_key", os.environ.get(api_key_env, ""))
        if prices_path is not None:
            fields["price_table"] = prices_path
        return cls(**fields)

    def validate(self) -> None:
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ValueError("need concurrency >= 1, max_retries >= 0 and timeout > 0")
        if self.http_backend not in ("aiohttp", "httpx2"):
            raise ValueError(f"http_backend must be 'aiohttp' or 'httpx2', not {self.http_backend!r}")
        if not self.api_key and urlparse(self.base_url).hostname == "api.openai.com":
            raise TeacherError(
                f"no API key for {self.base_url}: set OPENAI_API_KEY (or api_key=), or point "
                "OPENAI_BASE_URL at a local OpenAI-compatible server"
            )

    def make_client(self) -> openai.AsyncOpenAI:
        """The SDK client, with the SDK's retries off (ours honour Retry-After and stop on 4xx)."""
        limits = httpx2.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        factory = openai.DefaultAioHttpClient if self.http_backend == "aiohttp" else openai.DefaultAsyncHttpxClient
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key or PLACEHOLDER_KEY,
            timeout=self.timeout,
            max_retries=0,
            http_client=factory(limits=limits),
        )

    @property
    def show_progress(self) -> bool:
        rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or "0"
        return self.progress and rank == "0"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, parsed and validated."""

    choices: tuple[Choice, ...]
    prompt_tokens: int
    completion_tokens: int
    usage_from_server: bool


class Malformed(ValueError):
    """A 2xx body that is not a well-formed completion (retried: proxies and servers do glitch)."""


def transport_reason(exc: BaseException) -> str:
    """'timeout' or 'connection'. The SDK's aiohttp transport maps a dropped connection to a timeout
    class, so look for a real TimeoutError in the exception chain instead of trusting the class."""
    seen: BaseException | None = exc
    for _ in range(32):  # exception chains can, rarely, loop
        if seen is None:
            break
        if isinstance(seen, (TimeoutError, asyncio.TimeoutError)):  # distinct classes before 3.11
            return "timeout"
        seen = seen.__cause__ or seen.__context__
    return "connection"


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def prompt_tokens(request: Request) -> int:
    return count_chat_tokens(request.messages) if request.messages is not None else count_tokens(request.prompt or "")


def build_body(request: Request, model: str, n: int, seed: int | None) -> dict[str, Any]:
    """The JSON body of /chat/completions or /completions for `request` with `n` choices."""
    d = request.decoding
    body: dict[str, Any] = {
        "model": model,
        "temperature": d.temperature,
        "top_p": d.top_p,
        "max_tokens": d.max_tokens,
        "n": n,
    }
    if request.messages is not None:
        body["messages"] = [{"role": role, "content": content} for role, content in request.messages]
    else:
        body["prompt"] = request.prompt
    if d.stop:
        body["stop"] = list(d.stop)
    if seed is not None:
        body["seed"] = seed
    if d.presence_penalty:
        body["presence_penalty"] = d.presence_penalty
    if d.frequency_penalty:
        body["frequency_penalty"] = d.frequency_penalty
    return body


def parse_answer(raw: bytes, request: Request) -> Answer:
    """Choices and token counts from a 2xx body; the server's `usage` when present, else tiktoken."""
    try:
        data = json.loads(raw)
        texts = [(c["message"]["content"] if request.api == "chat" else c["text"]) or "" for c in data["choices"]]
        reasons = [str(c.get("finish_reason") or "unknown") for c in data["choices"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Malformed(f"not a {request.api} completion: {exc!r}; body starts {raw[:80]!r}") from None
    if not texts or not all(isinstance(t, str) for t in texts):
        raise Malformed(f"no text choices in the body: {raw[:80]!r}")
    choices = tuple(Choice(t, r) for t, r in zip(texts, reasons))
    usage = data.get("usage")
    if (
        isinstance(usage, dict)
        and isinstance(usage.get("prompt_tokens"), int)
        and isinstance(usage.get("completion_tokens"), int)
    ):
        return Answer(choices, usage["prompt_tokens"], usage["completion_tokens"], True)
    return Answer(choices, prompt_tokens(request), sum(count_tokens(t) for t in texts), False)
