import ast

import pytest

from data_generation.common.benchmarks.base import Problem
from data_generation.common.benchmarks.styles import STYLES
from main.sampling.extract import (
    extract_completion,
    python_blocks,
    truncate_at_stop,
)

HE_PROMPT = (
    'from typing import List\n\n\ndef is_palindrome(s: str) -> bool:\n    """ helper """\n'
    '    return s == s[::-1]\n\n\ndef make_palindrome(string: str) -> str:\n    """ Make one.\n    >>> '
    "make_palindrome('cat')\n    'catac'\n    \"\"\"\n"
)
HE = Problem(
    "HumanEval/10",
    HE_PROMPT,
    "def check(candidate):\n    assert candidate('cat') == 'catac'\ncheck(make_palindrome)\n",
    "make_palindrome",
    "    return string\n",
)


def extract(raw, style, problem, **kwargs):
    """Extraction under the style's own stop rule (what main.generate runs when no --stop is given)."""
    return extract_completion(raw, style, problem, stop=style.stop, after_fence=style.stop_after_fence, **kwargs)


MBPP = Problem(
    2,
    "Write a function to add two numbers.",
    "assert add(1, 2) == 3\n",
    "add",
    "def add(a, b):\n    return a + b",
    {"test_list": ["assert add(1, 2) == 3"]},
)


@pytest.mark.parametrize(
    "text, stops, fence, expected, reason",
    [
        ("    return x\n\ndef other():\n    pass", ("\ndef", "\nclass"), False, "    return x\n", "\ndef"),
        ("    return x\n#comment\nprint(1)", ("\nprint", "\n#"), False, "    return x", "\n#"),  # earliest wins
        ("    return x", ("\ndef",), False, "    return x", None),
        (
            "Sure:\n```python\ndef f():\n    return 1\n```\nExplanation ```x```",
            (),
            True,
            "Sure:\n```python\ndef f():\n    return 1\n```",
            "```",
        ),
        (
            "```python\ndef f(): pass\n### Instruction: more",
            ("\n### Instruction",),
            True,
            "```python\ndef f(): pass",
            "\n### Instruction",
        ),
        ("def f():\n    pass\n[DONE]\nYou are", ("[DONE]",), False, "def f():\n    pass\n", "[DONE]"),
        ("```python\nx = 1\n```", ("\ndef",), True, "```python\nx = 1\n```", "```"),  # the fence ends the text
    ],
)
def test_truncate_at_stop(text, stops, fence, expected, reason):
    assert truncate_at_stop(text, stops, after_fence=fence) == (expected, reason)


@pytest.mark.parametrize(
    "text, blocks",
    [
        ("```python\na = 1\n```\ntext\n```js\nlet b\n```\n```\nc = 3\n```", ["a = 1", "c = 3"]),
        ("```Python\n    def f():\n        pass\n```", ["def f():\n    pass"]),  # indented in a list: dedented
        ("```python\ndef f():\n    return 1", ["def f():\n    return 1"]),  # cut by max tokens: kept
        ("plain text", []),
        ("def f():\n    return 1\n```\n\nThis function returns `1`.", ["def f():\n    return 1"]),  # no opening fence
        ("Here it is:\n```\ndef f():\n    return 1", ["def f():\n    return 1"]),  # after prose a bare fence opens
        ("~~~python\nx = 1\n~~~", ["x = 1"]),  # tilde fences
        ("```python title=a.py\nx = 1\n```", ["x = 1"]),  # the language is the info string's first word
        ("````python\nx = 1\n```\ny = 2\n````", ["x = 1\n```\ny = 2"]),  # a shorter fence does not close
        ("```python\nx = 1\n```python\ny = 2\n```", ["x = 1\n```python\ny = 2"]),  # nor one with a language
    ],
)
def test_python_blocks(text, blocks):
    assert python_blocks(text) == blocks


def _runs(program: str, tests: str) -> bool:
    namespace: dict = {}
    try:
        exec(compile(program + "\n" + tests, "<sample>", "exec"), namespace)  # noqa: S102 - our own strings
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize(
    "raw",
    [
        # fenced answer with explanation and a demo call
        "Here is the function:\n```python\ndef make_palindrome(string: str) -> str:\n    for i in range(len(string)):\n"
        "        if is_palindrome(string[i:]):\n            return string + string[:i][::-1]\n    return string\n\n"
        "print(make_palindrome('cat'))\n```\nIt works by scanning suffixes.",
        # no fences, the body only
        "    for i in range(len(string)):\n        if is_palindrome(string[i:]):\n"
        "            return string + string[:i][::-1]\n    return string\n",
    ],
)
def test_humaneval_alpaca_completion_is_a_program_that_passes(raw):
    completion = extract(raw, STYLES["humaneval-alpaca"], HE).completion
    ast.parse(completion)
    assert _runs(completion, HE.tests)


def test_humaneval_completion_style_continues_the_prompt():
    raw = "    return string + string[::-1]\n\ndef unrelated():\n    pass\n"
    completion = extract(raw, STYLES["humaneval-completion"], HE).completion
    assert completion == "    return string + string[::-1]\n"
    ast.parse(HE.prompt + completion)


@pytest.mark.parametrize(
    "style, raw",
    [
        ("mbpp-alpaca", "```python\ndef add(a, b):\n    return a + b\n\nassert add(1, 2) == 4\n```\nDone."),
        ("mbpp-alpaca", "def add(a, b):\n    return a + b\n### Instruction:\nnext"),
        ("mbpp-3shot", "def add(a, b):\r\n    return a + b\n[DONE]\nYou are an expert"),
    ],
)
def test_mbpp_completion_is_the_program_without_the_models_own_asserts(style, raw):
    completion = extract(raw, STYLES[style], MBPP).completion
    assert "assert" not in completion and _runs(completion, MBPP.tests)


def test_no_stop_reaches_extraction_too():
    """--no-stop: the generation ran without stops, so extraction must not cut at the style's stops."""
    raw = "\n#  a comment first\n    return string\n"
    style = STYLES["humaneval-completion"]
    assert extract(raw, style, HE).completion == ""  # Codex's "\n#" fires at offset 0
    free = extract_completion(raw, style, HE, stop=(), after_fence=False)
    assert free.completion == raw and free.stopped_by is None and free.empty_cause is None


@pytest.mark.parametrize(
    "style, raw, finish, cause",
    [
        ("humaneval-completion", "\ndef helper():\n    pass", "stop", "stop at offset 0"),
        ("humaneval-completion", "", "eos", "EOS at once"),
        ("humaneval-completion", "   \n", "length", "empty generation"),
        ("humaneval-chat", "```python\n```\nThat is all.", "stop", "empty code block"),
        ("mbpp-chat", "", "eos", "EOS at once"),
        ("humaneval-completion", "", "stop", "stop at offset 0"),  # vLLM / an OpenAI server strip the stop string
        ("humaneval-completion", "    return string\n", "eos", None),
        ("mbpp-chat", "```python\ndef add(a, b):\n    return a + b\n```", "stop", None),
    ],
)
def test_empty_completions_say_why(style, raw, finish, cause):
    problem = MBPP if style.startswith("mbpp") else HE
    assert extract(raw, STYLES[style], problem, finish_reason=finish).empty_cause == cause
