"""Sampling backends behind one interface: `generate(rows, settings) -> [Generation]`, one per row.

A `Row` is one sample to draw: its prompt and its own seed (the generator derives one per task and
sample). Every backend returns, per row, the raw text it generated, why it ended (`stop`: a stop
string or the end of a fenced block; `eos`; `length`) and its token count.

- `transformers` (default; `TransformersBackend`): rows of several prompts per batch with left
  padding and the KV cache. Each distinct prompt is prefilled once and its cache copied to its rows;
  then our decode loop samples every row with its own `torch.Generator` seeded from its row seed
  (temperature, top-k, top-p per row, HF's order), so a sample does not depend on what shares its
  batch; stop strings are checked on the *new* tokens only (`StopOnText`), and a finished row leaves
  the batch with its cache at once. `decode="shared"` / `"plain"` run HF's `generate` instead (with /
  without the shared prefill; same texts, tested). 8-bit / 4-bit loading (bitsandbytes) and LoRA
  adapters (peft) are imported only when asked for. A CUDA out-of-memory error splits the batch in
  two and retries: samples are never dropped.
- `vllm` (`VLLMBackend`, only when vLLM is installed): one `SamplingParams` per row with its seed.
- `openai` (`OpenAIBackend`): any OpenAI-compatible completions endpoint through the repo's teacher
  client (`data_generation.teacher.openai_client`), one request per row with its seed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from main.extract import closed_fence_end, truncate_at_stop

log = logging.getLogger(__name__)
NUCLEUS_PROBE = 256  # top-p looks at the most likely 256 tokens first, widening only when needed
OPENAI_MAX_STOPS = 4  # the OpenAI API rejects more; the text is cut again with every stop afterwards


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding shared by a batch. `greedy` ignores temperature/top-p/top-k; `top_k=0` disables top-k."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 512
    greedy: bool = False
    stop: tuple[str, ...] = ()
    stop_after_fence: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError("need max_new_tokens >= 1, top_k >= 0 and 0 < top_p <= 1")
        if not self.greedy and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling; use greedy for temperature 0")


@dataclass(frozen=True)
class Row:
    prompt: str
    seed: int


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


def resolve_model_spec(spec: str, models_dir: Path | None = None) -> Path:
    """A model folder for `spec`: a folder, a hub id, or `embedded` (SmolLM2 converted from its GGUF)."""
    from data_generation.models import DEFAULT_CACHE_DIR, embedded_default_model, resolve_model

    if spec == "embedded":
        return embedded_default_model(models_dir or DEFAULT_CACHE_DIR)
    return resolve_model(spec, models_dir or DEFAULT_CACHE_DIR)


def base_checkpoint(model_path: Path | str, adapter: str | None) -> str | None:
    """What the weights were tuned from: the adapter's base model, else the folder's recorded source."""
    candidates = [Path(adapter) / "adapter_config.json"] if adapter else []
    # main.merge_lora writes merge_info.json into a merged model; a converted GGUF, its provenance.
    candidates += [Path(model_path) / name for name in ("merge_info.json", "codecapy_provenance.json")]
    for path in candidates:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            found = data.get("base_model_name_or_path") or data.get("base") or data.get("source_model")
            if found:
                return str(found)
    return None


class TransformersBackend:
    """A Hugging Face causal LM in-process (see the module docstring).

    `quantize`: None, "8bit" or "4bit" (bitsandbytes, CUDA); `adapter`: a peft LoRA folder, merged into
    the weights for speed unless `merge_adapter=False` or the model is quantised; `decode`: "compact"
    (our loop), "shared" or "plain" (HF `generate`, for architectures our loop does not fit).
    """

    name = "transformers"

    def __init__(self, model: str, *, adapter: str | None = None, merge_adapter: bool = True,
                 dtype: str = "auto", device: str | None = None, quantize: str | None = None,
                 models_dir: Path | None = None, threads: int | None = None, decode: str = "compact") -> None:
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
        self.device = _device(device)
        self.dtype = _dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer.padding_side = "left"  # decoder-only: the new tokens must follow every prompt
        self.lm = self._load(merge_adapter)
        config_eos = self.lm.generation_config.eos_token_id
        self.eos_ids = sorted({int(t) for t in (config_eos if isinstance(config_eos, list) else [config_eos])
                               + [self.tokenizer.eos_token_id] if t is not None})
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
            kwargs["quantization_config"] = (BitsAndBytesConfig(load_in_8bit=True) if self.quantize == "8bit" else
                                             BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute,
                                                                bnb_4bit_quant_type="nf4"))
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
        return {"backend": self.name, "model_path": str(self.path), "device": str(self.device),
                "dtype": str(self.dtype).removeprefix("torch."), "quantization": self.quantize,
                "adapter_merged": self.adapter_merged, "decode": self.decode}

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
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        torch = _torch()
        prompts = list(dict.fromkeys(r.prompt for r in rows))  # each distinct prompt once
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        prompt_len = encoded["input_ids"].shape[1]
        max_new = min(settings.max_new_tokens, self.max_context - prompt_len)
        if max_new < 1:
            raise ValueError(f"a prompt of {prompt_len} tokens leaves no room in the context of {self.max_context}")
        forbidden = None if self.pad_id in self.eos_ids else self.pad_id  # pad marks finished rows only
        processors = LogitsProcessorList(
            [ForbidToken(forbidden)] if settings.greedy else
            [RowSampler([r.seed for r in rows], settings, self.device, forbidden)])
        criteria = StoppingCriteriaList()
        if settings.stop or settings.stop_after_fence:
            criteria.append(StopOnText(self.tokenizer, prompt_len, settings.stop, settings.stop_after_fence))
        config = GenerationConfig(max_new_tokens=max_new, do_sample=False, num_beams=1,
                                  eos_token_id=self.eos_ids, pad_token_id=self.pad_id)
        which = torch.tensor([prompts.index(r.prompt) for r in rows], device=self.device)
        with torch.inference_mode():
            if self.decode == "compact" and prompt_len > 1:
                new_tokens = self._compact(encoded, which, processors[0], criteria, max_new)
            else:
                cache = self._prefill(encoded, which) if self.decode != "plain" and prompt_len > 1 else None
                output = self.lm.generate(input_ids=encoded["input_ids"][which],
                                          attention_mask=encoded["attention_mask"][which], cache=cache,
                                          generation_config=config, logits_processor=processors,
                                          stopping_criteria=criteria)
                new_tokens = output[:, prompt_len:].tolist()
        ids = [encoded["input_ids"][i][encoded["attention_mask"][i].bool()].tolist() for i in which.tolist()]
        return [self._decode(p, new, settings) for p, new in zip(ids, new_tokens)]

    def _compact(self, encoded: Any, which: Any, chooser: Any, criteria: Any, max_new: int) -> list[list[int]]:
        """Our own decode loop over the shared-prefill cache that drops a row from the batch (and its
        KV cache) as soon as it ends. `generate` keeps finished rows in the batch, padding them, until
        the slowest row ends: with n samples whose lengths vary, most of its compute is padding.
        Rows are computed exactly as in `generate` (same positions, masks, sampler), so texts match."""
        torch = _torch()
        cache = self._prefill(encoded, which)
        mask = encoded["attention_mask"][which]
        last = encoded["input_ids"][which, -1:]
        positions = mask.long().sum(-1, keepdim=True) - 1  # the last prompt token's position
        active = list(range(len(which)))
        tokens: list[list[int]] = [[] for _ in active]
        stopper = criteria[0] if len(criteria) else None
        for _ in range(max_new):
            logits = self.lm(input_ids=last, attention_mask=mask, position_ids=positions, cache=cache,
                             use_cache=True, logits_to_keep=1).logits[:, -1, :]
            chosen = chooser.choose(logits, active)
            for row, token in zip(active, chosen.tolist()):
                tokens[row].append(token)
            ended = [token in self.eos_ids for token in chosen.tolist()]
            if stopper is not None:
                ended = [e or hit for e, hit in zip(ended, stopper.hits([tokens[row] for row in active]))]
            if all(ended) or len(tokens[active[0]]) == max_new:
                break
            if any(ended):
                keep = torch.tensor([i for i, e in enumerate(ended) if not e], device=mask.device)
                cache.batch_select_indices(keep)
                mask, chosen, positions = mask[keep], chosen[keep], positions[keep]
                active = [row for row, e in zip(active, ended) if not e]
            last = chosen.view(-1, 1)
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            positions = positions + 1
        return tokens

    def _prefill(self, encoded: Any, which: Any) -> Any:
        """The KV cache of every distinct prompt but its last token, computed once and copied to each of
        its rows: n samples of one prompt pay for one prefill, not n (HF's num_return_sequences pays n)."""
        ids, mask = encoded["input_ids"][:, :-1], encoded["attention_mask"][:, :-1]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as `generate` computes them
        # logits_to_keep=1: the prefill's logits are not needed, and over a 49k vocabulary they cost.
        cache = self.lm(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                        logits_to_keep=1).cache
        cache.batch_select_indices(which)
        return cache

    def _decode(self, prompt_ids: list[int], tokens: list[int], settings: SamplingSettings) -> Generation:
        """Text of one row. Decoded as prompt + new minus the prompt's text: sentencepiece tokenizers
        drop a leading space when new tokens are decoded alone, which would break indentation."""
        ends = set(self.eos_ids) | {self.pad_id}
        end = next((i for i, token in enumerate(tokens) if token in ends), len(tokens))
        hit_eos = end < len(tokens) and tokens[end] in self.eos_ids
        kwargs = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}
        head = self.tokenizer.decode(prompt_ids, **kwargs)
        full = self.tokenizer.decode(prompt_ids + tokens[:end], **kwargs)
        text = full[len(head):] if full.startswith(head) else self.tokenizer.decode(tokens[:end], **kwargs)
        return Generation(text, finish_reason(text, settings, hit_eos), end + int(hit_eos))

    def close(self) -> None:
        self.lm = None
        if self.device.type == "cuda":
            _torch().cuda.empty_cache()


