"""The `vllm` sampling backend (only when vLLM is installed): continuous batching, one `SamplingParams`
(with the row's seed) per row."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.models import dtype_name, resolve_model_spec
from data_generation.common.prompts import encode_prompt
from data_generation.common.sampling import SamplingSettings
from main.sampling.rows import Generation, Row, finish_reason, require


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
        vllm = require("vllm", "--backend vllm", "vllm (on a CUDA machine)")
        self.vllm, self.adapter = vllm, adapter
        self.path = resolve_model_spec(model, models_dir)
        kwargs: dict[str, Any] = {
            "model": str(self.path),
            "dtype": dtype_name(dtype),
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
            max_tokens=settings.max_tokens,
            stop=list(settings.stop),
            seed=row.seed,
            presence_penalty=settings.presence_penalty,
            frequency_penalty=settings.frequency_penalty,
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
