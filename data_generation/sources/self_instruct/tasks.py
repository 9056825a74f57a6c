"""Self-instruct's pure parts: seed tasks, in-context sampling, the prompts, reading replies back.

Two modes:

- **batch** (Alpaca's, the default): one prompt with our code-task rules
  (prompts/self_instruct_task.txt), then k-1 example tasks as numbered `Instruction / Input / Output`
  blocks separated by `###`, then `###\\nk. Instruction:` for the model to continue up to task
  `num_tasks`. Needs a model that keeps to a long numbered format.
- **single** (for small models such as the embedded SmolLM2-135M): each request asks for ONE new
  task, with a few example instructions in context and the target language named
  (prompts/self_instruct_single.txt); the reply is one sentence that starts with `single_prefix`
  (a teacher that can start replies, the local one, is given that prefix). The task's answer is then
  asked for as a plain chat question (prompts/self_instruct_answer.txt): the instruction as the user
  message, the code in one fenced block back.

Everything here is deterministic given its arguments, which is what makes a self-instruct run
reproducible.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from data_generation.common.io import DataError, iter_rows
from data_generation.common.language import DISPLAY_NAMES, FENCE_TAGS
from data_generation.common.prompts import load_template
from data_generation.common.record import Record
from data_generation.sources.parsing import (
    ParsedTask,
    ParseReject,
    parse_numbered_tasks,
)

NO_INPUT = "<noinput>"
_STARTS_WITH_MARKER = re.compile(r"^\s*\**\s*\d{1,4}[.)]\s*\**\s*instruction\s*\**\s*:", re.I)
# single mode: how a new task starts ("Write a Python function that ..."); a verb is drawn per request
SINGLE_VERBS = ("Write", "Implement", "Create", "Define")
SINGLE_KINDS = {"java": "method", "csharp": "method"}  # everything else: "function"
SINGLE_LANGUAGES = tuple(DISPLAY_NAMES)  # the languages tree-sitter parses, so an answer can be checked
_LABEL = re.compile(
    r"^\s*(?:\d{1,3}[.)]\s*)?\**\s*(?:new\s+)?(?:task|instruction|exercise)\s*\d*\s*\**\s*:\s*\**\s*", re.I
)


@dataclass(frozen=True)
class Example:
    """One task shown to the teacher: a seed instance or an earlier machine-written task."""

    instruction: str
    input: str
    output: str
    origin: str  # "seed:<id>" or "machine:<record id>", kept in the record's meta

    @classmethod
    def from_record(cls, rec: Record) -> "Example":
        """A kept machine-written task, as later prompts show it."""
        return cls(rec.instruction, rec.input, rec.output, f"machine:{rec.id}")


def load_seed_tasks(path: str | Path) -> list[Example]:
    """Seed tasks in the seeds' format (`instruction`, `instances[{input, output}]`), first instance each."""
    seeds = []
    for where, row in iter_rows(path):
        if not isinstance(row, dict):
            raise DataError(path, where, f"a seed task must be a JSON object, got {type(row).__name__}")
        instruction, instances = row.get("instruction"), row.get("instances")
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(path, where, "seed task needs a non-empty string `instruction`")
        if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
            raise DataError(path, where, "seed task needs `instances`: a non-empty list of {input, output}")
        first = instances[0]
        if not isinstance(first.get("output"), str) or not first["output"].strip():
            raise DataError(path, where, "the seed task's first instance needs a non-empty string `output`")
        if not isinstance(first.get("input", ""), str):
            raise DataError(path, where, "the seed task's `input` must be a string")
        seeds.append(
            Example(
                instruction.strip(),
                first.get("input", "").strip(),
                first["output"].strip(),
                f"seed:{row.get('id', where)}",
            )
        )
    if not seeds:
        raise DataError(path, None, "no seed tasks")
    return seeds