class VLLMBackend:
    """vLLM, when installed: continuous batching, one `SamplingParams` (with the row's seed) per row."""

    name = "vllm"

    def __init__(self, model: str, *, adapter: str | None = None, dtype: str = "auto",
                 quantize: str | None = None, tensor_parallel_size: int = 1, models_dir: Path | None = None,
                 gpu_memory_utilization: float = 0.9) -> None:
        world, local_rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))
        if world > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            # Under torchrun every rank would otherwise start its engine on GPU 0.
            os.environ["CUDA_VISIBLE_DEVICES"] = str(local_rank)
        vllm = _require("vllm", "--backend vllm", "vllm (on a CUDA machine)")
        self.vllm, self.adapter = vllm, adapter
        self.path = resolve_model_spec(model, models_dir)
        kwargs: dict[str, Any] = {"model": str(self.path), "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
                                  "gpu_memory_utilization": gpu_memory_utilization, "enable_lora": bool(adapter)}
        if quantize:
            kwargs["quantization"] = "bitsandbytes"
        self.llm = vllm.LLM(**kwargs)
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, str(adapter))
        self.quantize = quantize

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model_path": str(self.path), "quantization": self.quantize,
                "vllm": getattr(self.vllm, "__version__", None)}

    def sampling_params(self, row: Row, settings: SamplingSettings) -> Any:
        return self.vllm.SamplingParams(
            n=1, temperature=0.0 if settings.greedy else settings.temperature,
            top_p=1.0 if settings.greedy else settings.top_p,
            top_k=-1 if settings.greedy or not settings.top_k else settings.top_k,
            max_tokens=settings.max_new_tokens, stop=list(settings.stop), seed=row.seed)

    def generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]:
        params = [self.sampling_params(row, settings) for row in rows]
        outputs = self.llm.generate([row.prompt for row in rows], params, lora_request=self._lora, use_tqdm=False)
        results = []
        for output in outputs:
            best = output.outputs[0]
            # vLLM strips a matched stop string and names it in stop_reason; EOS leaves it None.
            hit_eos = best.finish_reason == "stop" and best.stop_reason is None
            results.append(Generation(best.text, "stop" if best.stop_reason is not None else
                                      finish_reason(best.text, settings, hit_eos), len(best.token_ids)))
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

    def __init__(self, model: str | None, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 16, timeout: float = 120.0, max_retries: int = 6,
                 cache_dir: str | None = None) -> None:
        from data_generation.teacher.openai_client import OpenAIConfig, OpenAITeacher

        config = OpenAIConfig.from_env(base_url=base_url, model=model, api_key_env=api_key_env,
                                       concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                                       cache_dir=cache_dir, progress=False)
        self.teacher = OpenAITeacher(config)
        self.model = self.teacher.model

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.teacher.config.base_url}

    def generate(self, rows: Sequence[Row], settings: SamplingSettings) -> list[Generation]:
        from data_generation.teacher.base import Decoding, Request

        if settings.top_k:
            log.warning("the OpenAI API has no top-k: ignoring top_k=%d", settings.top_k)
        requests = [Request(prompt=row.prompt, decoding=Decoding(
            temperature=0.0 if settings.greedy else settings.temperature,
            top_p=1.0 if settings.greedy else settings.top_p, max_tokens=settings.max_new_tokens, n=1,
            stop=settings.stop[:OPENAI_MAX_STOPS], seed=row.seed)) for row in rows]
        # The server strips a matched stop string, so its "stop" covers both EOS and a stop string.
        return [Generation(c.choices[0].text, "length" if c.choices[0].finish_reason == "length" else "stop",
                           c.completion_tokens) for c in self.teacher.complete_all(requests)]

    def close(self) -> None:
        self.teacher.close()


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """The backend `name` for `model`; options irrelevant to that backend are ignored."""
    pick = {"transformers": ("adapter", "merge_adapter", "dtype", "device", "quantize", "models_dir", "threads",
                             "decode"),
            "vllm": ("adapter", "dtype", "quantize", "tensor_parallel_size", "models_dir"),
            "openai": ("base_url", "api_key_env", "concurrency", "timeout", "max_retries", "cache_dir")}
    if name not in pick:
        raise ValueError(f"unknown backend {name!r}; choose from {sorted(pick)}")
    kwargs = {k: v for k, v in options.items() if k in pick[name] and v is not None}
    cls = {"transformers": TransformersBackend, "vllm": VLLMBackend, "openai": OpenAIBackend}[name]
    return cls(model, **kwargs)


