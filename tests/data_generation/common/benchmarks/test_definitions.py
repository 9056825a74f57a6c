"""The definitions kept from a model's answer, and HumanEval's program around them."""

import pytest

from data_generation.common.benchmarks import definitions
from data_generation.common.benchmarks.definitions import keep_definitions
from data_generation.common.benchmarks.humaneval import humaneval_program

# HumanEval/10's shape: an import and a helper the entry point uses
HE_PROMPT = (
    'from typing import List\n\n\ndef is_palindrome(s: str) -> bool:\n    """ helper """\n'
    '    return s == s[::-1]\n\n\ndef make_palindrome(string: str) -> str:\n    """ Make one.\n    """\n'
)


@pytest.mark.parametrize(
    "code, kept",
    [
        # helpers, imports and constants stay; demos, prints, asserts and __main__ go
        (
            "import math\nR = 3\n\ndef helper(x):\n    return x * R\n\ndef f(x):\n    return helper(x)\n\n"
            "print(f(2))\nassert f(1) == 3\nresult = f(5)\nif __name__ == '__main__':\n    f(1)\n",
            "import math\n\nR = 3\n\ndef helper(x):\n    return x * R\n\ndef f(x):\n    return helper(x)",
        ),
        ("@cache\ndef f(n):\n    return n\n", "@cache\ndef f(n):\n    return n"),
        (
            "try:\n    import numpy\nexcept ImportError:\n    numpy = None\nfor i in range(3):\n    pass\n",
            "try:\n    import numpy\nexcept ImportError:\n    numpy = None",
        ),
        # prose between two functions: tree-sitter still finds both
        (
            "Here you go\ndef a(x):\n    return x\nThis one is better\ndef b(y):\n    return y + 1\n",
            "def a(x):\n    return x\n\ndef b(y):\n    return y + 1",
        ),
        # the token budget ran out inside the last function: the intact ones stay
        ("import os\ndef a(x):\n    return x\ndef b(y):\n    return y +", "import os\n\ndef a(x):\n    return x"),
        ("just words, no code", ""),
    ],
)
def test_keep_definitions(code, kept):
    assert keep_definitions(code) == kept


def test_keep_definitions_without_tree_sitter_uses_the_longest_parsable_prefix(monkeypatch):
    monkeypatch.setattr(definitions, "_tree_sitter_statements", lambda code: [])
    code = "Sure, here it is:\nimport os\ndef a(x):\n    return x\nprint(a(1)\n"
    assert keep_definitions(code) == "import os\n\ndef a(x):\n    return x"


def test_humaneval_program_adds_the_prompt_imports_and_helpers_it_does_not_redefine():
    program = humaneval_program(
        "def make_palindrome(string: str) -> str:\n    return string", HE_PROMPT, "make_palindrome"
    )
    assert program.startswith("from typing import List\n\ndef is_palindrome(")
    assert program.count("def make_palindrome") == 1 and program.endswith("return string\n")
    redefined = humaneval_program(
        "def is_palindrome(s):\n    return True\n\ndef make_palindrome(string):\n    return string",
        HE_PROMPT,
        "make_palindrome",
    )
    assert redefined.count("def is_palindrome") == 1 and "return True" in redefined
    assert humaneval_program("def other():\n    pass", HE_PROMPT, "make_palindrome") is None


def test_demo_assignments_that_shadow_builtins_are_dropped():
    code = 'def shout(s):\n    return str(s).upper()\n\nstr = "hello"\nlist: int = 3\nLIMIT = 10\n'
    kept = keep_definitions(code)
    assert "LIMIT = 10" in kept and 'str = "hello"' not in kept and "list: int" not in kept
    namespace: dict = {}
    exec(compile(kept + "\nassert shout(5) == '5'\n", "<sample>", "exec"), namespace)  # noqa: S102
