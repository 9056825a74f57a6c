"""HumanEval+ and MBPP+ (EvalPlus, Liu et al. 2023): the same problems with many more test inputs.

A release row holds `task_id`, `prompt`, `entry_point`, `canonical_solution`, `base_input` (the original
tests' inputs), `plus_input` (the added ones) and `atol`; expected outputs are not in the file, they are
the reference solution's outputs (computed once per release, in the sandbox: main/evaluation/oracle.py,
which fills each problem's checking programs). A sample passes the base tests when it matches the
reference on every base input, and HumanEval+ / MBPP+ when it also matches on every plus input, each
input within its own time limit; the comparison rules are EvalPlus's (evalplus_check.py).

Data: a local release file (`HumanEvalPlus.jsonl[.gz]`, `MbppPlus.jsonl[.gz]`), a hub id or folder with
the same columns, or, with neither, EvalPlus's release file downloaded once into data/cache/evalplus
(where the network allows). HumanEval+ task ids are HumanEval's, so HumanEval samples evaluate as they
are; MBPP+ ids (`Mbpp/2`) name MBPP tasks, and samples with MBPP's integer ids are matched to them.
"""

from __future__ import annotations

import gzip
import json
import logging
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from data_generation.common.benchmarks.base import DataChoice, Problem, PromptStyle
from data_generation.common.benchmarks.evalplus_check import checking_program, mbpp_plus_inputs
from data_generation.common.benchmarks.humaneval import HumanEvalBenchmark
from data_generation.common.benchmarks.mbpp import MBPPBenchmark
from data_generation.common.io import DataError, iter_input_rows, write_text_atomic
from data_generation.common.paths import DATA_DIR
from data_generation.common.provenance import file_sha256

log = logging.getLogger(__name__)
CACHE = DATA_DIR / "cache" / "evalplus"
RELEASE_URL = "https://github.com/evalplus/{lower}_release/releases/download/{version}/{name}.jsonl.gz"
COLUMNS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol")


def _release_file(name: str, version: str, flag: str) -> Path:
    """EvalPlus's own release file, downloaded once into the cache; offline, a clear error."""
    path = CACHE / f"{name}-{version}.jsonl"
    if path.exists():
        return path
    url = RELEASE_URL.format(lower=name.lower(), version=version, name=name)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (a fixed https URL)
            text = gzip.decompress(response.read()).decode("utf-8")
    except (OSError, ValueError) as exc:
        raise DataError(
            url,
            None,
            f"could not download EvalPlus's {name} release ({exc}); download it where the network allows "
            f"and pass it with {flag} (the .jsonl.gz as it is, or unpacked)",
        ) from None
    write_text_atomic(path, text)
    return path


