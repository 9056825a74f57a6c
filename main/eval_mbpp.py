"""Evaluate MBPP samples in the sandbox: `python -m main.evaluate --benchmark mbpp`.

    python -m main.eval_mbpp --input SAMPLES.jsonl --output-dir DIR [--mbpp-path PATH_OR_HUB_ID] [--split test]
        [--sanitized] [--n-workers N] [--timeout S]

Path, split and flavour default to what the samples' .meta.json recorded (else the hub id, test, full).
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
