"""The `main.generate` command line the generation tests share: a tiny model, HumanEval, sampled."""

from __future__ import annotations

from pathlib import Path


def generate_argv(
    model: Path, output: Path, *extra: str, limit: int = 3, n: int = 4, max_new_tokens: int = 24
) -> list[str]:
    """Arguments for `main.generate.main`: `limit` tasks × `n` samples at temperature 0.8, raw completion."""
    return [
        "--benchmark",
        "humaneval",
        "--model",
        str(model),
        "--limit",
        str(limit),
        "--num-samples",
        str(n),
        "--temperature",
        "0.8",
        "--max-new-tokens",
        str(max_new_tokens),
        "--threads",
        "1",
        "--no-progress",
        "--prompt-style",
        "completion",
        "--output",
        str(output),
        *extra,
    ]
