"""Evaluate HumanEval samples in the sandbox: `python -m main.evaluate --benchmark humaneval`.

    python -m main.eval_humaneval --input SAMPLES.jsonl --output-dir DIR [--n-workers N] [--timeout S] \\
        [--humaneval-path F]

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
