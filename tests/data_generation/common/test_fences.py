"""The one fenced-code parser: CommonMark's fences, as the sampler, the extractor and the round-2 parser read them."""

import pytest

from data_generation.common.fences import (
    FencedBlock,
    closed_fence_end,
    fenced_blocks,
    opening_fence,
    parse_program_reply,
)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("```", ("```", "")),
        ("```Python title=a.py", ("```", "python")),  # the info string's first word, lower-cased
        ("  ````js", ("````", "js")),  # any indentation (list items), any length
        ("~~~ rust", ("~~~", "rust")),
        ("~~~py `x`", ("~~~", "py")),  # a tilde fence's info may hold backticks
        ("```x```", None),  # inline code, not a fence
        ("``", None),
        ("text ```", None),
        ("~~", None),
    ],
)
def test_opening_fence(line, expected):
    assert opening_fence(line) == expected


def test_blocks_with_offsets_and_an_unclosed_last_one():
    text = "Intro\n```python\na = 1\n```\n~~~\nb\n~~~\n```js\nlet c"
    assert fenced_blocks(text) == [
        FencedBlock("python", "a = 1", 6, len("Intro\n```python\na = 1\n```")),
        FencedBlock("", "b", text.index("~~~"), text.index("~~~\n```js") + 3),
        FencedBlock("js", "let c", text.index("```js"), None),
    ]
    assert [b.closed for b in fenced_blocks(text)] == [True, True, False]


@pytest.mark.parametrize(
    "text, body",
    [
        ("````md\n```python\nx\n```\n````", "```python\nx\n```"),  # a longer fence quotes shorter ones
        ("```\nx\n`````", "x"),  # closed by a longer fence of the same character
        ("```\nx\n~~~\ny\n```", "x\n~~~\ny"),  # not by the other character
        ("```python\nx\n```python\ny\n```", "x\n```python\ny"),  # a line with an info string never closes
        ("```\nx\n```  \r\nafter", "x"),  # trailing whitespace (and CRLF) after a closing fence
        ("```\nx\n``` done\ny\n```", "x\n``` done\ny"),  # text after a fence: not a closing fence
    ],
)
def test_closing_rules(text, body):
    assert fenced_blocks(text)[0].body == body


@pytest.mark.parametrize(
    "text, end",
    [
        ("no fences at all", None),
        ("```python\nx = 1\n", None),  # still open
        ("a\n```py\nx = 1\n```\nrest", len("a\n```py\nx = 1\n```")),
        ("  ```\n  x\n  ```", len("  ```\n  x\n  ```")),
        ("~~~python\nx\n~~~\n", len("~~~python\nx\n~~~")),
        ("````\nx\n```\n", None),  # a shorter fence does not close it
        ("```x```\n```\ny\n```", len("```x```\n```\ny\n```")),  # inline code first, then the block
    ],
)
def test_closed_fence_end(text, end):
    assert closed_fence_end(text) == end


def test_no_fence_line_opens_an_empty_unclosed_block():
    assert fenced_blocks("```python") == [FencedBlock("python", "", 0, None)]
    assert fenced_blocks("") == [] and closed_fence_end("```") is None


# ---- a program out of a teacher reply (reverse instruction round 2, self-instruct answers)

PROG = "import math\n\ndef f(x):\n    return math.sqrt(x)"


@pytest.mark.parametrize(
    "reply, finish, want",
    [
        (f"```python\n{PROG}\n```", "stop", (PROG + "\n", None)),
        (f"Here is the program:\n\n```py\n{PROG}\n```\n\nIt imports math.", "stop", (PROG + "\n", None)),
        # the block in the asked language wins over a longer block in another one
        (
            f"```bash\npip install nothing-at-all --quiet --user --upgrade\n```\n```python\n{PROG}\n```",
            "stop",
            (PROG + "\n", None),
        ),
        # of two blocks in the language, the longer (the whole program, not a usage line)
        (f"```python\n{PROG}\n```\nUsage:\n```python\nf(4)\n```", "stop", (PROG + "\n", None)),
        (f"```\n{PROG}\n```", "stop", (PROG + "\n", None)),  # untagged fence
        (f"~~~python\n{PROG}\n~~~", "stop", (PROG + "\n", None)),  # tilde fence
        (f"````python\n{PROG}\n```\nstill code\n````", "stop", (PROG + "\n```\nstill code\n", None)),  # longer fence
        (PROG, "stop", (PROG + "\n", None)),  # no fence at all: the whole reply
        (f"```python\n{PROG}", "stop", (PROG + "\n", None)),  # unclosed but finished
        (f"```python\n{PROG}", "length", (None, "truncated")),  # unclosed and cut off
        (f"```python\n{PROG}\n```\n```python\ndef g(", "length", (PROG + "\n", None)),  # closed block before the cut
        ("```python\n\n```", "stop", (None, "empty_code")),
        ("```python", "stop", (None, "empty_code")),  # a lone opening fence is an empty block, not the program
        (f"```\n{PROG}\n````", "length", (PROG + "\n", None)),  # a longer fence closes it
        (f"```python\r\n{PROG}\r\n```\r\n", "length", (PROG + "\n", None)),  # a CRLF closing fence closes
        ("   \n", "stop", (None, "empty_reply")),
    ],
)
def test_parse_program_reply(reply: str, finish: str, want: tuple) -> None:
    assert parse_program_reply(reply, "python", finish) == want


def test_parse_program_reply_knows_each_languages_tags() -> None:
    reply = "```text\nnot this one, a much longer block of prose than the program\n```\n```c++\nint f();\n```"
    assert parse_program_reply(reply, "cpp") == ("int f();\n", None)
    assert parse_program_reply("```golang\npackage x\n```", "go") == ("package x\n", None)
    assert parse_program_reply("```cs\nclass A {}\n```", "csharp") == ("class A {}\n", None)
