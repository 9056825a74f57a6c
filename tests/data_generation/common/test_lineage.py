"""One name per model, and the hashes that chain a dataset file to the manifest it came with."""

from __future__ import annotations

import json
from pathlib import Path

from data_generation.common.models import (
    PROVENANCE_FILE,
    TRAINING_INFO_FILE,
    model_label,
    read_training_info,
)
from data_generation.common.provenance import (
    dataset_lineage,
    file_sha256,
    fingerprint,
    folder_sha256,
)


def test_a_model_has_one_name_whatever_path_it_was_given_by(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--org--coder-7b" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    assert model_label("org/coder-7b", snapshot) == "org/coder-7b"
    assert model_label(str(snapshot), snapshot) == "org/coder-7b"  # an adapter's base_model_name_or_path
    plain = tmp_path / "my-model"
    plain.mkdir()
    assert model_label(str(plain), plain) == str(plain)
    (plain / PROVENANCE_FILE).write_text(
        json.dumps({"source_model": "org/m", "gguf_quantisation": "Q4_1", "package": "pkg", "package_version": "1.0"})
    )
    assert model_label("embedded", plain) == model_label(str(plain), plain) == "org/m+gguf-Q4_1@pkg==1.0"


def test_folder_sha256_changes_with_any_file_and_skips_excluded_names(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_text("2")
    first = folder_sha256(tmp_path)
    (tmp_path / TRAINING_INFO_FILE).write_text("{}")
    assert folder_sha256(tmp_path, exclude=(TRAINING_INFO_FILE,)) == first != folder_sha256(tmp_path)
    (tmp_path / "sub" / "b").write_text("3")
    assert folder_sha256(tmp_path, exclude=(TRAINING_INFO_FILE,)) != first
    assert read_training_info(tmp_path) == {} and read_training_info(tmp_path / "sub") is None


def test_dataset_lineage_names_the_manifest_beside_the_file(tmp_path: Path) -> None:
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "train.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (merged / "manifest.json").write_text(json.dumps({"config_fingerprint": "f00d"}))
    lineage = dataset_lineage(merged / "train.jsonl")
    assert lineage["sha256"] == file_sha256(str(merged / "train.jsonl"))
    assert lineage["manifest"] == {
        "path": str(merged / "manifest.json"),
        "config_fingerprint": "f00d",
        "sha256": file_sha256(str(merged / "manifest.json")),
    }
    source = tmp_path / "codealpaca.jsonl"  # a source's output: FILE.manifest.json, fingerprint of its config
    source.write_text("{}\n")
    source.with_name("codealpaca.jsonl.manifest.json").write_text(json.dumps({"config": {"input": "x"}}))
    assert dataset_lineage(source)["manifest"]["config_fingerprint"] == fingerprint({"input": "x"})
    assert dataset_lineage("org/hub-dataset") == {"path": "org/hub-dataset"}