# -- per-row sampling and stopping for `TransformersBackend` ----------------------------------------


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (`manual_seed` wants a non-negative int), stable across runs."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_row(logits: Any, settings: SamplingSettings, generator: Any) -> Any:
    """One token id (a 1-element tensor) from one row's logits, HF's order: temperature, top-k, top-p.

    No `.item()`: on a GPU the choice stays on the device. Top-p without top-k looks at the most
    likely `NUCLEUS_PROBE` tokens and widens only when their mass is still short of `top_p` (a full
    sort of a 50k vocabulary per row and step costs more than the model on CPU)."""
    torch = _torch()
    logits = logits / settings.temperature
    if settings.top_k:
        values, ids = torch.topk(logits, min(settings.top_k, logits.numel()))
        probs = torch.softmax(values, dim=-1)
    elif settings.top_p < 1.0:
        full = torch.softmax(logits, dim=-1)
        k = min(NUCLEUS_PROBE, full.numel())
        while True:
            probs, ids = torch.topk(full, k)
            # Complete once the mass before the last probed token reaches top_p (that token is out).
            if k == full.numel() or float(probs[:-1].sum()) >= settings.top_p:
                break
            k = min(4 * k, full.numel())
    else:
        probs, ids = torch.softmax(logits, dim=-1), None
    if settings.top_p < 1.0:
        probs = probs * ((torch.cumsum(probs, -1) - probs) < settings.top_p)
    choice = torch.multinomial(probs, 1, generator=generator)
    return choice if ids is None else ids[choice]


