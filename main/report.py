"""Side-by-side report for evaluation runs: report.md (the seeds' table layout, 95 % intervals, paired
differences from the first run) and a pass@k plot with the intervals as error bars.

    python -m main.report --input RUN_DIR [RUN_DIR ...] --output-dir DIR     # folders holding metrics.json

What the table holds is described in `main.evaluation.report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from data_generation.common.command import run_command, setup_logging
from main.evaluation.report import write_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m main.report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        dest="run_dirs",
        nargs="+",
        required=True,
        metavar="RUN_DIR",
        help="evaluation output folders (each with metrics.json)",
    )
    parser.add_argument("--output-dir", required=True, help="where report.md and passk.png go")
    args = parser.parse_args(argv)
    setup_logging(timestamps=False)

    def body() -> int:
        print(write_report(args.run_dirs, args.output_dir))
        return 0

    return run_command(body, bad_input=(FileNotFoundError, KeyError, json.JSONDecodeError))


if __name__ == "__main__":
    sys.exit(main())