def sample_examples(
    seeds: Sequence[Example], machine: Sequence[Example], count: int, machine_ratio: float, rng: random.Random
) -> list[Example]:
    """`count` distinct examples: round(count * machine_ratio) from the machine pool (as far as it goes),
    the rest from the seeds (Alpaca: 3 seeds, ratio 0)."""
    n_machine = min(len(machine), round(count * machine_ratio))
    n_seed = min(len(seeds), count - n_machine)
    return rng.sample(list(seeds), n_seed) + rng.sample(list(machine), n_machine)


def build_prompt(examples: Sequence[Example], num_tasks: int) -> tuple[str, int]:
    """The batch prompt and the number of the first task the teacher writes."""
    parts = [load_template("self_instruct_task").format(num_tasks=num_tasks), "\n"]
    for i, ex in enumerate(examples, start=1):
        parts.append(
            f"###\n{i}. Instruction: {ex.instruction}\n{i}. Input:\n{ex.input or NO_INPUT}\n{i}. Output:\n{ex.output}\n"
        )
    first = len(examples) + 1
    parts.append(f"###\n{first}. Instruction:")
    return "".join(parts), first


def stop_sequences(num_tasks: int) -> tuple[str, ...]:
    """Stop once the teacher starts task num_tasks + 1 (Alpaca stops on "\\n20" / "20.")."""
    return (f"\n{num_tasks + 1}.", f"###\n{num_tasks + 1}")


def parse_reply(text: str, first: int, finish_reason: str) -> tuple[list[ParsedTask], list[ParseReject]]:
    """Tasks in a reply that continues the prompt after `first. Instruction:`.

    A completions reply starts with the instruction text itself; a chat reply sometimes repeats the
    `first. Instruction:` marker first, and then needs no prefix.
    """
    prefix = "" if _STARTS_WITH_MARKER.match(text) else f"{first}. Instruction:"
    return parse_numbered_tasks(text, finish_reason=finish_reason, prefix=prefix)


# ---------------------------------------------------------------- single mode


@dataclass(frozen=True)
class SingleTask:
    """What one single-mode request asks for: the language and how the task's sentence starts."""

    language: str  # a key of DISPLAY_NAMES
    prefix: str  # "Write a Python function that"

    @property
    def fence(self) -> str:
        return FENCE_TAGS[self.language][0]


def pick_single_task(languages: Sequence[str], rng: random.Random) -> SingleTask:
    """The language and the opening words of the next task (seeded: same rng, same choice)."""
    language = rng.choice(list(languages))
    verb = rng.choice(SINGLE_VERBS)
    kind = SINGLE_KINDS.get(language, "function")
    return SingleTask(language, f"{verb} a {DISPLAY_NAMES[language]} {kind} that")


def build_single_prompt(examples: Sequence[Example], task: SingleTask) -> str:
    """The user message asking for one new task, with the examples' instructions as a list."""
    listing = "\n".join(f"- {' '.join(ex.instruction.split())}" for ex in examples)
    kind = SINGLE_KINDS.get(task.language, "function")
    return load_template("self_instruct_single").format(
        examples=listing, language=DISPLAY_NAMES[task.language], kind=kind, prefix=task.prefix
    )


def build_answer_system(task: SingleTask) -> str:
    """The system message of the answer request (the user message is the instruction itself)."""
    return load_template("self_instruct_answer").format(language=DISPLAY_NAMES[task.language], fence=task.fence)


def answer_prefix(task: SingleTask) -> str:
    """How the answer starts: its code block (only a teacher that starts replies uses it)."""
    return f"```{task.fence}\n"


def parse_single_instruction(text: str, finish_reason: str) -> tuple[str | None, str | None]:
    """(instruction, None) or (None, reject reason) from a single-mode reply: its first line, without
    a leading label ("Task:", "1.", bold) or surrounding quotes. A reply cut by the token limit
    is rejected (`truncated`): its sentence may be unfinished."""
    if finish_reason == "length":
        return None, "truncated"
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip().strip("*").strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'`":
        line = line[1:-1].strip()
    return (line, None) if line else (None, "missing_instruction")