class RowSampler:
    """A logits processor that samples each row with its own generator and returns logits where only
    the chosen token is finite, so `generate` runs greedy and takes it. HF's `do_sample` draws every row
    from one RNG, which ties a sample to its batch mates and to the batch size."""

    def __init__(self, seeds: Sequence[int], settings: SamplingSettings, device: Any, forbidden: int | None) -> None:
        torch = _torch()
        self.settings, self.forbidden = settings, forbidden
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def choose(self, scores: Any, rows: Sequence[int]) -> Any:
        """The next token of each batch row; `rows[i]` is batch row i's index among the seeded rows."""
        torch = _torch()
        scores = scores.float()
        if self.forbidden is not None:
            scores[:, self.forbidden] = float("-inf")
        return torch.cat([sample_row(scores[i], self.settings, self.generators[row]) for i, row in enumerate(rows)])

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = _torch()
        chosen = self.choose(scores, range(scores.shape[0]))
        out = torch.full_like(scores, float("-inf"), dtype=torch.float32)
        return out.scatter_(1, chosen.view(-1, 1), 0.0)


class ForbidToken:
    """Greedy decoding must not pick the pad token (it marks finished rows) when pad is not EOS."""

    def __init__(self, token: int | None) -> None:
        self.token = token

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.token is not None:
            scores[:, self.token] = float("-inf")
        return scores

    def choose(self, scores: Any, rows: Sequence[int]) -> Any:
        return self(None, scores).argmax(dim=-1)


