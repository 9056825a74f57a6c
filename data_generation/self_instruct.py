"""Self-instruct's pure parts: seed tasks, in-context sampling, the prompt, reading a reply back.

The prompt is Alpaca's batch format with our code-task rules (prompts/self_instruct_task.txt): the
rules, then k-1 example tasks as numbered `Instruction / Input / Output` blocks separated by `###`,
then `###\\nk. Instruction:` for the model to continue up to task `num_tasks`. Everything here is
deterministic given its arguments, which is what makes a self-instruct run reproducible.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from data_generation.io import DataError, iter_rows
from data_generation.parsing import ParsedTask, ParseReject, parse_numbered_tasks
from data_generation.record import Record
from main.prompt import load_template

NO_INPUT = "<noinput>"
_STARTS_WITH_MARKER = re.compile(r"^\s*\**\s*\d{1,4}[.)]\s*\**\s*instruction\s*\**\s*:", re.I)


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
        seeds.append(Example(instruction.strip(), first.get("input", "").strip(), first["output"].strip(),
                             f"seed:{row.get('id', where)}"))
    if not seeds:
        raise DataError(path, None, "no seed tasks")
    return seeds


def sample_examples(seeds: Sequence[Example], machine: Sequence[Example], count: int, machine_ratio: float,
                    rng: random.Random) -> list[Example]:
    """`count` distinct examples: round(count * machine_ratio) from the machine pool (as far as it goes),
    the rest from the seeds (Alpaca: 3 seeds, ratio 0)."""
    n_machine = min(len(machine), round(count * machine_ratio))
    n_seed = min(len(seeds), count - n_machine)
    return rng.sample(list(seeds), n_seed) + rng.sample(list(machine), n_machine)


def build_prompt(examples: Sequence[Example], num_tasks: int) -> tuple[str, int]:
    """The batch prompt and the number of the first task the teacher writes."""
    parts = [load_template("self_instruct_task").format(num_tasks=num_tasks), "\n"]
    for i, ex in enumerate(examples, start=1):
        parts.append(f"###\n{i}. Instruction: {ex.instruction}\n{i}. Input:\n{ex.input or NO_INPUT}\n"
                     f"{i}. Output:\n{ex.output}\n")
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
