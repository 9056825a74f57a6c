"""Fenced code blocks in model replies, read by CommonMark's rules: the one parser every caller uses.

A fence is a line of three or more backticks or three or more tildes, optionally followed by an info
string whose first word names the language. A backtick fence's info string holds no backtick, so a
line like "```x```" is inline code, not a fence. The block closes at the first later line holding
only the same character, at least as many times as the opening (a "```" line inside a "````" block
is content: that is how a block quotes fences), and a line with an info string never closes one. A
block that is never closed runs to the end of the text (a reply cut off by the token limit).

One deliberate departure from CommonMark: a fence may be indented by any amount, not at most three
spaces, because models indent fences inside list items and we parse no list containers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from data_generation.common.language import FENCE_TAGS

_OPENING = re.compile(r"[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>.*)")


@dataclass(frozen=True)
class FencedBlock:
    """One fenced block of a text."""

    info: str  # the info string's first word, lower-cased ("" for a bare fence)
    body: str  # the lines between the fences, joined by "\n" (up to the end of the text when unclosed)
    start: int  # offset of the opening fence line
    end: int | None  # offset just past the closing fence (before its newline); None when never closed

    @property
    def closed(self) -> bool:
        return self.end is not None


def opening_fence(line: str) -> tuple[str, str] | None:
    """(fence, language) when `line` can open a block (every closing line can too), else None.

    `fence` is the run of backticks or tildes; `language` the info string's first word, lower-cased."""
    match = _OPENING.fullmatch(line)
    if match is None:
        return None
    fence, info = match.group("fence"), match.group("info")
    if fence[0] == "`" and "`" in info:
        return None
    words = info.split()
    return fence, words[0].lower() if words else ""


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip(" \t\r")
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def _blocks(text: str) -> Iterator[FencedBlock]:
    fence: str | None = None
    info, start, lines = "", 0, []
    offset = 0
    for line in text.split("\n"):
        if fence is None:
            opened = opening_fence(line)
            if opened is not None:
                (fence, info), start, lines = opened, offset, []
        elif _closes(line, fence):
            yield FencedBlock(info, "\n".join(lines), start, offset + len(line))
            fence = None
        else:
            lines.append(line)
        offset += len(line) + 1
    if fence is not None:
        yield FencedBlock(info, "\n".join(lines), start, None)


def fenced_blocks(text: str) -> list[FencedBlock]:
    """Every fenced block of `text`, in order; the last one may be unclosed."""
    return list(_blocks(text))


def closed_fence_end(text: str) -> int | None:
    """Offset just past the closing fence of the text's first block, or None while that block is open
    (or there is none): where a reply that was to hold one code block is complete."""
    first = next(_blocks(text), None)
    return first.end if first is not None else None


def parse_program_reply(text: str, language: str, finish_reason: str = "stop") -> tuple[str | None, str | None]:
    """(program, None) or (None, reject reason) from a round-2 reply.

    The program is the longest fenced block tagged with the language, else the longest untagged
    block, else the longest block of any tag (the checks then judge it); a reply without fences is
    taken whole. A reply cut off by the token limit counts only if a block was closed before the cut.
    """
    blocks = [(b.info, b.body.rstrip(), b.closed) for b in fenced_blocks(text)]
    if finish_reason == "length":
        blocks = [b for b in blocks if b[2]]
        if not blocks:
            return None, "truncated"
    tags = FENCE_TAGS[language]
    for group in ([b for b in blocks if b[0] in tags], [b for b in blocks if not b[0]], blocks):
        bodies = [body for _, body, _ in group if body.strip()]
        if bodies:
            return max(bodies, key=len) + "\n", None
    if blocks:
        return None, "empty_code"
    program = text.strip()
    return (program + "\n", None) if program else (None, "empty_reply")
