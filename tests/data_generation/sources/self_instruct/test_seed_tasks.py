"""Properties of the hand-written self-instruct seeds, data/seed_tasks.jsonl.

The seeds are the teacher's in-context examples, so each flaw in them is copied into many machine
tasks. These tests hold the seeds to what the pipeline demands of machine tasks (the instruction
filters, ROUGE-L <= 0.7 between instructions, no HumanEval/MBPP overlap) and check the answers
themselves: Python code compiles and runs against each instance's "test", Python tests pass under
pytest, SQL runs against the schema in the input, and JavaScript and shell code parse.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from data_generation.dataset.decontaminate import Decontaminator, load_benchmark_docs
from data_generation.dataset.normalise import Vocab
from data_generation.sources.filters import instruction_reason
from tests.paths import REPO

SEEDS = REPO / "data" / "seed_tasks.jsonl"
FIELDS = ("id", "name", "instruction", "instances", "is_classification", "language", "category")
LANGUAGES = {
    "python",
    "javascript",
    "typescript",
    "java",
    "c",
    "cpp",
    "go",
    "rust",
    "sql",
    "bash",
    "ruby",
    "php",
    "csharp",
    "regex",
    "git",
}
# Categories whose outputs are code in the task's language (debugging: the fix with a "Bug:" comment);
# explanation, complexity and review (a label) answers are prose.
CODE_CATEGORIES = {
    "generation",
    "editing",
    "optimisation",
    "debugging",
    "test_writing",
    "translation",
    "query",
    "one_liner",
}
CATEGORIES = CODE_CATEGORIES | {"explanation", "complexity", "review"}
# Benchmark classics: seeds teach the teacher what to write, and these would steer it toward HumanEval/MBPP.
CLASSICS = ("prime", "fizzbuzz", "fibonacci", "palindrome", "anagram", "factorial", "leap year")
ROUGE_THRESHOLD = 0.7
RUN_TIMEOUT_S = 60


def _load() -> list[dict]:
    with SEEDS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


TASKS = _load()
PYTHON_CODE = [t for t in TASKS if t["language"] == "python" and t["category"] in CODE_CATEGORIES]


def _ids(tasks: list[dict]) -> list[str]:
    return [t["name"] for t in tasks]


def _code_outputs(*languages: str) -> list[tuple[str, str]]:
    return [
        (t["name"], inst["output"])
        for t in TASKS
        if t["language"] in languages and t["category"] in CODE_CATEGORIES
        for inst in t["instances"]
    ]


# ---------------------------------------------------------------- schema and coverage


def test_schema_ids_and_names():
    assert [t["id"] for t in TASKS] == [f"seed_task_{i}" for i in range(len(TASKS))]
    names = [t["name"] for t in TASKS]
    assert len(set(names)) == len(names), "duplicate names"
    for t in TASKS:
        assert tuple(t) == FIELDS, t["id"]
        assert re.fullmatch(r"[a-z][a-z0-9_]*", t["name"]), t["name"]
        assert isinstance(t["instruction"], str) and t["instruction"] == t["instruction"].strip()
        assert isinstance(t["is_classification"], bool)
        assert t["language"] in LANGUAGES and t["category"] in CATEGORIES, t["name"]
        assert isinstance(t["instances"], list) and t["instances"], t["name"]
        for inst in t["instances"]:
            assert set(inst) in ({"input", "output"}, {"input", "output", "test"}), t["name"]
            assert all(isinstance(v, str) for v in inst.values()), t["name"]
            assert inst["output"].strip() and inst["output"] == inst["output"].strip(), t["name"]
            # Answers are plain code or text, as the dataset stores them: no markdown fences.
            assert "```" not in inst["output"] + inst["input"], t["name"]
            # The self-instruct prompt separates examples with "###" and numbered "N. Output:" headers.
            assert not re.search(
                r"^#{3}|^\d+\. (Instruction|Input|Output):", inst["input"] + "\n" + inst["output"], re.M
            ), t["name"]
            assert "test" not in inst or t["language"] == "python", f"{t['name']}: tests are Python only"
        if t["is_classification"]:  # the output is a label from a small set, as in Alpaca's seeds
            assert all(len(inst["output"].split()) <= 4 for inst in t["instances"]), t["name"]


def test_coverage_of_languages_categories_and_inputs():
    assert len(TASKS) >= 40
    per_language = {lang: sum(t["language"] == lang for t in TASKS) for lang in LANGUAGES}
    assert sum(n >= 3 for n in per_language.values()) >= 8, per_language
    assert len({t["category"] for t in TASKS}) >= 6
    empty = sum(t["instances"][0]["input"] == "" for t in TASKS)
    assert 0.2 * len(TASKS) <= empty <= 0.8 * len(TASKS), f"{empty} of {len(TASKS)} tasks have no input"


def test_no_benchmark_classics():
    for t in TASKS:
        text = f"{t['name']} {t['instruction']}".lower()
        assert not [w for w in CLASSICS if w in text], t["name"]


@pytest.mark.parametrize("task", TASKS, ids=_ids(TASKS))
def test_instruction_passes_the_self_instruct_filters(task):
    first = task["instances"][0]
    assert instruction_reason(task["instruction"], first["input"], first["output"]) is None


def test_debugging_answers_state_the_cause_in_one_comment_line():
    for t in TASKS:
        if t["category"] == "debugging":
            for inst in t["instances"]:
                causes = re.findall(r"^(?:#|//|--) Bug: \S.*$", inst["output"], re.M)
                assert len(causes) == 1, t["name"]


# ---------------------------------------------------------------- instructions are mutually dissimilar


def _tokens(text: str) -> list[str]:
    # rouge_score's tokenizer without stemming: lower-case, every non-[a-z0-9] run separates tokens.
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def _rouge_l(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    lcs = _lcs(ta, tb)
    return 0.0 if lcs == 0 else 2 * lcs / (len(ta) + len(tb))  # F1 of precision lcs/|a|, recall lcs/|b|


def test_lcs_f_measure_matches_hand_computed_values():
    assert _rouge_l("Sort the list", "sort THE list!") == 1.0
    assert _rouge_l("a b c d", "a x c y") == pytest.approx(0.5)  # LCS "a c": 2 * 2 / 8
    assert _rouge_l("one two", "three four") == 0.0


def test_no_two_instructions_are_near_duplicates():
    scores = [(_rouge_l(a["instruction"], b["instruction"]), a["name"], b["name"]) for a, b in combinations(TASKS, 2)]
    worst = max(scores)
    assert worst[0] <= ROUGE_THRESHOLD, worst


# ---------------------------------------------------------------- answers compile and run


@pytest.mark.parametrize("task", PYTHON_CODE, ids=_ids(PYTHON_CODE))
def test_python_answers_compile(task):
    for inst in task["instances"]:
        compile(inst["output"], f"{task['name']}:output", "exec")
        if "test" in inst:
            compile(inst["test"], f"{task['name']}:test", "exec")


def test_python_generation_tasks_are_executable():
    for t in PYTHON_CODE:
        if t["category"] == "generation":
            assert all(inst.get("test", "").strip() for inst in t["instances"]), t["name"]


RUNNABLE = [t for t in PYTHON_CODE if t["category"] == "test_writing" or any("test" in i for i in t["instances"])]


@pytest.mark.parametrize("task", RUNNABLE, ids=_ids(RUNNABLE))
def test_python_answers_pass_their_tests(task, tmp_path):
    for i, inst in enumerate(task["instances"]):
        if task["category"] == "test_writing":
            # The answer is a test module for the code in the input: it must pass under pytest.
            path = tmp_path / f"test_seed_{i}.py"
            path.write_text(f"{inst['input']}\n\n\n{inst['output']}\n", encoding="utf-8")
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name]
        else:
            path = tmp_path / f"seed_{i}.py"
            path.write_text(f"{inst['output']}\n\n\n{inst['test']}\n", encoding="utf-8")
            cmd = [sys.executable, path.name]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert done.returncode == 0, f"{task['name']}[{i}]:\n{done.stdout}\n{done.stderr}"


def _check_syntax(tool: list[str], suffix: str, outputs: list[tuple[str, str]], tmp_path: Path) -> None:
    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} not installed")
    assert outputs
    for i, (name, code) in enumerate(outputs):
        path = tmp_path / f"{name}_{i}{suffix}"
        path.write_text(code + "\n", encoding="utf-8")
        done = subprocess.run([*tool, str(path)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert done.returncode == 0, f"{name}: {done.stderr}"


def test_javascript_answers_parse_with_node(tmp_path):
    _check_syntax(["node", "--check"], ".js", _code_outputs("javascript"), tmp_path)


def test_shell_and_git_answers_parse_with_bash(tmp_path):
    _check_syntax(["bash", "-n"], ".sh", _code_outputs("bash", "git"), tmp_path)


def test_sql_answers_run_against_the_schema_in_the_input():
    checked = 0
    for t in TASKS:
        for inst in t["instances"]:
            if t["language"] == "sql" and "CREATE TABLE" in inst["input"]:
                db = sqlite3.connect(":memory:")
                db.executescript(inst["input"])  # the schema (and, for debugging tasks, the broken query)
                db.executescript(inst["output"])
                db.close()
                checked += 1
    assert checked == sum(len(t["instances"]) for t in TASKS if t["language"] == "sql")


def test_regex_answers_compile():
    outputs = _code_outputs("regex")
    assert outputs
    for name, pattern in outputs:
        re.compile(pattern)


# ---------------------------------------------------------------- no HumanEval / MBPP contamination


def test_no_seed_overlaps_humaneval_or_mbpp(mbpp_full):
    """The merge step's check, with its defaults, over every instance (instruction, input, output)."""
    vocab = Vocab()
    checker = Decontaminator(load_benchmark_docs(("humaneval", "mbpp"), {"mbpp": mbpp_full}), vocab)
    owners, texts = [], []
    for t in TASKS:
        for inst in t["instances"]:
            owners.append(t["name"])
            texts.append(f"{t['instruction']}\n{inst['input']}\n{inst['output']}")
    encoded = [vocab.encode(text) for text in texts]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    hits = checker.find(np.concatenate(encoded), offsets, texts)
    assert not hits, [(owners[h.index], h.task_id, h.method, h.evidence) for h in hits]
