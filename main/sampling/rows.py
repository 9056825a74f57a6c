"""What every sampling backend shares: a `Row` to draw, the `Generation` it returns, the `Backend`
protocol, and how a finish reason is named. The backends themselves are built by
`main.sampling.backends.make_backend`."""

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
