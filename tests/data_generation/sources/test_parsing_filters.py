import pytest

from data_generation.sources.filters import FilterConfig, instruction_reason
from data_generation.sources.parsing import (
    parse_numbered_statements,
    parse_numbered_tasks,
)

REPLY = """Reverse the words in a sentence.
21. Input:
<noinput>
21. Output:
def reverse_words(s):
    return " ".join(reversed(s.split()))

###
22. Instruction: Fix the off-by-one error in this loop.
22. Input:
for i in range(1, len(xs)):
    print(xs[i])
22. Output:
for i in range(len(xs)):
    print(xs[i])
###
**23. Instruction:** Explain what `git rebase` does.
**23. Output:** It replays commits on top of another base.
###
24. Instruction: Write SQL to count users.
24. Input: N/A
24. Output:
"""


def test_table_of_blocks():
    tasks, rejects = parse_numbered_tasks(REPLY, prefix="21. Instruction: ")
    assert [(t.index, t.instruction, t.input) for t in tasks] == [
        (21, "Reverse the words in a sentence.", ""),
        (22, "Fix the off-by-one error in this loop.", "for i in range(1, len(xs)):\n    print(xs[i])"),
        (23, "Explain what `git rebase` does.", ""),
    ]
    assert tasks[0].output.startswith("def reverse_words(s):\n    return")
    assert tasks[2].output == "It replays commits on top of another base."
    assert [(r.index, r.reason) for r in rejects] == [(24, "missing_output")]


def test_truncated_reply_drops_the_last_block():
    text = (
        "1. Instruction: Sort a list.\n1. Output:\nsorted(xs)\n###\n"
        "2. Instruction: Add.\n2. Output:\ndef add(a, b):\n    ret"
    )
    tasks, rejects = parse_numbered_tasks(text, finish_reason="length")
    assert [t.index for t in tasks] == [1] and [(r.index, r.reason) for r in rejects] == [(2, "truncated")]
    tasks, _ = parse_numbered_tasks(text, finish_reason="stop")
    assert [t.index for t in tasks] == [1, 2]


def test_missing_separators_and_repeated_numbers():
    text = (
        "9. Instruction: A task nine.\n9. Output: out9\n10. Instruction: A task ten.\n10. Input: x\n10. Output: o10\n"
        "10. Instruction: Same number again.\n10. Output: o10b\n11. Output: orphan output"
    )
    tasks, rejects = parse_numbered_tasks(text)
    assert [(t.index, t.instruction, t.input, t.output) for t in tasks] == [
        (9, "A task nine.", "", "out9"),
        (10, "A task ten.", "x", "o10"),
        (10, "Same number again.", "", "o10b"),
    ]
    assert [(r.index, r.reason) for r in rejects] == [(11, "missing_instruction")]


def test_garbage_gives_nothing():
    assert parse_numbered_tasks("Sorry, I cannot help with that.") == ([], [])


def test_numbered_statements():
    text = "1. Count vowels in a string.\n2. Merge two sorted lists\ninto one sorted list.\n12. Extra\n3."
    assert parse_numbered_statements(text, expected=3) == {
        1: "Count vowels in a string.",
        2: "Merge two sorted lists\ninto one sorted list.",
    }
    assert parse_numbered_statements(text, expected=12)[12] == "Extra"
    assert parse_numbered_statements("1. a\n2. b is cut", expected=2, finish_reason="length") == {1: "a"}


@pytest.mark.parametrize(
    "instruction, expected",
    [
        ("Sort it", "too_short"),
        ("Sort the list", None),
        (" ".join(["word"] * 151), "too_long"),
        ("- Sort the list now", "starts_with_punctuation"),
        ("Écris une fonction en Python", "non_ascii_start"),
        ("Write a program that prints primes", "boilerplate"),
        ("Draw a picture of a cat", "blacklisted_word"),
        ("Print a right triangle of asterisks with n rows", None),
        ("Draw me a cat", "blacklisted_word"),
        ("Make a flowchart of this algorithm", "blacklisted_word"),
        ("Read a CSV file and plot a histogram with matplotlib", None),
        ("Implement a hash map with open addressing", None),
        ("Find the shortest path in a weighted graph", None),
        ("Resize an image to 64x64 pixels with Pillow", None),
    ],
)
def test_instruction_filters(instruction, expected):
    assert instruction_reason(instruction, "", "output") == expected


def test_filter_config_and_other_fields():
    assert instruction_reason("Sort the list", "x" * 5000, "o") == "input_too_long"
    assert instruction_reason("Sort the list", "", "  ") == "empty_output"
    custom = FilterConfig(blacklist=("pandas",), boilerplate_prefixes=())
    assert instruction_reason("Write a program using pandas", "", "o", custom) == "blacklisted_word"
    assert instruction_reason("Write a program that adds", "", "o", custom) is None
