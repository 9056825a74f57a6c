"""The `transformers` sampling backend: a Hugging Face causal LM in-process.

Rows of several prompts share a batch with left padding and the KV cache. Each distinct prompt is
prefilled once and its cache copied to its rows; then our decode loop
(`data_generation.common.sampling.compact_decode`) samples every row with its own `torch.Generator`
seeded from its row seed (temperature, top-k, top-p per row, HF's order), so a sample does not depend
on what shares its batch; stop strings are checked on the *new* tokens only (`StopOnText`), and a
finished row leaves the batch with its cache at once. `decode="shared"` / `"plain"` run HF's
`generate` instead (with / without the shared prefill; same texts, tested). 8-bit / 4-bit loading
(bitsandbytes) and LoRA adapters (peft) are imported only when asked for. A CUDA out-of-memory error
splits the batch in two and retries: samples are never dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.models import resolve_model_spec, torch_device, torch_dtype
from data_generation.common.prompts import encode_prompt
from data_generation.common.sampling import (
    ForbidToken,
    RowSampler,
    SamplingSettings,
    StopOnText,
    compact_decode,
    prefill,
)
from main.sampling.rows import Generation, Row, finish_reason, require

log = logging.getLogger(__name__)


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
            require("bitsandbytes", f"--load-in-{self.quantize}", "bitsandbytes")
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
            peft = require("peft", "--adapter", "peft")
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
        max_new = min(settings.max_tokens, self.max_context - prompt_len)
        if max_new < 1:
            raise ValueError(f"a prompt of {prompt_len} tokens leaves no room in the context of {self.max_context}")
        forbidden = None if self.pad_id in self.eos_ids else self.pad_id  # pad marks finished rows only
        processors = LogitsProcessorList(
            [ForbidToken(forbidden)]
            if settings.greedy and not settings.penalised
            else [RowSampler([r.seed for r in rows], settings, self.device, forbidden, prompt_len=prompt_len)]
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


def _torch() -> Any:
    import torch

    return torch
