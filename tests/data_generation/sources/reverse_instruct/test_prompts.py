"""Reverse instruction's pure parts: prompts, the round-1 and round-2 parsing tables, statement filters."""

from __future__ import annotations

import pytest

from data_generation.common.language import DISPLAY_NAMES, FENCE_TAGS
from data_generation.common.treesitter import LANGUAGES
from data_generation.sources.filters import FilterConfig
from data_generation.sources.parsing import parse_numbered_statements
from data_generation.sources.reverse_instruct import prompts as ri
from data_generation.sources.reverse_instruct.snippets import Snippet

CODE = (
    "def moving_average(values, window):\n    if window <= 0:\n        raise ValueError('window must be positive')\n"
    "    return [sum(values[i:i + window]) / window for i in range(len(values) - window + 1)]\n"
)
SNIPPET = Snippet("python", "moving_average", CODE, "stats/avg.py", 10, 13)
GOOD = (
    "Write a Python function moving_average(values, window) that returns the list of averages of every "
    "run of `window` consecutive numbers in values, and raises ValueError when window is not positive."
)
FILTERS = FilterConfig(min_words=15, max_words=200)


# ---- round 1: numbered statements ------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, expected, finish, want",
    [
        (
            "1. First statement here.\n2. Second one.\n3. Third.",
            3,
            "stop",
            {1: "First statement here.", 2: "Second one.", 3: "Third."},
        ),
        # numbers past 9 (CodeCapybara's single-digit regex splits "10." into "1" + "0.")
        (
            "\n".join(f"{n}. Statement {n}." for n in range(1, 13)),
            12,
            "stop",
            {n: f"Statement {n}." for n in range(1, 13)},
        ),
        ("**1.** Bold marker.\n**2.** Another.", 2, "stop", {1: "Bold marker.", 2: "Another."}),
        (
            "1) Paren style\n   continues on a second line.\n2) Next.",
            2,
            "stop",
            {1: "Paren style\n   continues on a second line.", 2: "Next."},
        ),
        ("Here are the statements:\n\n1. Only one.", 3, "stop", {1: "Only one."}),  # missing 2 and 3
        ("1. A.\n2. B.\n3. C.\n4. Extra.", 3, "stop", {1: "A.", 2: "B.", 3: "C."}),  # past expected: ignored
        ("1. Complete.\n2. Cut off in the mid", 2, "length", {1: "Complete."}),  # truncated tail dropped
        ("1. \n2. Second.", 2, "stop", {2: "Second."}),  # empty item
        ("1. First.\n1. Repeated number.", 2, "stop", {1: "First."}),  # first wins
    ],
)
def test_parse_numbered_statements(reply: str, expected: int, finish: str, want: dict[int, str]) -> None:
    assert parse_numbered_statements(reply, expected, finish_reason=finish) == want


def test_statement_prompt_numbers_every_function_and_names_its_language() -> None:
    java = Snippet(
        "java", "push", "void push(int x) {\n  items[size++] = x;\n}", "Stack.java", 3, 5, {"class": "Stack"}
    )
    prompt = ri.build_statement_prompt([SNIPPET, java], min_words=15, max_words=200)
    assert "Below are 2 functions" in prompt and "between 15 and 200 words" in prompt
    assert "Function 1: the Python function `moving_average`\n```python\n" + CODE.rstrip() + "\n```" in prompt
    assert "Function 2: the Java method `push` of `Stack`\n```java\n" in prompt
    assert "{" not in prompt.split("Function 1")[0]  # every template field was filled


def test_program_prompt_for_every_language() -> None:
    assert set(ri.language_rules()) == set(LANGUAGES) == set(DISPLAY_NAMES) == set(FENCE_TAGS)
    for lang in LANGUAGES:
        s = Snippet(lang, "f", "f body", "x", 1, 1)
        prompt = ri.build_program_prompt(s, "Write f.")
        assert f"complete {DISPLAY_NAMES[lang]} program" in prompt and ri.language_rules()[lang] in prompt
        assert f"```{FENCE_TAGS[lang][0]}\nf body\n```" in prompt and "Keep the function `f`" in prompt


# ---- round 2: the program out of the reply ---------------------------------------------------

# ---- statement filters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement, want",
    [
        (GOOD, None),
        ("Write moving_average.", "too_short"),
        (GOOD + " ```python\nmoving_average([1], 1)\n```", "contains_code"),
        (
            "Write moving_average so that it runs: return [sum(values[i:i + window]) / window for i in "
            "range(len(values) - window + 1)] over the given list of numbers please.",
            "contains_code",
        ),
        (
            "Write a Python function that returns the list of averages of every run of `window` consecutive numbers "
            "in values, and raises ValueError when window is not positive.",
            "function_not_named",
        ),
        (
            "Write a Python function moving_average_fast that returns the list of averages of every run of consecutive "
            "numbers in values, raising ValueError when the window is not positive.",
            "function_not_named",
        ),
    ],
)
def test_statement_reason(statement: str, want: str | None) -> None:
    assert ri.statement_reason(statement, SNIPPET, FILTERS) == want


def test_reply_prefixes_and_first_paragraph() -> None:
    method = Snippet("go", "Pop", "func (s *Stack) Pop() int {\n  return 0\n}", "s.go", 1, 3, {"class": "Stack"})
    assert ri.statement_prefix(SNIPPET) == "1. Write the Python function `moving_average` that"
    assert ri.statement_prefix(method) == "1. Write the Go method `Pop` of `Stack` that"
    assert ri.program_prefix("cpp") == "```cpp\n" and ri.program_prefix("csharp") == "```csharp\n"
    # a prefixed first statement parses like any other, and its name check passes
    reply = (
        ri.statement_prefix(SNIPPET) + " returns the averages of every window of values, raising ValueError "
        "for a window below one.\n\nFunction 2: some chatter the model added"
    )
    statement = ri.first_paragraph(parse_numbered_statements(reply, 1)[1])
    assert statement.endswith("window below one.") and ri.statement_reason(statement, SNIPPET, FILTERS) is None
    assert ri.first_paragraph("  One.\n  \nTwo.") == "One." and ri.first_paragraph("One\nline two.") == "One\nline two."
