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

from typing import Any

from main.sampling.rows import Backend

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
