"""The `openai` sampling backend: any OpenAI-compatible completions endpoint through the repo's
teacher client (`data_generation.teacher.openai_client`), one request per row with its seed."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Sequence

from data_generation.common.sampling import SamplingSettings
from data_generation.teacher.base import Decoding, Request
from main.sampling.rows import Generation, Row

log = logging.getLogger(__name__)
OPENAI_MAX_STOPS = 4  # the OpenAI API rejects more; the text is cut again with every stop afterwards


class OpenAIBackend:
    """An OpenAI-compatible completions endpoint via `OpenAITeacher` (retries, rate limits, concurrency).

    One request per row with the row's seed (servers that honour `seed`, like vLLM, give reproducible
    samples). The API has no top-k; at most 4 stop strings go to the server and the text is cut again
    with all of them afterwards.
    """

    name = "openai"

    def __init__(
        self,
        model: str | None,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 120.0,
        max_retries: int = 6,
        cache_dir: str | None = None,
    ) -> None:
        from data_generation.teacher.openai_client import OpenAIConfig, OpenAITeacher

        config = OpenAIConfig.from_env(
            base_url=base_url,
            model=model,
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            cache_dir=cache_dir,
            progress=False,
        )
        self.teacher = OpenAITeacher(config)
        self.model = self.teacher.model

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.teacher.config.base_url}

    def generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]:
        if settings.top_k:
            log.warning("the OpenAI API has no top-k: ignoring top_k=%d", settings.top_k)

        def decoding(row: Row) -> Decoding:
            wire = Decoding.from_settings(settings, seed=row.seed)
            return dataclasses.replace(wire, stop=wire.stop[:OPENAI_MAX_STOPS])

        requests = [
            Request(messages=row.messages, decoding=decoding(row))
            if row.messages is not None
            else Request(prompt=row.prompt, decoding=decoding(row))
            for row in rows
        ]
        # The server strips a matched stop string, so its "stop" covers both EOS and a stop string.
        return [
            Generation(
                c.choices[0].text, "length" if c.choices[0].finish_reason == "length" else "stop", c.completion_tokens
            )
            for c in self.teacher.complete_all(requests)
        ]

    def close(self) -> None:
        self.teacher.close()
