"""The settings of one `main.generate` run, built once from its command line and passed to every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_generation.common.benchmarks.base import DataChoice, PromptStyle
from data_generation.common.defaults import DEFAULT_SEED
from data_generation.common.sampling import SamplingSettings


@dataclass(frozen=True)
class BackendConfig:
    """Which engine generates, and how it loads the weights (options another engine ignores)."""

    kind: str = "transformers"  # transformers | vllm | openai
    dtype: str = "auto"  # a data_generation.common.defaults.PRECISIONS name
    device: str | None = None
    quantize: str | None = None  # 8bit | 4bit (bitsandbytes)
    threads: int | None = None
    decode: str | None = None  # transformers: compact | shared | plain
    tensor_parallel_size: int | None = None  # vllm
    base_url: str | None = None  # openai
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int | None = None


@dataclass(frozen=True)
class GenerateConfig:
    """What to sample (benchmark, data, model, prompt style), how (decoding), and where it goes."""

    benchmark: str
    model: str
    output: Path
    data: DataChoice = field(default_factory=DataChoice)
    adapter: str | None = None
    merge_adapter: bool = True
    prompt_style: str | None = None  # None: from the model (`main.sampling.lineage.choose_style`)
    run_name: str | None = None
    # decoding
    n: int = 1
    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    greedy: bool = False
    max_new_tokens: int = 512
    seed: int = DEFAULT_SEED
    stop: tuple[str, ...] | None = None  # replaces the style's stop strings
    no_stop: bool = False
    batch_size: int = 16
    # task selection
    limit: int | None = None
    task_ids: tuple[str, ...] = ()
    backend: BackendConfig = field(default_factory=BackendConfig)
    overwrite: bool = False
    merge_only: bool = False
    progress: bool = True

    @property
    def meta_path(self) -> Path:
        """The run's fingerprint, SAMPLES.jsonl.meta.json."""
        return self.output.with_name(self.output.name + ".meta.json")

    def settings(self, style: PromptStyle) -> SamplingSettings:
        """The decoding settings under `style`: its stop rule unless `stop` or `no_stop` replace it."""
        stops = () if self.no_stop else self.stop if self.stop else style.stop
        return SamplingSettings(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_new_tokens,
            greedy=self.greedy,
            stop=stops,
            stop_after_fence=style.stop_after_fence and not self.no_stop and not self.stop,
        )