def _file_rows(path: Path) -> Iterator[tuple[int, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(path, line_no, f"invalid JSON: {exc.msg}") from None


def read_release(source: str) -> list[dict[str, Any]]:
    """The rows of a release file, hub id or folder, each checked for EvalPlus's columns."""
    path = Path(source)
    rows = _file_rows(path) if path.is_file() else iter_input_rows(source, split="test")
    out = []
    for where, row in rows:
        missing = [c for c in COLUMNS if not isinstance(row, dict) or c not in row]
        if missing:
            line = where if isinstance(where, int) else None
            raise DataError(source, line, f"not an EvalPlus release row: missing {', '.join(missing)}")
        out.append(row)
    if not out:
        raise DataError(source, None, "no problems")
    return out


def _problem(row: dict[str, Any], task_id: str | int, base: list, plus: list, prompt: str | None = None) -> Problem:
    meta = {
        "base_input": base,
        "plus_input": plus,
        "atol": float(row["atol"] or 0),
        "release_id": row["task_id"],
        "release_prompt": row["prompt"],  # the reference runs as release prompt + canonical solution
    }
    return Problem(
        task_id, row["prompt"] if prompt is None else prompt, "", row["entry_point"], row["canonical_solution"], meta
    )


def _styles(base: Any, name: str) -> tuple[PromptStyle, ...]:
    """The base benchmark's prompt styles under this benchmark's name: the prompts are the same
    (HumanEval+'s are HumanEval's; MBPP+'s show its one example assert through MBPP's layout)."""
    return tuple(replace(s, name=s.name.replace(base.name, name, 1), benchmark=name) for s in base.styles)


class _PlusMixin:
    """What HumanEval+ and MBPP+ share: the release, its version, the checking programs."""

    release: tuple[str, str] = ("", "")  # (EvalPlus's name, default version)
    dataset: str = ""  # EvalPlus's name for the comparison rules ("humaneval" / "mbpp")
    plus = True

    def source(self, data: DataChoice) -> str:
        return data.source or str(_release_file(*self.release, self.path_flag))  # type: ignore[attr-defined]

    def describe(self, data: DataChoice) -> dict[str, Any]:
        source = self.source(data)
        is_file = Path(source).is_file()
        return {
            "name": self.name,  # type: ignore[attr-defined]
            "path": source,
            "split": "test",
            "release": self.release[1] if data.source is None else "as given",
            "sha256": file_sha256(source) if is_file else None,
        }

    def versions(self, data: DataChoice) -> dict[str, str]:
        source = self.source(data)
        return {f"{self.name}_sha256": file_sha256(source) if Path(source).is_file() else f"hub:{source}"}  # type: ignore[attr-defined]

    def recorded(self, dataset: dict[str, Any]) -> DataChoice:
        # Samples generated for HumanEval record HumanEval's file: not a release of this benchmark.
        return DataChoice(dataset.get("path")) if dataset.get("name") == self.name else DataChoice()

    def check(self, problem: Problem, completion: str, full_program: bool, part: str) -> str:
        """The program that runs the sample on the `part` ("base" or "plus") inputs, once the oracle has
        filled `problem.meta["oracle"]` (expected outputs and time limits)."""
        oracle = problem.meta.get("oracle")
        if not oracle:
            raise RuntimeError(f"{problem.task_id}: expected outputs not computed (main/evaluation/oracle.py)")
        code = self.solution_code(problem, completion, full_program)
        return checking_program(code, problem.entry_point or "", self.dataset, problem.meta["atol"], oracle[part])

    def solution_code(self, problem: Problem, completion: str, full_program: bool) -> str:
        return completion if full_program else problem.prompt + completion


class HumanEvalPlusBenchmark(_PlusMixin, HumanEvalBenchmark):
    name = "humaneval_plus"
    title = "HumanEval+"
    release = ("HumanEvalPlus", "v0.1.10")
    dataset = "humaneval"
    styles = _styles(HumanEvalBenchmark, "humaneval_plus")
    raw_style = "humaneval_plus-completion"
    path_help = "HumanEvalPlus.jsonl(.gz), a hub id or folder (default: EvalPlus's v0.1.10 release, downloaded)"
    decontaminate_by_default = False

    def load(self, data: DataChoice) -> list[Problem]:
        self.split(data)
        return [_problem(r, r["task_id"], r["base_input"], r["plus_input"]) for r in read_release(self.source(data))]


class MBPPPlusBenchmark(_PlusMixin, MBPPBenchmark):
    name = "mbpp_plus"
    title = "MBPP+"
    release = ("MbppPlus", "v0.2.0")
    dataset = "mbpp"
    styles = _styles(MBPPBenchmark, "mbpp_plus")
    raw_style = "mbpp_plus-3shot"
    splits = ("test",)
    subsets = ("full",)
    continues_prompt = False
    path_help = "MbppPlus.jsonl(.gz), a hub id or folder (default: EvalPlus's v0.2.0 release, downloaded)"
    decontaminate_by_default = False

    def load(self, data: DataChoice) -> list[Problem]:
        self.split(data)
        problems = []
        for row in read_release(self.source(data)):
            number = int(str(row["task_id"]).rsplit("/", 1)[-1])
            base, plus = (mbpp_plus_inputs(number, row[k]) for k in ("base_input", "plus_input"))
            problem = _problem(row, number, base, plus, prompt=_mbpp_text(row["prompt"]))
            problem.meta["test_list"] = [_mbpp_example(row["prompt"])]
            problems.append(problem)
        return problems

    def shots(self, data: DataChoice, style: Any) -> list[Problem]:
        if style.needs_shots:
            raise ValueError(f"{style.name} shows MBPP's prompt-split tasks, which MBPP+ does not have")
        return []

    def solution_code(self, problem: Problem, completion: str, full_program: bool) -> str:
        return completion

    def task_name(self, problem: Problem) -> str:
        return f"Mbpp/{problem.task_id}"

    def sample_task_id(self, task_id: Any) -> Any:
        """EvalPlus's "Mbpp/2", MBPP's 2 and "MBPP/2" all name MBPP+ task 2."""
        text = str(task_id).rsplit("/", 1)[-1]
        return int(text) if text.isdigit() else task_id


def _mbpp_text(prompt: str) -> str:
    """The task sentence of an MBPP+ prompt (a docstring: the sentence, then one assert)."""
    lines = [line.strip() for line in prompt.strip().strip('"').strip().splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("assert"))


def _mbpp_example(prompt: str) -> str:
    return next((line.strip() for line in prompt.splitlines() if line.strip().startswith("assert")), "")


HUMANEVAL_PLUS = HumanEvalPlusBenchmark()
MBPP_PLUS = MBPPPlusBenchmark()
