"""Evaluate MBPP samples in the sandbox: `python -m main.evaluate --benchmark mbpp`.

    python -m main.eval_mbpp --input SAMPLES.jsonl --output-dir DIR [--mbpp-path PATH_OR_HUB_ID] [--split test]
        [--sanitized] [--n-workers N] [--timeout S]

    python -m main.eval_mbpp --prediction_dir DIR [--output_dir OUT] [--reference_path mbpp.jsonl] [--num_procs N]

Path, split and flavour default to what the samples' .meta.json recorded (else the hub id, test, full).
The second form is CodeCapybara's command: every *.jsonl in DIR (ours, or the seeds' generate.py
output) is a run's samples of the same tasks; they are merged with n summed and evaluated into OUT
(default DIR/eval). pass@1, 10, 80 and 100 by default, as the seeds report (each only when n >= k).
Exit codes: 0 ok; 2 bad input; 1 anything else.
"""

from __future__ import annotations

import sys
from typing import Sequence

from main import evaluate


def main(argv: Sequence[str] | None = None) -> int:
    return evaluate.main(argv, fixed="mbpp", prog="python -m main.eval_mbpp")


if __name__ == "__main__":
    sys.exit(main())
