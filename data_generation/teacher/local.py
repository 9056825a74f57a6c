"""The embedded teacher: a Hugging Face causal LM run in-process with transformers, no server.

It answers the same `Request`s as the HTTP teacher, so every LLM-driven source works offline
(default model: SmolLM2-135M-Instruct, see `data_generation.common.models`). Chat requests go through the
tokenizer's chat template; completions requests use the raw prompt.

Determinism: every choice is sampled by `data_generation.common.sampling.RowSampler` with its own
`torch.Generator`, seeded from the request's `seed` (or, when that is None, from its cache key) and
the choice's index, so the same request gives the same text whatever else shares its batch.
Batching (left padding) pays on CPU: on the 2-core box SmolLM2 generates 3-4x more tokens/s with 8
rows per `generate` than with 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from data_generation.common.models import (
    DEFAULT_CACHE_DIR,
    DEFAULT_MODEL,
    model_label,
    resolve_model_spec,
    torch_device,
    torch_dtype,
)
from data_generation.common.sampling import RowSampler, SamplingSettings, derive_seed
from data_generation.teacher.base import Choice, Completion, Request, TeacherError
from data_generation.teacher.cache import ResponseCache

log = logging.getLogger(__name__)


class CompletionCache(Protocol):
    """What the teacher needs from a response cache: `teacher.cache.ResponseCache`'s methods."""

    def get(self, key: str, *, n: int | None = None) -> Completion | None: ...

    def put(self, key: str, request: Request, completion: Completion, *, model: str) -> Any: ...


@dataclass
class _Job:
    """One request to generate: its encoded prompt, its sampler settings and the seed each of its
    choices starts from."""

    index: int
    request: Request
    key: str
    prompt_ids: list[int]
    seed: int
    settings: SamplingSettings

    @property
    def rows(self) -> int:
        """Rows in the batch: greedy choices are all the same, so they are generated once."""
        return 1 if self.settings.greedy else self.request.decoding.n


