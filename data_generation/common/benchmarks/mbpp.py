"""MBPP (Austin et al., 2021): crowd-sourced Python tasks, each a sentence and three asserts.

MBPP comes from a local file (`mbpp.jsonl`, `sanitized-mbpp.json`), a `save_to_disk` folder, or a hub
id / local hub clone through `datasets.load_dataset` (which fails offline: pass the local file then).
The program run per sample is the completion, then the task's test_setup_code, then its asserts.

Splits are task-id ranges of the full release, which are also exactly the hub's splits for both the
full and the sanitized subset: prompt 1-10, test 11-510, validation 511-600, train 601-974.
`split="all"` keeps every task: 974 full, 427 sanitized (sanitized + "test" is the hub's 257).

Prompt styles:
- `mbpp-alpaca` / `mbpp-chat`: the task + "Your code should pass these tests:" + its 3 asserts
  (CodeCapybara's, i.e. the seeds', wording) in the Alpaca or the chat format; full program.
- `mbpp-3shot`: the MBPP paper's prompt: tasks 2, 3, 4 (the prompt split) as `[BEGIN]`/`[DONE]`
  examples, then the task; full program; stops at `[DONE]`. For base models.
"""

from __future__ import annotations

import ast
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from data_generation.common.benchmarks.base import ALPACA_STOPS, Benchmark, DataChoice, Problem, PromptStyle
from data_generation.common.io import DataError, is_hf_disk_dir, iter_input_rows, iter_rows
from data_generation.common.provenance import file_sha256

MBPP_HUB_ID = "google-research-datasets/mbpp"
MBPP_SPLITS: dict[str, range] = {
    "test": range(11, 511),
    "prompt": range(1, 11),
    "validation": range(511, 601),
    "train": range(601, 975),
    "all": range(1, 10**9),
}
MBPP_SHOT_IDS = (2, 3, 4)  # the MBPP paper's few-shot examples
MBPP_TASK_INTRO = "You are an expert Python programmer, and here is your task: "
MBPP_TESTS_INTRO = " Your code should pass these tests:\n\n"
SANITIZED = "sanitized"


def load_mbpp(spec: str | os.PathLike = MBPP_HUB_ID, *, split: str = "test", sanitized: bool = False) -> list[Problem]:
    """MBPP problems sorted by task_id (see the module docstring for `split`).

    spec: `mbpp.jsonl` / `sanitized-mbpp.json`, a `save_to_disk` folder, or a hub id (or a local clone of
    the hub repo). A local file's flavour (full or sanitized) must match `sanitized`.
    """
    if split not in MBPP_SPLITS:
        raise ValueError(f"MBPP split must be one of {sorted(MBPP_SPLITS)}, got {split!r}")
    path = Path(spec)
    if path.is_file() or is_hf_disk_dir(path):
        rows = [(where, row) for where, row in iter_rows(path)]
        source = str(path)
    else:
        config, hint = SANITIZED if sanitized else "full", "pass the local mbpp.jsonl or sanitized-mbpp.json"
        rows = list(iter_input_rows(str(spec), split=None, config=config, offline_hint=hint))
        source = f"hub:{spec}"
    problems = []
    for where, row in rows:
        is_sanitized_row = "prompt" in row and "text" not in row
        if is_sanitized_row != sanitized:
            want, got = ("sanitized", "full") if sanitized else ("full", "sanitized")
            raise DataError(
                source,
                where,
                f"asked for the {want} MBPP but this is the {got} release "
                f"({'pass sanitized-mbpp.json' if sanitized else 'pass mbpp.jsonl'})",
            )
        problem = _mbpp_problem(row, where, source)
        if problem.task_id in MBPP_SPLITS[split]:
            problems.append(problem)
    if not problems:
        raise DataError(source, None, f"no MBPP tasks in split {split!r}")
    return sorted(problems, key=lambda p: p.task_id)


def _mbpp_problem(row: dict[str, Any], where: str | int, source: str) -> Problem:
    text = row.get("text", row.get("prompt"))
    task_id, code, asserts = row.get("task_id"), row.get("code"), row.get("test_list")
    if (
        not isinstance(task_id, int)
        or not isinstance(text, str)
        or not isinstance(code, str)
        or not isinstance(asserts, list)
        or not asserts
    ):
        raise DataError(source, where, "not an MBPP row: needs integer task_id, text (or prompt), code and test_list")
    setup = row.get("test_setup_code")
    if setup is None:  # the sanitized release lists imports instead of a setup snippet
        setup = "\n".join(row.get("test_imports") or [])
    tests = "\n".join(part for part in [setup, *asserts] if part) + "\n"
    meta = {
        "test_list": list(asserts),
        "test_setup_code": setup,
        "challenge_test_list": list(row.get("challenge_test_list") or []),
    }
    if "test_imports" in row:
        meta["test_imports"] = list(row.get("test_imports") or [])
    return Problem(
        task_id=task_id,
        prompt=text,
        tests=tests,
        entry_point=_mbpp_entry_point(code, asserts),
        reference=code,
        meta=meta,
    )


