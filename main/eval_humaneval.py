"""Evaluate HumanEval samples in the sandbox: `python -m main.evaluate --benchmark humaneval`.

    python -m main.eval_humaneval --input SAMPLES.jsonl --output-dir DIR [--n-workers N] [--timeout S] \\
        [--humaneval-path F]
    python -m main.eval_humaneval --prediction_dir DIR [--output_dir OUT] [--reference_path F]

The second form is CodeCapybara's command: every *.jsonl in DIR (ours, or the seeds' generate.py
output) is a run's samples of the same tasks; they are merged with n summed and evaluated into
OUT (default DIR/eval). pass@1, 10 and 100, as the seeds report.

Exit codes: 0 ok; 2 bad input (malformed samples, unknown task ids, missing samples); 1 anything else.
"""

from __future__ import annotations

import sys
from typing import Sequence

from main import evaluate


def main(argv: Sequence[str] | None = None) -> int:
    return evaluate.main(argv, fixed="humaneval", prog="python -m main.eval_humaneval")


if __name__ == "__main__":
    sys.exit(main())