class LocalTeacher:
    """In-process teacher running a local or hub causal LM (see the module docstring).

    `model`: a model folder, hub id or "embedded", resolved by `common.models.resolve_model_spec` (the
    default model converted from its GGUF lives under `models_dir`); `name`: what cache keys and
    `Completion.model` say (default: `model` as given, marked when it is the converted GGUF, see
    `models.model_label`). Responses are cached in `cache_dir` (a
    `ResponseCache`) or any `cache` object; neither means no cache. `batch_size`: the most rows
    (prompts x sampled choices) generated together. `device`: None/"auto" (CUDA when available),
    "cpu", "cuda", ...; `dtype`: a precision of `defaults.PRECISIONS`: "auto" (bfloat16 on CUDA,
    float32 on CPU), "fp32", "bf16" or "fp16".
    `threads` sets torch's CPU threads (process-wide).
    """

    starts_replies = True  # a chat request's reply_prefix is generated after: see base.starts_replies

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        cache_dir: str | Path | None = None,
        cache: CompletionCache | None = None,
        models_dir: Path = DEFAULT_CACHE_DIR,
        name: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 8,
        threads: int | None = None,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if threads:
            torch.set_num_threads(threads)
        self.path = resolve_model_spec(model, Path(models_dir))  # a folder, a hub id or "embedded"
        self.model = name or model_label(model, self.path)
        self.device = torch_device(device)
        self.dtype = torch_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.cache = cache if cache is not None else ResponseCache(cache_dir) if cache_dir else None
        self.progress = progress
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer.padding_side = "left"  # decoder-only: new tokens must follow the prompt
        self.lm = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype).to(self.device).eval()
        self.eos_ids = _eos_ids(self.lm.generation_config.eos_token_id, self.tokenizer.eos_token_id)
        if not self.eos_ids:
            raise TeacherError(f"{self.path}: neither the tokenizer nor the model names an EOS token")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.eos_ids[0])
        # Rows end at EOS or padding; a pad that is not also EOS is never sampled (see _RowSampler).
        self._ends = {*self.eos_ids, self.tokenizer.pad_token_id}
        self.max_context = int(getattr(self.lm.config, "max_position_embeddings", 0) or 1 << 30)
        self._lock = threading.Lock()
        self._stats = {
            "requests": 0,
            "generated": 0,
            "cache_hits": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "generate_seconds": 0.0,
        }
        self._computed_tokens = 0
        log.info(
            "loaded %s from %s on %s (%s) in %.1f s",
            self.model,
            self.path,
            self.device,
            str(self.dtype).removeprefix("torch."),
            time.perf_counter() - started,
        )

    async def complete(self, request: Request) -> Completion:
        """One request; the blocking generate runs in a worker thread so the event loop stays free."""
        return (await asyncio.to_thread(self.complete_all, [request]))[0]

    def complete_all(self, requests: Sequence[Request]) -> list[Completion]:
        """Answer `requests` in order: cached ones from the cache, the rest batched."""
        if self.lm is None:
            raise TeacherError("this LocalTeacher was closed; create a new one")
        with self._lock:
            results: dict[int, Completion] = {}
            pending: dict[str, _Job] = {}
            duplicates: list[tuple[int, str]] = []
            for index, request in enumerate(requests):
                key = request.cache_key(self.model)
                hit = self.cache.get(key, n=request.decoding.n) if self.cache is not None else None
                if hit is not None:
                    self._stats["cache_hits"] += 1
                    results[index] = dataclasses.replace(hit, cached=True)
                elif key in pending:  # the same request twice in one call: generate it once
                    duplicates.append((index, key))
                else:
                    pending[key] = self._job(index, request, key)
            with tqdm(
                total=len(pending), desc=f"teacher {self.model}", unit="req", disable=not self.progress or not pending
            ) as bar:
                for batch in self._batches(list(pending.values())):
                    for job, completion in zip(batch, self._generate(batch)):
                        if self.cache is not None:
                            self.cache.put(job.key, job.request, completion, model=self.model)
                        results[job.index] = completion
                    bar.set_postfix_str(
                        f"tok={self._stats['completion_tokens']:,} tok/s={self._tokens_per_second():.1f}", refresh=False
                    )
                    bar.update(len(batch))
            for index, key in duplicates:
                results[index] = results[pending[key].index]
            self._stats["requests"] += len(requests)
            return [results[i] for i in range(len(requests))]

    def usage(self) -> dict[str, Any]:
        """Totals for manifests. `requests` counts answers (cache hits too), `generated` the ones the
        model produced; token totals are this run's generation. A local model costs nothing."""
        return {
            "backend": "local",
            "model": self.model,
            "model_path": str(self.path),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            **self._stats,
            "generate_seconds": round(self._stats["generate_seconds"], 3),
            "tokens_per_second": round(self._tokens_per_second(), 2),
            "cost_usd": 0.0,
        }

    def _tokens_per_second(self) -> float:
        seconds = self._stats["generate_seconds"]
        return self._computed_tokens / seconds if seconds else 0.0

    def close(self) -> None:
        """Drop the weights (a model is hundreds of MB); the object is unusable afterwards."""
        self.lm = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- internals ------------------------------------------------------------------------------

    def _job(self, index: int, request: Request, key: str) -> _Job:
        decoding = request.decoding
        if decoding.n < 1 or decoding.max_tokens < 1:
            raise TeacherError(f"n and max_tokens must be >= 1 (got n={decoding.n}, max_tokens={decoding.max_tokens})")
        try:
            settings = decoding.settings()
        except ValueError as exc:
            raise TeacherError(f"bad decoding settings: {exc}") from exc
        if request.messages is not None:
            if not self.tokenizer.chat_template:
                raise TeacherError(
                    f"{self.path} has no chat template; send completions requests (Request(prompt=...)) to this model"
                )
            messages = [{"role": role, "content": content} for role, content in request.messages]
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            text += request.reply_prefix  # the reply starts here; the choice text gets it back below
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]  # the template has them
        else:
            ids = self.tokenizer(request.prompt)["input_ids"]
        if len(ids) >= self.max_context:
            raise TeacherError(
                f"prompt of {len(ids)} tokens does not fit the model's context of {self.max_context} tokens"
            )
        seed = decoding.seed if decoding.seed is not None else int(key[:15], 16)
        return _Job(index, request, key, list(ids), seed, settings)

    def _batches(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Group jobs that can share one `generate` call (same max_tokens and stop strings), sorted
        by prompt length so padding stays small, in chunks of at most `batch_size` rows."""
        groups: dict[tuple[int, tuple[str, ...]], list[_Job]] = {}
        for job in jobs:
            groups.setdefault((job.request.decoding.max_tokens, job.request.decoding.stop), []).append(job)
        batches: list[list[_Job]] = []
        for group in groups.values():
            group.sort(key=lambda job: len(job.prompt_ids))
            current: list[_Job] = []
            for job in group:
                if current and sum(j.rows for j in current) + job.rows > self.batch_size:
                    batches.append(current)
                    current = []
                current.append(job)
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _generate(self, batch: list[_Job]) -> list[Completion]:
        started = time.perf_counter()
        decoding = batch[0].request.decoding  # max_tokens and stop are shared by the batch
        encoded = self.tokenizer.pad(
            {"input_ids": [job.prompt_ids for job in batch for _ in range(job.rows)]}, return_tensors="pt"
        ).to(self.device)
        prompt_len = encoded["input_ids"].shape[1]
        pad = self.tokenizer.pad_token_id
        forbidden = pad if pad not in self.eos_ids else None
        max_new = min(decoding.max_tokens, self.max_context - prompt_len)
        config = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(decoding.stop) or None,
        )
        output = self.lm.generate(
            **encoded,
            generation_config=config,
            tokenizer=self.tokenizer,
            logits_processor=[self._sampler(batch, prompt_len, forbidden)],
        )
        rows = iter(output[:, prompt_len:].tolist())
        completions = []
        for job in batch:
            choices = [self._choice(next(rows), job.request.decoding.stop, max_new) for _ in range(job.rows)]
            prefix = job.request.reply_prefix
            choices = [(Choice(prefix + c.text, c.finish_reason), t) for c, t in choices]
            choices *= job.request.decoding.n // job.rows  # greedy: the one answer n times
            completions.append(
                Completion(
                    tuple(c for c, _ in choices),
                    self.model,
                    len(job.prompt_ids),
                    sum(t for _, t in choices),
                    usage_from_server=True,
                )
            )
        computed = sum(c.completion_tokens * job.rows // job.request.decoding.n for job, c in zip(batch, completions))
        self._record(batch, completions, computed, time.perf_counter() - started)
        return completions

    def _sampler(self, batch: list[_Job], prompt_len: int, forbidden: int | None) -> RowSampler:
        """Each row sampled with its request's settings (penalties, temperature, top-p) and its own
        generator, seeded from its job's seed and its choice's index, so an answer does not depend
        on its batch mates. Drawn over the whole vocabulary, as this teacher always drew: see
        `sampling.sample_row`."""
        rows = [(job, choice) for job in batch for choice in range(job.rows)]
        return RowSampler(
            [derive_seed(job.seed, choice) for job, choice in rows],
            [job.settings for job, _ in rows],
            self.device,
            forbidden,
            prompt_len=prompt_len,
            whole_vocab=True,
        )

    def _choice(self, tokens: list[int], stop: tuple[str, ...], max_new: int) -> tuple[Choice, int]:
        """Text, finish reason and completion-token count of one generated row.

        `generate` pads a finished row, and the sampler never emits the pad token, so the first
        EOS or pad ends the row; a final EOS counts as a generated token, a pad does not."""
        end = next((i for i, token in enumerate(tokens) if token in self._ends), len(tokens))
        count = end + 1 if end < len(tokens) and tokens[end] in self.eos_ids else end
        text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
        cut = min((pos for pos in (text.find(s) for s in stop) if pos >= 0), default=-1)
        if cut >= 0:
            return Choice(text[:cut], "stop"), count
        # No EOS and the full budget used: cut off by max_tokens.
        reason = "length" if end == len(tokens) == max_new else "stop"
        return Choice(text, reason), count

    def _record(self, batch: list[_Job], completions: list[Completion], computed: int, seconds: float) -> None:
        """Add a batch to the totals; `computed` counts tokens really generated (greedy n > 1 reuses
        one row), which is what the throughput figure divides."""
        self._stats["generated"] += len(batch)
        self._stats["prompt_tokens"] += sum(c.prompt_tokens for c in completions)
        self._stats["completion_tokens"] += sum(c.completion_tokens for c in completions)
        self._stats["generate_seconds"] += seconds
        self._computed_tokens += computed
        log.debug("generated %d requests, %d tokens in %.1f s", len(batch), computed, seconds)


def _eos_ids(*values: int | list[int] | None) -> list[int]:
    ids: list[int] = []
    for value in values:
        for token in value if isinstance(value, list) else [value]:
            if token is not None and token not in ids:
                ids.append(int(token))
    return ids