def _mbpp_entry_point(code: str, asserts: list[str]) -> str | None:
    """The function the asserts call that the reference defines (MBPP has no entry_point column)."""
    with warnings.catch_warnings():  # MBPP code has invalid escapes ("\\d" in plain strings)
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            defined = {n.name for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            for test in asserts:
                for node in ast.walk(ast.parse(test)):
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
                        return node.func.id
        except SyntaxError:  # the entry point is only a hint
            pass
    return None


def mbpp_task_text(problem: Problem) -> str:
    """The MBPP task with its asserts, in the seeds' (CodeCapybara's) words."""
    tests = "\n".join(problem.meta.get("test_list") or [])
    return f"{MBPP_TASK_INTRO}{problem.prompt.strip()}{MBPP_TESTS_INTRO}{tests}"


def _instruction(problem: Problem, shots: Sequence[Problem]) -> str:
    return mbpp_task_text(problem)


def _three_shot(problem: Problem, shots: Sequence[Problem]) -> str:
    """Austin et al. (2021): each example is task + tests, then its code between [BEGIN] and [DONE]."""
    parts = [f"{mbpp_task_text(shot)}\n[BEGIN]\n{_clean_code(shot.reference)}\n[DONE]\n\n" for shot in shots]
    return "".join(parts) + f"{mbpp_task_text(problem)}\n[BEGIN]\n"


def _clean_code(code: str) -> str:
    # MBPP's references have CRLF line ends and trailing spaces; the model should not copy them.
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").split("\n")).strip("\n")


class MBPPBenchmark(Benchmark):
    name = "mbpp"
    title = "MBPP"
    styles = (
        PromptStyle("mbpp-alpaca", "mbpp", "alpaca", ALPACA_STOPS, True, True, False, _instruction),
        PromptStyle("mbpp-chat", "mbpp", "chat", (), True, True, False, _instruction),
        PromptStyle(
            "mbpp-3shot", "mbpp", None, ("[DONE]", "\n[BEGIN]", MBPP_TASK_INTRO.strip()), False, True, True, _three_shot
        ),
    )
    raw_style = "mbpp-3shot"
    splits = tuple(MBPP_SPLITS)
    subsets = ("full", SANITIZED)
    path_help = f"mbpp.jsonl, sanitized-mbpp.json, a save_to_disk folder or a hub id (default {MBPP_HUB_ID})"

    def load(self, data: DataChoice) -> list[Problem]:
        return load_mbpp(data.source or MBPP_HUB_ID, split=self.split(data), sanitized=self._sanitized(data))

    def _sanitized(self, data: DataChoice) -> bool:
        return self.subset(data) == SANITIZED

    def describe(self, data: DataChoice) -> dict[str, Any]:
        source = data.source or MBPP_HUB_ID
        sanitized = self._sanitized(data)
        return {
            "name": "mbpp-sanitized" if sanitized else self.name,
            "path": source,
            "split": self.split(data),
            "sanitized": sanitized,
            "sha256": file_sha256(source) if Path(source).is_file() else None,
        }

    def recorded(self, dataset: Mapping[str, Any]) -> DataChoice:
        # Runs recorded before "sanitized" was a key said so in the name only.
        sanitized = dataset.get("sanitized", dataset.get("name") == "mbpp-sanitized")
        return DataChoice(dataset.get("path"), dataset.get("split"), SANITIZED if sanitized else None)

    def versions(self, data: DataChoice) -> dict[str, str]:
        source = data.source or MBPP_HUB_ID
        path = Path(source)
        return {"mbpp": file_sha256(source) if path.is_file() else f"{'folder' if path.is_dir() else 'hub'}:{source}"}

    def shots(self, data: DataChoice, style: PromptStyle) -> list[Problem]:
        """Tasks 2, 3 and 4 of the same release (the prompt split), for `mbpp-3shot`."""
        if not style.needs_shots:
            return []
        source = data.source or MBPP_HUB_ID
        pool = {p.task_id: p for p in load_mbpp(source, split="prompt", sanitized=self._sanitized(data))}
        missing = [i for i in MBPP_SHOT_IDS if i not in pool]
        if missing:
            raise ValueError(f"{source} lacks the MBPP prompt tasks {missing} that {style.name} shows")
        return [pool[i] for i in MBPP_SHOT_IDS]

    def task_name(self, problem: Problem) -> str:
        return f"MBPP/{problem.task_id}"


MBPP = MBPPBenchmark()
