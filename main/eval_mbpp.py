"""Evaluate MBPP samples in the sandbox: results.jsonl, metrics.json, report.md, passk.png.

    python -m main.eval_mbpp SAMPLES.jsonl --mbpp-path PATH_OR_HUB_ID --output-dir DIR [--split test]
        [--sanitized] [--n-workers N] [--timeout S]

The program run per sample is the completion, then the task's test_setup_code, then its test_list
asserts. Path, split and flavour default to what the samples' .meta.json recorded (else the hub id,
test, full).
Exit codes: 0 ok; 2 bad input; 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks.problems import (
    MBPP_HUB_ID,
    MBPP_SPLITS,
    load_mbpp,
)
from data_generation.common.provenance import file_sha256
from main.evaluation.harness import add_common_args, read_fingerprint, run_cli


def dataset_choice(args: Any) -> tuple[str, bool, str]:
    """(split, sanitized, path): the command line wins, then the generation fingerprint, then test/full/hub."""
    fp = read_fingerprint(args.samples)
    recorded = fp.get("dataset", {}) if isinstance(fp, dict) and isinstance(fp.get("dataset"), dict) else {}
    split = args.split or recorded.get("split") or "test"
    flavour = recorded.get("sanitized", recorded.get("name") == "mbpp-sanitized")  # main.generate: name
    sanitized = args.sanitized if args.sanitized is not None else bool(flavour)
    path = args.mbpp_path or recorded.get("path") or MBPP_HUB_ID
    return split, sanitized, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m main.eval_mbpp", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument(
        "--mbpp-path",
        default=None,
        help="mbpp.jsonl, sanitized-mbpp.json, a save_to_disk folder "
        f"or a hub id (default: the generation's, else {MBPP_HUB_ID}, which needs network)",
    )
    parser.add_argument(
        "--split", choices=sorted(MBPP_SPLITS), default=None, help="task-id range (default test: 11-510)"
    )
    parser.add_argument(
        "--sanitized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the sanitized release (427 tasks over all splits)",
    )
    args = parser.parse_args(argv)

    def load() -> tuple[list, dict]:
        split, sanitized, path = dataset_choice(args)
        problems = load_mbpp(path, split=split, sanitized=sanitized)
        source = Path(path)
        return problems, {
            "name": "mbpp",
            "path": str(path),
            "split": split,
            "sanitized": sanitized,
            "sha256": file_sha256(str(source)) if source.is_file() else f"hub-or-folder:{path}",
            "num_tasks": len(problems),
        }

    return run_cli(args, "mbpp", load)


if __name__ == "__main__":
    sys.exit(main())
