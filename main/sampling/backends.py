"""Sampling backends behind one interface: `generate(rows, settings) -> [Generation]`, one per row.

A `Row` is one sample to draw: its prompt and its own seed (the generator derives one per task and
sample). Prompts are encoded with `data_generation.common.prompts.encode_prompts`, the encoder training uses: a chat
prompt (`templated`) already holds the model's special tokens and gets no second BOS; an OpenAI
endpoint gets a chat prompt as `messages` (its server applies the template). Every backend returns, per row, the raw text it generated, why it ended (`stop`: a stop
string or the end of a fenced block; `eos`; `length`) and its token count.

- `transformers` (default; `TransformersBackend`): rows of several prompts per batch with left
  padding and the KV cache. Each distinct prompt is prefilled once and its cache copied to its rows;
  then our decode loop (`data_generation.common.sampling`) samples every row with its own `torch.Generator` seeded
  from its row seed (temperature, top-k, top-p per row, HF's order), so a sample does not depend on
  what shares its batch; stop strings are checked on the *new* tokens only (`StopOnText`), and a
  finished row leaves the batch with its cache at once. `decode="shared"` / `"plain"` run HF's
  `generate` instead (with / without the shared prefill; same texts, tested). 8-bit / 4-bit
  loading (bitsandbytes) and LoRA adapters (peft) are imported only when asked for. A CUDA
  out-of-memory error splits the batch in two and retries: samples are never dropped.
- `vllm` (`VLLMBackend`, only when vLLM is installed): one `SamplingParams` per row with its seed.
- `openai` (`OpenAIBackend`): any OpenAI-compatible completions endpoint through the repo's teacher
  client (`data_generation.teacher.openai_client`), one request per row with its seed.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from data_generation.common.models import resolve_model_spec, torch_device, torch_dtype
from data_generation.common.prompts import encode_prompt

# The sampling machinery lives in data_generation.common.sampling; its public names stay importable from here.
from data_generation.common.sampling import (  # noqa: F401
    NUCLEUS_PROBE,
    ForbidToken,
    RowSampler,
    SamplingSettings,
    StopOnText,
    compact_decode,
    derive_seed,
    prefill,
    sample_row,
)
from main.sampling.extract import truncate_at_stop

log = logging.getLogger(__name__)
OPENAI_MAX_STOPS = 4  # the OpenAI API rejects more; the text is cut again with every stop afterwards


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


def _require(module: str, why: str, install: str) -> Any:
    """Import an optional dependency, or say how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"{why} needs {module}: pip install {install}") from exc


