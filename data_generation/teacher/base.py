"""The teacher interface every LLM-driven source talks to, whatever serves the model.

A `Request` is one prompt (chat `messages` or a plain completions `prompt`) with its decoding
settings; a `Completion` is what came back: `n` choices, token counts and whether it came from the
cache. Backends (`openai` over HTTP, `local` in-process) implement the `Teacher` protocol and are
registered by name in `data_generation.teacher.TEACHERS`.

Errors: `TeacherError` for anything a caller should stop on (auth, bad request, retries exhausted);
its message never contains the API key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence

from data_generation.common.sampling import SamplingSettings


@dataclass(frozen=True)
class Decoding:
    """Sampling settings of a request, as the OpenAI wire names them; all of them are part of the
    cache key. `data_generation.common.sampling.SamplingSettings` uses the same names; `settings`
    and `from_settings` convert (temperature 0 on the wire is `greedy` there)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def settings(self) -> SamplingSettings:
        """These settings for the per-row sampler (raises ValueError for values it cannot sample,
        e.g. top_p > 1). Greedy ignores temperature and top-p: they are set to neutral values."""
        greedy = self.temperature <= 0
        return SamplingSettings(
            temperature=1.0 if greedy else self.temperature,
            top_p=1.0 if greedy else self.top_p,
            max_tokens=self.max_tokens,
            greedy=greedy,
            stop=self.stop,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
        )

    @classmethod
    def from_settings(cls, settings: SamplingSettings, *, seed: int | None = None, n: int = 1) -> Decoding:
        """`settings` as a wire request with `seed` and `n`: greedy is temperature 0 (and top-p 1).
        The wire has no top-k and no fence stop; callers that rely on them say so."""
        return cls(
            temperature=0.0 if settings.greedy else settings.temperature,
            top_p=1.0 if settings.greedy else settings.top_p,
            max_tokens=settings.max_tokens,
            n=n,
            stop=settings.stop,
            seed=seed,
            presence_penalty=settings.presence_penalty,
            frequency_penalty=settings.frequency_penalty,
        )


@dataclass(frozen=True)
class Request:
    """One prompt. Exactly one of `messages` (chat API) or `prompt` (completions API) is set.

    `tag` is part of the cache key only: two requests with the same prompt and decoding but
    different tags (e.g. the step number of a self-instruct run) are sampled separately, while a
    re-run with the same tags hits the cache and gets the same answers.

    `reply_prefix` (chat only) is how the assistant's reply should start, e.g. "```python\n". A
    backend that can start the reply itself (the local teacher) generates after it; the others send
    the conversation alone and rely on the instructions. Either way a choice's text is the whole
    reply, so callers parse it the same way. Small local models need this to keep to a format.
    """

    messages: tuple[tuple[str, str], ...] | None = None  # ((role, content), ...)
    prompt: str | None = None
    decoding: Decoding = field(default_factory=Decoding)
    tag: str = ""
    reply_prefix: str = ""

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a Request needs exactly one of `messages` (chat) or `prompt` (completions)")
        if self.reply_prefix and self.messages is None:
            raise ValueError("reply_prefix is for chat requests; a completions prompt can end with it instead")

    @property
    def api(self) -> str:
        return "chat" if self.messages is not None else "completions"

    @classmethod
    def chat(
        cls,
        user: str,
        *,
        system: str | None = None,
        decoding: Decoding = Decoding(),
        tag: str = "",
        reply_prefix: str = "",
    ) -> "Request":
        msgs = ((("system", system),) if system else ()) + (("user", user),)
        return cls(messages=msgs, decoding=decoding, tag=tag, reply_prefix=reply_prefix)

    def cache_key(self, model: str) -> str:
        """Content address: model + API + prompt + every decoding setting + tag (never the API key)."""
        payload = {
            "model": model,
            "api": self.api,
            "messages": self.messages,
            "prompt": self.prompt,
            "decoding": asdict(self.decoding),
            "tag": self.tag,
        }
        if self.reply_prefix:  # only when set, so the keys of requests without one stay as they were
            payload["reply_prefix"] = self.reply_prefix
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str  # "stop", "length", ... as the server says


@dataclass(frozen=True)
class Completion:
    choices: tuple[Choice, ...]
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False  # served from the on-disk cache: cost nothing this run
    usage_from_server: bool = False  # token counts reported by the server (else counted with tiktoken)

    def to_json(self) -> dict[str, Any]:
        return {
            "choices": [asdict(c) for c in self.choices],
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "usage_from_server": self.usage_from_server,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any], *, cached: bool = False) -> "Completion":
        return cls(
            tuple(Choice(**c) for c in row["choices"]),
            row["model"],
            int(row["prompt_tokens"]),
            int(row["completion_tokens"]),
            cached,
            bool(row.get("usage_from_server", False)),
        )


class TeacherError(RuntimeError):
    """A request that cannot succeed (auth, bad request, retries exhausted). Never carries the key."""


class Teacher(Protocol):
    """A model that answers Requests. `complete_all` keeps request order in its result.

    A backend that starts its replies with `Request.reply_prefix` says so with a class attribute
    `starts_replies = True` (see `starts_replies`); callers may then rely on it, e.g. stop at the
    fence that closes a code block the prefix opened.
    """

    model: str

    async def complete(self, request: Request) -> Completion: ...

    def complete_all(self, requests: Sequence[Request]) -> list[Completion]: ...

    def usage(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def starts_replies(teacher: object) -> bool:
    """Whether `teacher` starts each reply with its request's `reply_prefix` (the local teacher does;
    HTTP backends send the conversation alone and the model writes the whole reply)."""
    return bool(getattr(teacher, "starts_replies", False))
