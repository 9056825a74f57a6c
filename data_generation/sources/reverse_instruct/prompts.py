"""Reverse instruction's pure parts: the two teacher prompts and reading their replies back.

Round 1 shows the teacher k harvested functions and asks for one problem statement per function
(prompts/reverse_instruct_statement.txt); `parse_numbered_statements` reads the numbered list back.
Round 2 shows one statement with its function and asks for a complete program around it
(prompts/reverse_instruct_program.txt, with a per-language rule from
prompts/reverse_instruct_languages.txt); `common.fences.parse_program_reply` takes the program out of the reply.
`compact=True` picks the `*_compact.txt` variants: the same requests in a third of the words, which
a small CPU-bound teacher reads three times faster (prompt tokens dominate its time) and follows as
well. Everything here is deterministic given its arguments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from data_generation.common.language import DISPLAY_NAMES, FENCE_TAGS
from data_generation.common.prompts import load_template
from data_generation.sources.filters import FilterConfig, instruction_reason
from data_generation.sources.reverse_instruct.snippets import Snippet

_CODE_LINE_CHARS = 25  # a statement quoting a line this long from the function is quoting code


@lru_cache(maxsize=None)
def language_rules() -> dict[str, str]:
    """`language: rule` lines of prompts/reverse_instruct_languages.txt."""
    rules = {}
    for line in load_template("reverse_instruct_languages").splitlines():
        if line.strip():
            key, _, rule = line.partition(":")
            rules[key.strip()] = rule.strip()
    missing = set(DISPLAY_NAMES) - set(rules)
    if missing:
        raise RuntimeError(f"prompts/reverse_instruct_languages.txt has no rule for {sorted(missing)}")
    return rules


def template_names(*, compact: bool) -> tuple[str, ...]:
    """The prompt templates a run reads (its manifest keeps their digest: a resume checks it)."""
    suffix = "_compact" if compact else ""
    return (f"reverse_instruct_statement{suffix}", f"reverse_instruct_program{suffix}", "reverse_instruct_languages")


def _where(snippet: Snippet) -> str:
    owner = snippet.meta.get("class")
    return f"method `{snippet.name}` of `{owner}`" if owner else f"function `{snippet.name}`"


def build_statement_prompt(
    snippets: Sequence[Snippet], *, min_words: int, max_words: int, compact: bool = False
) -> str:
    """Round 1: one request for `len(snippets)` problem statements."""
    parts = []
    for i, s in enumerate(snippets, start=1):
        fence = FENCE_TAGS[s.language][0]
        parts.append(f"Function {i}: the {DISPLAY_NAMES[s.language]} {_where(s)}\n```{fence}\n{s.code.rstrip()}\n```")
    template = "reverse_instruct_statement_compact" if compact else "reverse_instruct_statement"
    return load_template(template).format(
        count=len(snippets), min_words=min_words, max_words=max_words, functions="\n\n".join(parts)
    )


def statement_prefix(snippet: Snippet) -> str:
    """How the reply to a round-1 request starts (the first statement). Only a backend that can
    start replies (the local teacher) uses it: small models keep to the format that way."""
    return f"1. Write the {DISPLAY_NAMES[snippet.language]} {_where(snippet)} that"


def program_prefix(language: str) -> str:
    """How the reply to a round-2 request starts: the code block asked for (a PHP file also opens
    with `<?php`, as its language rule requires: without it the file is plain text)."""
    return f"```{FENCE_TAGS[language][0]}\n" + ("<?php\n" if language == "php" else "")


def first_paragraph(statement: str) -> str:
    """A statement is one paragraph (the prompt says so); what follows a blank line is not part of it."""
    return re.split(r"\n[ \t]*\n", statement.strip(), maxsplit=1)[0].strip()


def build_program_prompt(snippet: Snippet, statement: str, *, compact: bool = False) -> str:
    """Round 2: the statement and its function -> a complete program."""
    template = "reverse_instruct_program_compact" if compact else "reverse_instruct_program"
    return load_template(template).format(
        language=DISPLAY_NAMES[snippet.language],
        statement=statement.strip(),
        fence=FENCE_TAGS[snippet.language][0],
        code=snippet.code.rstrip(),
        name=snippet.name,
        language_rule=language_rules()[snippet.language],
    )


def statement_reason(statement: str, snippet: Snippet, filters: FilterConfig) -> str | None:
    """Why a round-1 statement is unusable, or None: self-instruct's filters, plus code in the text
    (the statement must describe, not show) and a statement that never names the function (round 2
    keeps the name, so an instruction without it would not say what to write)."""
    reason = instruction_reason(statement, "", snippet.code, filters)
    if reason:
        return reason
    if "```" in statement or any(
        len(line) >= _CODE_LINE_CHARS and line in statement
        for line in (raw.strip() for raw in snippet.code.splitlines())
    ):
        return "contains_code"
    if not re.search(rf"(?<![\w$]){re.escape(snippet.name)}(?![\w$])", statement):
        return "function_not_named"
    return None