class TransformersBackend:
    """A Hugging Face causal LM in-process (see the module docstring).

    `quantize`: None, "8bit" or "4bit" (bitsandbytes, CUDA); `adapter`: a peft LoRA folder, merged into
    the weights for speed unless `merge_adapter=False` or the model is quantised; `decode`: "compact"
    (our loop), "shared" or "plain" (HF `generate`, for architectures our loop does not fit).
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        merge_adapter: bool = True,
        dtype: str = "auto",
        device: str | None = None,
        quantize: str | None = None,
        models_dir: Path | None = None,
        threads: int | None = None,
        decode: str = "compact",
    ) -> None:
        import torch
        from transformers import AutoTokenizer

        if quantize not in (None, "8bit", "4bit"):
            raise ValueError(f"quantize must be None, '8bit' or '4bit', not {quantize!r}")
        if threads:
            torch.set_num_threads(threads)
        if decode not in ("compact", "shared", "plain"):
            raise ValueError(f"decode must be compact, shared or plain, not {decode!r}")
        self.spec, self.adapter, self.quantize, self.decode = model, adapter, quantize, decode
        self.path = resolve_model_spec(model, models_dir)
        self.device = torch_device(device)
        self.dtype = torch_dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer.padding_side = "left"  # decoder-only: the new tokens must follow every prompt
        self.lm = self._load(merge_adapter)
        config_eos = self.lm.generation_config.eos_token_id
        self.eos_ids = sorted(
            {
                int(t)
                for t in (config_eos if isinstance(config_eos, list) else [config_eos]) + [self.tokenizer.eos_token_id]
                if t is not None
            }
        )
        if not self.eos_ids:
            raise RuntimeError(f"{self.path}: neither the tokenizer nor the model names an EOS token")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.eos_ids[0])
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.max_context = int(getattr(self.lm.config, "max_position_embeddings", 0) or 1 << 30)

    def _load(self, merge_adapter: bool) -> Any:
        from transformers import AutoModelForCausalLM

        kwargs: dict[str, Any] = {"dtype": self.dtype}
        if self.quantize:
            _require("bitsandbytes", f"--load-in-{self.quantize}", "bitsandbytes")
            from transformers import BitsAndBytesConfig

            compute = self.dtype if self.dtype != _torch().float32 else _torch().bfloat16
            kwargs["quantization_config"] = (
                BitsAndBytesConfig(load_in_8bit=True)
                if self.quantize == "8bit"
                else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute, bnb_4bit_quant_type="nf4")
            )
            kwargs["device_map"] = {"": self.device.index or 0} if self.device.type == "cuda" else {"": "cpu"}
        lm = AutoModelForCausalLM.from_pretrained(self.path, **kwargs)
        if not self.quantize:
            lm = lm.to(self.device)
        if self.adapter:
            peft = _require("peft", "--adapter", "peft")
            lm = peft.PeftModel.from_pretrained(lm, self.adapter)
            if merge_adapter and not self.quantize:
                lm = lm.merge_and_unload()  # plain weights again: no adapter overhead per token
        self.adapter_merged = bool(self.adapter and merge_adapter and not self.quantize)
        return lm.eval()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model_path": str(self.path),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "quantization": self.quantize,
            "adapter_merged": self.adapter_merged,
            "decode": self.decode,
        }

    def generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]:
        """All rows in one `generate`; on CUDA out-of-memory, the two halves one after the other."""
        torch = _torch()
        try:
            return self._generate(rows, settings)
        except torch.OutOfMemoryError:
            if len(rows) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(rows) // 2
            log.warning("out of memory with %d rows: retrying as %d + %d", len(rows), half, len(rows) - half)
            return self.generate(rows[:half], settings) + self.generate(rows[half:], settings)

    def _generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]:
        from transformers import (
            GenerationConfig,
            LogitsProcessorList,
            StoppingCriteriaList,
        )

        torch = _torch()
        prompts = list(dict.fromkeys((r.prompt, r.templated) for r in rows))  # each distinct prompt once
        encoded = self._encode(prompts)
        prompt_len = encoded["input_ids"].shape[1]
        max_new = min(settings.max_new_tokens, self.max_context - prompt_len)
        if max_new < 1:
            raise ValueError(f"a prompt of {prompt_len} tokens leaves no room in the context of {self.max_context}")
        forbidden = None if self.pad_id in self.eos_ids else self.pad_id  # pad marks finished rows only
        processors = LogitsProcessorList(
            [ForbidToken(forbidden)]
            if settings.greedy
            else [RowSampler([r.seed for r in rows], settings, self.device, forbidden)]
        )
        criteria = StoppingCriteriaList()
        if settings.stop or settings.stop_after_fence:
            criteria.append(StopOnText(self.tokenizer, prompt_len, settings.stop, settings.stop_after_fence))
        stopper = criteria[0] if len(criteria) else None
        config = GenerationConfig(
            max_new_tokens=max_new, do_sample=False, num_beams=1, eos_token_id=self.eos_ids, pad_token_id=self.pad_id
        )
        which = torch.tensor([prompts.index((r.prompt, r.templated)) for r in rows], device=self.device)
        with torch.inference_mode():
            if self.decode == "compact" and prompt_len > 1:
                new_tokens = compact_decode(self.lm, encoded, which, processors[0], stopper, max_new, self.eos_ids)
            else:
                cache = prefill(self.lm, encoded, which) if self.decode != "plain" and prompt_len > 1 else None
                output = self.lm.generate(
                    input_ids=encoded["input_ids"][which],
                    attention_mask=encoded["attention_mask"][which],
                    cache=cache,
                    generation_config=config,
                    logits_processor=processors,
                    stopping_criteria=criteria,
                )
                new_tokens = output[:, prompt_len:].tolist()
        ids = [encoded["input_ids"][i][encoded["attention_mask"][i].bool()].tolist() for i in which.tolist()]
        return [self._decode(p, new, settings) for p, new in zip(ids, new_tokens)]

    def _encode(self, prompts: Sequence[tuple[str, bool]]) -> dict[str, Any]:
        """Left-padded ids and attention mask of (prompt, templated) pairs, as training encodes prompts."""
        torch = _torch()
        ids = [encode_prompt(self.tokenizer, text, templated=templated) for text, templated in prompts]
        longest = max(len(x) for x in ids)
        padded = [[self.pad_id] * (longest - len(x)) + x for x in ids]
        mask = [[0] * (longest - len(x)) + [1] * len(x) for x in ids]
        return {
            "input_ids": torch.tensor(padded, device=self.device),
            "attention_mask": torch.tensor(mask, device=self.device),
        }

    def _decode(self, prompt_ids: list[int], tokens: list[int], settings: SamplingSettings) -> Generation:
        """Text of one row. Decoded as prompt + new minus the prompt's text: sentencepiece tokenizers
        drop a leading space when new tokens are decoded alone, which would break indentation."""
        ends = set(self.eos_ids) | {self.pad_id}
        end = next((i for i, token in enumerate(tokens) if token in ends), len(tokens))
        hit_eos = end < len(tokens) and tokens[end] in self.eos_ids
        kwargs = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}
        head = self.tokenizer.decode(prompt_ids, **kwargs)
        full = self.tokenizer.decode(prompt_ids + tokens[:end], **kwargs)
        text = full[len(head) :] if full.startswith(head) else self.tokenizer.decode(tokens[:end], **kwargs)
        return Generation(text, finish_reason(text, settings, hit_eos), end + int(hit_eos))

    def close(self) -> None:
        self.lm = None
        if self.device.type == "cuda":
            _torch().cuda.empty_cache()


class VLLMBackend:
    """vLLM, when installed: continuous batching, one `SamplingParams` (with the row's seed) per row."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        dtype: str = "auto",
        quantize: str | None = None,
        tensor_parallel_size: int = 1,
        models_dir: Path | None = None,
        gpu_memory_utilization: float = 0.9,
    ) -> None:
        world, local_rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))
        if world > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            # Under torchrun every rank would otherwise start its engine on GPU 0.
            os.environ["CUDA_VISIBLE_DEVICES"] = str(local_rank)
        vllm = _require("vllm", "--backend vllm", "vllm (on a CUDA machine)")
        self.vllm, self.adapter = vllm, adapter
        self.path = resolve_model_spec(model, models_dir)
        kwargs: dict[str, Any] = {
            "model": str(self.path),
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enable_lora": bool(adapter),
        }
        if quantize:
            kwargs["quantization"] = "bitsandbytes"
        self.llm = vllm.LLM(**kwargs)
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, str(adapter))
        self.quantize = quantize

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model_path": str(self.path),
            "quantization": self.quantize,
            "vllm": getattr(self.vllm, "__version__", None),
        }

    def sampling_params(self, row: Row, settings: SamplingSettings) -> Any:
        return self.vllm.SamplingParams(
            n=1,
            temperature=0.0 if settings.greedy else settings.temperature,
            top_p=1.0 if settings.greedy else settings.top_p,
            top_k=-1 if settings.greedy or not settings.top_k else settings.top_k,
            max_tokens=settings.max_new_tokens,
            stop=list(settings.stop),
            seed=row.seed,
        )

    def generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]:
        params = [self.sampling_params(row, settings) for row in rows]
        tokenizer = self.llm.get_tokenizer()  # token ids, so a chat prompt gets no second BOS
        prompts = [{"prompt_token_ids": encode_prompt(tokenizer, row.prompt, templated=row.templated)} for row in rows]
        outputs = self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)
        results = []
        for output in outputs:
            best = output.outputs[0]
            # vLLM strips a matched stop string and names it in stop_reason; EOS leaves it None.
            hit_eos = best.finish_reason == "stop" and best.stop_reason is None
            results.append(
                Generation(
                    best.text,
                    "stop" if best.stop_reason is not None else finish_reason(best.text, settings, hit_eos),
                    len(best.token_ids),
                )
            )
        return results

    def close(self) -> None:
        self.llm = None


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
        from data_generation.teacher.base import Decoding, Request

        if settings.top_k:
            log.warning("the OpenAI API has no top-k: ignoring top_k=%d", settings.top_k)

        def decoding(row: Row) -> Decoding:
            return Decoding(
                temperature=0.0 if settings.greedy else settings.temperature,
                top_p=1.0 if settings.greedy else settings.top_p,
                max_tokens=settings.max_new_tokens,
                n=1,
                stop=settings.stop[:OPENAI_MAX_STOPS],
                seed=row.seed,
            )

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


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """The backend `name` for `model`; options irrelevant to that backend are ignored."""
    pick = {
        "transformers": ("adapter", "merge_adapter", "dtype", "device", "quantize", "models_dir", "threads", "decode"),
        "vllm": ("adapter", "dtype", "quantize", "tensor_parallel_size", "models_dir"),
        "openai": ("base_url", "api_key_env", "concurrency", "timeout", "max_retries", "cache_dir"),
    }
    if name not in pick:
        raise ValueError(f"unknown backend {name!r}; choose from {sorted(pick)}")
    kwargs = {k: v for k, v in options.items() if k in pick[name] and v is not None}
    cls = {"transformers": TransformersBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}[name]
    return cls(model, **kwargs)


def _torch() -> Any:
    import torch

    return torch