class StopOnText:
    """Stopping criterion: a row is done once its *new* text holds a stop string (or closes its first
    fenced block). Only the last few new tokens are decoded per step: a stop string of L characters
    lies within the last L + 1 tokens when it first appears; stop strings in the prompt never count."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: Sequence[str], after_fence: bool) -> None:
        self.tokenizer, self.prompt_len, self.stops, self.after_fence = tokenizer, prompt_len, tuple(stops), after_fence
        self.window = max([len(s) for s in self.stops] + [3]) + 2
        self.done: list[bool] = []

    def hits(self, rows: Sequence[Sequence[int]]) -> list[bool]:
        """For each row's new tokens: does its text now hold a stop string (or a closed fence)?"""
        tails = self.tokenizer.batch_decode([list(r[-self.window:]) for r in rows], skip_special_tokens=True)
        found = [any(stop in tail for stop in self.stops) for tail in tails]
        for i, tail in enumerate(tails):
            if not found[i] and self.after_fence and "`" in tail:
                text = self.tokenizer.decode(list(rows[i]), skip_special_tokens=True)
                found[i] = closed_fence_end(text) is not None
        return found

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch = _torch()
        new = input_ids[:, self.prompt_len:]
        if not self.done:
            self.done = [False] * new.shape[0]
        open_rows = [i for i, done in enumerate(self.done) if not done]
        if open_rows and new.shape[1]:
            for row, hit in zip(open_rows, self.hits(new[open_rows].tolist())):
                self.done[row] = hit
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def _torch() -> Any:
    import torch

    return torch


def _device(name: str | None) -> Any:
    torch = _torch()
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(name)


def _dtype(name: str, device: Any) -> Any:
    torch = _torch()
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return dtype
