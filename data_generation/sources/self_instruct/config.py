"""Self-instruct's settings: `SelfInstructConfig` and the command-line options that fill it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from data_generation.common.defaults import DEFAULT_SEED
from data_generation.common.paths import DATA_DIR
from data_generation.sources.self_instruct import tasks as si

DEFAULT_SEEDS = DATA_DIR / "seed_tasks.jsonl"


@dataclass(frozen=True)
class SelfInstructConfig:
    seed_tasks: str = str(DEFAULT_SEEDS)
    num_instructions: int = 100  # machine tasks to keep in total (the run stops there exactly)
    num_tasks: int = 20  # tasks per prompt: in-context examples + the ones the teacher writes
    num_prompt_instructions: int = 3  # in-context examples per prompt
    machine_ratio: float = 0.0  # share of in-context examples drawn from the machine pool
    requests_per_step: int = 8
    threshold: float = 0.7  # ROUGE-L F above which a task is a near-duplicate
    seed: int = DEFAULT_SEED
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 3072
    api: str = "completions"  # or "chat"
    max_idle_steps: int = 10  # stop when this many steps in a row keep nothing
    mode: str = "batch"  # "batch": Alpaca's numbered list per request; "single": one task per request
    languages: tuple[str, ...] = ()  # single mode: languages drawn from (empty: all ten)
    instruction_max_tokens: int = 64  # single mode: the one-sentence task (max_tokens is the answer's)
    answer_temperature: float = 0.2  # single mode: answers should be conservative

    def __post_init__(self) -> None:
        if self.num_instructions < 1 or self.requests_per_step < 1 or self.max_idle_steps < 1:
            raise ValueError("num_instructions, requests_per_step and max_idle_steps must be >= 1")
        if self.mode not in ("batch", "single"):
            raise ValueError("mode must be 'batch' or 'single'")
        unknown = set(self.languages) - set(si.SINGLE_LANGUAGES)
        if unknown:
            raise ValueError(f"unknown languages {sorted(unknown)}; choose from {', '.join(si.SINGLE_LANGUAGES)}")
        if self.instruction_max_tokens < 1 or self.max_tokens < 1:
            raise ValueError("instruction_max_tokens and max_tokens must be >= 1")
        if not 0 < self.num_prompt_instructions < self.num_tasks:
            raise ValueError("need 0 < num_prompt_instructions < num_tasks")
        if not 0.0 <= self.machine_ratio <= 1.0:
            raise ValueError("machine_ratio must be in [0, 1]")
        if self.api not in ("chat", "completions"):
            raise ValueError("api must be 'chat' or 'completions'")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The source's own options (the teacher's come from `data_generation.teacher`)."""
    d = SelfInstructConfig()
    parser.add_argument("--seed-tasks", default=d.seed_tasks, help="seed tasks (.jsonl, Alpaca seed format)")
    parser.add_argument("--num-instructions", type=int, default=d.num_instructions, help="machine tasks to keep")
    parser.add_argument("--num-tasks", type=int, default=d.num_tasks, help="tasks per prompt (examples included)")
    parser.add_argument(
        "--num-prompt-instructions",
        type=int,
        default=d.num_prompt_instructions,
        help="in-context example tasks per prompt",
    )
    parser.add_argument(
        "--machine-ratio",
        type=float,
        default=d.machine_ratio,
        help="share of in-context examples taken from the machine-written pool",
    )
    parser.add_argument(
        "--requests-per-step", type=int, default=d.requests_per_step, help="prompts sent together per step"
    )
    parser.add_argument("--threshold", type=float, default=d.threshold, help="ROUGE-L near-duplicate threshold")
    parser.add_argument("--seed", type=int, default=d.seed, help="sampling seed")
    parser.add_argument("--temperature", type=float, default=d.temperature)
    parser.add_argument("--top-p", type=float, default=d.top_p)
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens)
    parser.add_argument(
        "--api",
        choices=("completions", "chat"),
        default=d.api,
        help="teacher API: the prompt as a text to continue, or as one user message",
    )
    parser.add_argument(
        "--max-idle-steps",
        type=int,
        default=d.max_idle_steps,
        help="give up after this many steps in a row that keep nothing",
    )
    _single_mode_arguments(parser, d)


def _single_mode_arguments(parser: argparse.ArgumentParser, d: SelfInstructConfig) -> None:
    parser.add_argument(
        "--mode",
        choices=("batch", "single"),
        default=d.mode,
        help="batch: each request continues Alpaca's numbered task list (a strong teacher); "
        "single: each request asks for ONE new task, then its answer as a plain chat "
        "question (small models, e.g. the embedded SmolLM2)",
    )
    parser.add_argument(
        "--languages",
        default="",
        help=f"single mode: comma-separated languages to draw each task's from "
        f"(default all: {','.join(si.SINGLE_LANGUAGES)})",
    )
    parser.add_argument(
        "--instruction-max-tokens",
        type=int,
        default=d.instruction_max_tokens,
        help="single mode: token limit of the one-sentence task (--max-tokens limits the answer)",
    )
    parser.add_argument(
        "--answer-temperature",
        type=float,
        default=d.answer_temperature,
        help="single mode: temperature of the answer request",
    )


def config_from_args(args: argparse.Namespace) -> SelfInstructConfig:
    """The config the parsed options describe; ValueError for an impossible combination."""
    return SelfInstructConfig(
        seed_tasks=args.seed_tasks,
        num_instructions=args.num_instructions,
        num_tasks=args.num_tasks,
        num_prompt_instructions=args.num_prompt_instructions,
        machine_ratio=args.machine_ratio,
        requests_per_step=args.requests_per_step,
        threshold=args.threshold,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        api=args.api,
        max_idle_steps=args.max_idle_steps,
        mode=args.mode,
        languages=tuple(x.strip() for x in args.languages.split(",") if x.strip()),
        instruction_max_tokens=args.instruction_max_tokens,
        answer_temperature=args.answer_temperature,
    )
