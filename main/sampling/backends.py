"""Sampling backends behind one interface: `generate(rows, settings) -> [Generation]`, one per row.

A `Row` is one sample to draw: its prompt and its own seed (the generator derives one per task and
sample); `settings` is a `data_generation.common.sampling.SamplingSettings`. Prompts are encoded with
`data_generation.common.prompts.encode_prompt`, the encoder training uses: a chat prompt (`templated`)
already holds the model's special tokens and gets no second BOS; an OpenAI endpoint gets a chat prompt
as `messages` (its server applies the template). Every backend returns, per row, the raw text it
generated, why it ended (`stop`: a stop string or the end of a fenced block; `eos`; `length`) and its
token count. One module per backend, imported only when `make_backend` builds it:

- `transformers` (default; `main.sampling.transformers_backend`): in-process, every row sampled with
  its own generator by `data_generation.common.sampling`, so a sample does not depend on its batch.
- `vllm` (`main.sampling.vllm_backend`, only when vLLM is installed): one `SamplingParams` per row.
- `openai` (`main.sampling.openai_backend`): any OpenAI-compatible completions endpoint through the
  repo's teacher client, one request per row with its seed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from data_generation.common.sampling import SamplingSettings
from main.sampling.extract import truncate_at_stop


@dataclass(frozen=True)
class Row:
    """One sample to draw. `templated`: `prompt` is a chat template's output (holds its special tokens);
    `messages`: the same prompt as chat turns, for backends that template on the server side."""

    prompt: str
    seed: int
    templated: bool = False
    messages: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Generation:
    text: str  # what the model generated (transformers: up to EOS, so it may run past a stop string)
    finish_reason: str  # "stop", "eos" or "length"
    tokens: int


class Backend(Protocol):
    name: str

    def generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def finish_reason(text: str, settings: SamplingSettings, hit_eos: bool) -> str:
    """Why a generation ended, judged on its text: a stop string first, then EOS, else the budget."""
    _, reason = truncate_at_stop(text, settings.stop, after_fence=settings.stop_after_fence)
    return "stop" if reason is not None else "eos" if hit_eos else "length"


def require(module: str, why: str, install: str) -> Any:
    """Import an optional dependency, or say how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"{why} needs {module}: pip install {install}") from exc


_OPTIONS = {
    "transformers": ("adapter", "merge_adapter", "dtype", "device", "quantize", "models_dir", "threads", "decode"),
    "vllm": ("adapter", "dtype", "quantize", "tensor_parallel_size", "models_dir"),
    "openai": ("base_url", "api_key_env", "concurrency", "timeout", "max_retries", "cache_dir"),
}


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """The backend `name` for `model`; options irrelevant to that backend are ignored."""
    if name not in _OPTIONS:
        raise ValueError(f"unknown backend {name!r}; choose from {sorted(_OPTIONS)}")
    kwargs = {k: v for k, v in options.items() if k in _OPTIONS[name] and v is not None}
    if name == "transformers":
        from main.sampling.transformers_backend import TransformersBackend

        return TransformersBackend(model, **kwargs)
    if name == "vllm":
        from main.sampling.vllm_backend import VLLMBackend

        return VLLMBackend(model, **kwargs)
    from main.sampling.openai_backend import OpenAIBackend

    return OpenAIBackend(model, **kwargs)
