"""Parse a teacher's numbered task list back into (instruction, input, output) triples.

The format asked for (see prompts/self_instruct_task.txt):

    ###
    21. Instruction: Reverse the words of a sentence.
    21. Input:
    <noinput>
    21. Output:
    def reverse_words(s): ...

Models drift from it, so the parser is forgiving where it is safe: `###` separators may be
missing, numbers may have several digits, the "Input" part may be absent or say `<noinput>`,
markers may be bold (`**21. Instruction:**`). It is strict where guessing would corrupt data: a
block without an instruction or an output is rejected, and when the reply was cut off
(`finish_reason == "length"`) the last block is dropped because its output may be incomplete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKER = re.compile(
    r"^[ \t]*\**[ \t]*(\d{1,4})[.)][ \t]*\**[ \t]*(instruction|input|output)[ \t]*\**[ \t]*:[ \t]*\**", re.I | re.M
)
_SEPARATOR = re.compile(r"^[ \t]*#{3,}[ \t]*$", re.M)
_NO_INPUT = {"<noinput>", "<no input>", "noinput", "no input", "none", "n/a", "<none>", "-", ""}


@dataclass(frozen=True)
class ParsedTask:
    index: int
    instruction: str
    input: str
    output: str


@dataclass(frozen=True)
class ParseReject:
    index: int
    reason: str


def _clean(text: str) -> str:
    return _SEPARATOR.sub("", text).strip()


def _fields(response: str) -> list[tuple[int, dict[str, str]]]:
    """Group consecutive markers with the same number into one block of fields."""
    markers = list(_MARKER.finditer(response))
    blocks: list[tuple[int, dict[str, str]]] = []
    for i, m in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(response)
        number, field = int(m.group(1)), m.group(2).lower()
        if not blocks or blocks[-1][0] != number or field in blocks[-1][1]:
            blocks.append((number, {}))
        blocks[-1][1][field] = _clean(response[m.end() : end])
    return blocks


def parse_numbered_tasks(
    response: str, *, finish_reason: str = "stop", prefix: str = ""
) -> tuple[list[ParsedTask], list[ParseReject]]:
    """Tasks and rejects from one reply. `prefix` is the prompt's tail the reply continues
    (e.g. "21. Instruction:"), prepended so the first block is parsed like the others."""
    blocks = _fields(prefix + response)
    truncated = finish_reason == "length"
    tasks, rejects = [], []
    for k, (number, fields) in enumerate(blocks):
        if truncated and k == len(blocks) - 1:
            rejects.append(ParseReject(number, "truncated"))
        elif not fields.get("instruction"):
            rejects.append(ParseReject(number, "missing_instruction"))
        elif not fields.get("output"):
            rejects.append(ParseReject(number, "missing_output"))
        else:
            raw_input = fields.get("input", "")
            input_ = "" if raw_input.strip().lower() in _NO_INPUT else raw_input
            tasks.append(ParsedTask(number, fields["instruction"], input_, fields["output"]))
    return tasks, rejects


_NUMBERED_LINE = re.compile(r"^[ \t]*\**[ \t]*(\d{1,4})[.)][ \t]*\**[ \t]*(.*)$", re.M)


def parse_numbered_statements(response: str, expected: int, *, finish_reason: str = "stop") -> dict[int, str]:
    """`N. text` items (text may run over several lines) -> {N: text}, for 1 <= N <= expected.

    Used by reverse instruction's round 1 (one statement per snippet). Items past `expected`, empty
    items, and the last item of a truncated reply are left out; the caller counts what is missing.
    """
    items = list(_NUMBERED_LINE.finditer(response))
    out: dict[int, str] = {}
    for i, m in enumerate(items):
        end = items[i + 1].start() if i + 1 < len(items) else len(response)
        if finish_reason == "length" and i == len(items) - 1:
            break
        number = int(m.group(1))
        text = _clean(m.group(2) + response[m.end() : end])
        if 1 <= number <= expected and text and number not in out:
            out[number] = text
    return out
