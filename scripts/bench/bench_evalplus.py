"""HumanEval+ / MBPP+ evaluation: our sandboxed harness against EvalPlus's own evaluator, same samples.

    python -m scripts.bench.bench_evalplus [--repeat 20] [--n-workers 2] [--output FILE]

The samples are tests/fixtures/evalplus's (34 samples of 10 tasks, in the release schema), each repeated
R times. Both sides start cold and do the whole job: expected outputs from the reference solutions and
per-input time limits, then every sample on its base and its plus inputs.
- EvalPlus (evalplus 0.3.1, as its `evaluate` runs it): `trusted_exec` of each reference in this
  process, then `untrusted_check` for base and plus per sample from a ProcessPoolExecutor of
  `--n-workers` (its own default is half the cores), one fork per check;
- ours: `main.evaluation.harness.evaluate` (oracle in the sandbox, calibrated limits, results.jsonl,
  metrics.json, report and plot), `--n-workers` sandbox slots, with an empty calibration cache; once
  with its default retry of timed-out samples (EvalPlus does not retry) and once without.
Verdicts must agree sample for sample, except HumanEval/32's (EvalPlus 0.3.1 fails every sample of
that task: main/README.md). JSON to --output, a table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import DataChoice
from main.evaluation.harness import EvalConfig, evaluate
from main.evaluation.oracle import TimeoutPolicy

HERE = Path("tests/fixtures/evalplus")
RELEASES = {"humaneval_plus": HERE / "HumanEvalPlus-fixture.jsonl", "mbpp_plus": HERE / "MbppPlus-fixture.jsonl"}


def repeated(name: str, repeat: int, folder: Path) -> Path:
    rows = [json.loads(line) for line in (HERE / f"{name}_samples.jsonl").read_text().splitlines()]
    out = folder / f"{name}.jsonl"
    with out.open("w") as f:
        for r in range(repeat):
            for row in rows:
                f.write(json.dumps({**row, "sample": row["sample"] + r * 100}) + "\n")
    return out


def _check(dataset: str, code: str, problem: dict[str, Any], truth: dict[str, Any]) -> tuple[bool, bool]:
    from evalplus.eval import PASS, untrusted_check

    stats = []
    for part in ("base", "plus"):
        inputs, expected, times = problem[f"{part}_input"], truth[part], truth[f"{part}_time"]
        stat, _ = untrusted_check(dataset, code, inputs, problem["entry_point"], expected, problem["atol"], times, True)
        stats.append(stat == PASS)
    return stats[0], stats[0] and stats[1]


def theirs(name: str, samples: Path, workers: int) -> tuple[list[tuple[bool, bool]], float]:
    from evalplus.data.mbpp import mbpp_deserialize_inputs
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.gen.util import trusted_exec

    dataset = name.split("_")[0]
    started = time.perf_counter()
    problems, truth = {}, {}
    for line in RELEASES[name].read_text().splitlines():
        p = json.loads(line)
        if dataset == "mbpp":
            p["base_input"] = mbpp_deserialize_inputs(p["task_id"], p["base_input"])
            p["plus_input"] = mbpp_deserialize_inputs(p["task_id"], p["plus_input"])
        problems[p["task_id"]] = p
        not_none = p["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS
        code = p["prompt"] + p["canonical_solution"]
        truth[p["task_id"]] = {}
        for part in ("base", "plus"):
            out, t = trusted_exec(
                code, p[f"{part}_input"], p["entry_point"], record_time=True, output_not_none=not_none
            )
            truth[p["task_id"]].update({part: out, f"{part}_time": t})
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = []
        for row in rows:
            p = problems[row["task_id"]]
            code = row["completion"] if row.get("completion_is_full_program") else p["prompt"] + row["completion"]
            futures.append(pool.submit(_check, dataset, code, p, truth[row["task_id"]]))
        verdicts = [f.result() for f in futures]
    return verdicts, time.perf_counter() - started


def ours(name: str, samples: Path, workers: int, folder: Path, retry: bool) -> tuple[list[tuple[bool, bool]], float]:
    os.environ["CODECAPY_CACHE_DIR"] = str(folder / f"cache-{retry}")  # cold, as EvalPlus's side is
    bench = get_benchmark(name)
    data = DataChoice(source=str(RELEASES[name]))
    started = time.perf_counter()
    config = EvalConfig(n_workers=workers, allow_incomplete=True, ks=(1,), timeouts=TimeoutPolicy(retry_timeouts=retry))
    evaluate(
        samples, bench.load(data), folder / f"{name}-{retry}", config, benchmark=name, dataset=bench.describe(data)
    )
    seconds = time.perf_counter() - started
    rows = [json.loads(line) for line in (folder / f"{name}-{retry}" / "results.jsonl").read_text().splitlines()]
    return [(r["base_passed"], r["passed"]) for r in rows], seconds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--n-workers", type=int, default=2)
    p.add_argument("--output", type=Path, default=Path("data/out/bench/evalplus.json"))
    args = p.parse_args(argv)
    result: dict[str, Any] = {"repeat": args.repeat, "n_workers": args.n_workers, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        for name in RELEASES:
            samples = repeated(name, args.repeat, Path(tmp))
            tasks = [json.loads(line)["task_id"] for line in samples.read_text().splitlines()]
            their_v, their_s = theirs(name, samples, args.n_workers)
            our_v, our_s = ours(name, samples, args.n_workers, Path(tmp), retry=True)
            plain_v, plain_s = ours(name, samples, args.n_workers, Path(tmp), retry=False)
            compared = [i for i, t in enumerate(tasks) if t != "HumanEval/32"]
            agree = all(our_v[i] == their_v[i] == plain_v[i] for i in compared)
            result[name] = {"samples": len(tasks), "evalplus_s": their_s, "ours_s": our_s, "ratio": their_s / our_s}
            result[name].update(ours_no_retry_s=plain_s, ratio_no_retry=their_s / plain_s)
            result[name]["verdicts_equal_except_HumanEval/32"] = agree
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print("| benchmark | samples | EvalPlus s | ours s (retry / none) | ratio (retry / none) | verdicts equal |")
    print("|---|---:|---:|---:|---:|---|")
    for name in RELEASES:
        r = result[name]
        print(
            f"| {name} | {r['samples']} | {r['evalplus_s']:.1f} | {r['ours_s']:.1f} / {r['ours_no_retry_s']:.1f} | "
            f"{r['ratio']:.2f}x / {r['ratio_no_retry']:.2f}x | {r['verdicts_equal_except_HumanEval/32']} |"
        )


if __name__ == "__main__":
    main()
