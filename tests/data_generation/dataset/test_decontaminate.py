import re

import numpy as np
import pytest

from data_generation.common.benchmarks.humaneval import humaneval_statement, load_humaneval
from data_generation.common.benchmarks.mbpp import load_mbpp
from data_generation.dataset.decontaminate import Decontaminator, benchmark_versions, load_benchmark_docs
from data_generation.dataset.normalise import Vocab


@pytest.fixture(scope="module")
def checker_and_vocab(mbpp_full):
    vocab = Vocab()
    return Decontaminator(load_benchmark_docs(("humaneval", "mbpp"), {"mbpp": mbpp_full}), vocab), vocab


def _find(checker_and_vocab, texts):
    checker, vocab = checker_and_vocab
    enc = [vocab.encode(t) for t in texts]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in enc])]).astype(np.int64)
    return {h.index: h for h in checker.find(np.concatenate(enc), offsets, texts)}


def test_humaneval_statement_stops_at_examples():
    prompt = load_humaneval()[0].prompt
    assert humaneval_statement(prompt) == (
        "Check if in given list of numbers, are any two numbers closer to each other than given threshold."
    )


def test_every_benchmark_problem_is_caught_with_its_task_id(checker_and_vocab, mbpp_full):
    he, mbpp = load_humaneval(), load_mbpp(mbpp_full)
    texts = [p.prompt + p.reference for p in he] + [f"{p.prompt}\n{p.reference}" for p in mbpp]
    hits = _find(checker_and_vocab, texts)
    expected = [p.task_id for p in he] + [f"MBPP/{p.task_id}" for p in mbpp]
    assert len(texts) == 664 and len(hits) >= 0.98 * len(texts)
    # What escapes is too small to be evidence: a statement under 10 words and a few lines of code
    # ("Add two numbers x and y", `return x + y`).
    checker = checker_and_vocab[0]
    for i in set(range(len(texts))) - set(hits):
        assert len(checker.docs[i].statement.split()) < 10 and len(checker.docs[i].code.split()) < 40, expected[i]
    # A problem may also match a near-identical twin in the benchmarks, but nearly always itself.
    same = sum(hits[i].task_id == expected[i] for i in hits)
    assert same >= 0.97 * len(hits)


def test_reworded_instruction_with_the_statement_is_caught(checker_and_vocab, mbpp_full):
    p = next(p for p in load_mbpp(mbpp_full) if p.task_id == 11)
    text = f"Please solve this: {p.prompt.upper()}!!  Use any approach.\nanswer"
    hit = _find(checker_and_vocab, [text])[0]
    assert (hit.benchmark, hit.task_id) == ("mbpp", "MBPP/11") and hit.method in ("statement_ngram", "substring")


def test_solution_copy_is_caught_by_code_coverage(checker_and_vocab):
    p = load_humaneval()[10]
    body = re.sub(r'""".*?"""', "", p.prompt, flags=re.S) + p.reference  # no docstring
    hit = _find(checker_and_vocab, ["Implement it.\n" + body])[0]
    assert hit.task_id == "HumanEval/10" and hit.method in ("code_ngram", "statement_ngram")


@pytest.mark.parametrize(
    "text",
    [
        "Sort the list with bubble sort.\nfor i in range(n):\n    for j in range(0, n-i-1):\n"
        "        if arr[j] > arr[j+1]:\n            arr[j], arr[j+1] = arr[j+1], arr[j]",
        "List the digits.\n0, 1, 2, 3, 4, 5, 6, 7, 8, 9, A, B, C, D, E, F",
        "Zeros.\n[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
        "Write a function that checks whether a number is prime.\ndef is_prime(n):\n    for i in range(2, n):\n"
        "        if n % i == 0:\n            return False\n    return True",
    ],
)
def test_generic_code_and_phrasing_are_not_contamination(checker_and_vocab, text):
    assert _find(checker_and_vocab, [text]) == {}


def test_docs_are_the_problems_evaluation_runs_in_registry_order(mbpp_full):
    docs = load_benchmark_docs(("mbpp", "humaneval"), {"mbpp": str(mbpp_full)})
    assert [d.task_id for d in docs] == [p.task_id for p in load_humaneval()] + [
        f"MBPP/{p.task_id}" for p in load_mbpp(mbpp_full)
    ]
    first = load_humaneval()[0]
    assert docs[0].benchmark == "humaneval" and docs[0].statement == humaneval_statement(first.prompt)
    assert '"""' not in docs[0].code and docs[0].code.endswith(first.reference)  # signature + body, no docstring
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark_docs(("mbpp+",))


def test_versions_name_only_the_benchmarks_checked(mbpp_full, tmp_path):
    assert list(benchmark_versions(("humaneval", "mbpp"), {"mbpp": mbpp_full})) == ["humaneval_sha256", "mbpp"]
    assert benchmark_versions(("mbpp",), {"mbpp": "org/mbpp"}) == {"mbpp": "hub:org/mbpp"}
    assert benchmark_versions(("mbpp",), {"mbpp": tmp_path}) == {"mbpp": f"folder:{tmp_path}"}
    assert benchmark_versions(()) == {}
