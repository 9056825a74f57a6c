"""The behaviour check: a record's function run against a benchmark task's tests, in the sandbox."""

from __future__ import annotations

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import DataChoice
from data_generation.dataset import behaviour
from data_generation.dataset.literals import literals, strong


def _task(name: str = "HumanEval/0") -> behaviour.TaskCheck:
    bench = get_benchmark("humaneval")
    problem = next(p for p in bench.load(DataChoice()) if bench.task_name(p) == name)
    check = behaviour.task_check("humaneval", name, problem, bench.reference_program(problem))
    assert check is not None
    return check


RENAMED = """
def any_close(values, limit):
    return any(abs(a - b) < limit for i, a in enumerate(values) for b in values[i + 1:])
"""


def test_signatures_and_fitting() -> None:
    sigs = behaviour.functions("def f(a, b=1, *rest): pass\nasync def g(): pass\nclass C: pass\n")
    assert sigs == [behaviour.Signature("f", 1, 2, True)]
    assert behaviour.functions("def broken(:") == []
    task = _task()
    assert task.signature.required == 2
    assert behaviour.fitting("def one(x): pass\n", [task]) == []
    assert [names for _, names in behaviour.fitting(RENAMED, [task])] == [["any_close"]]
    assert behaviour.python_code("Here:\n```python\n" + RENAMED + "```\n") is not None
    assert behaviour.python_code("print('no function')") is None


def test_a_renamed_solution_passes_and_wrong_or_hostile_ones_do_not() -> None:
    task, other = _task(), _task("HumanEval/2")
    forged = "import os\ndef close(values, limit):\n    os.write(1, b'[[0, \"close\"]]')\n    return 0\n"
    jobs = [
        (0, RENAMED, [other, task]),  # passes the second of its candidates
        (1, "def wrong(values, limit):\n    return True\n", [task]),
        (2, "def spin(values, limit):\n    while True:\n        pass\n", [task]),
        (3, forged, [task]),
        (4, "import random\ndef lucky(values, limit):\n    return random.random() < 0.5\n", [task]),
    ]
    passes = list(behaviour.run_checks(jobs, workers=2))
    assert [(p.record, p.task.task_id, p.function) for p in passes] == [(0, "HumanEval/0", "any_close")]


def test_literals_keep_examples_and_skip_everyday_values() -> None:
    text = "same_chars('eabcdzzzz', 'dddzzzzzzzddeddabc') for [1.0, 2.0, 3.9, 4.0, 5.0, 2.2] and 653"
    assert literals(text) == {"s:eabcdzzzz", "s:dddzzzzzzzddeddabc", "q:1,2,3.9,4,5,2.2", "n:653"}
    everyday = "[1, 2, 3, 4] [4, 3, 2, 1] (0, 0, 0, 0) [1, 3, 5, 7, 9] [2, 3, 5, 7, 11, 13] [2, 4, 8, 16, 32]"
    everyday += " 'abc' 'seven'"
    assert literals(everyday) == set()
    assert literals("'010' and '110'") == {"s:010", "s:110"}
    assert strong({"q:11,23,58,31"}) and strong({"s:010", "s:110"})
    assert not strong({"s:geeksforgeeks"}) and not strong({"q:3,1,2"})
