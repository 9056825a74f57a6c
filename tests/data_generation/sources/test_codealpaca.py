import json
import subprocess
import sys

import pytest

from data_generation.cli import main
from data_generation.common.io import read_records
from data_generation.sources import SOURCES, SourceStats
from data_generation.sources.codealpaca import CodeAlpacaSource


def test_real_sample_converts_with_counted_rejects(code_alpaca_2k, tmp_path):
    raw = json.loads(code_alpaca_2k.read_text())
    out = tmp_path / "ca.jsonl"
    assert main(["codealpaca", "--input", str(code_alpaca_2k), "--output", str(out)]) == 0
    recs = [r for _, r in read_records(out, default_source="x")]
    manifest = json.loads((tmp_path / "ca.jsonl.manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["read"] == len(raw) == 2017
    assert counts["emitted"] == len(recs)
    assert counts["read"] == counts["emitted"] + sum(counts["rejected"].values())
    # The real sample has two rows with an empty output; they are counted, not written.
    assert counts["rejected"] == {"empty_output": sum(1 for r in raw if not r["output"].strip())} == {"empty_output": 2}
    assert {r.source for r in recs} == {"codealpaca"}
    assert recs[0].to_alpaca() == raw[0]
    langs = {r.language for r in recs}
    assert {"python", "javascript", "sql", "java"} <= langs
    assert manifest["config"]["input"] == str(code_alpaca_2k) and "python" in manifest["versions"]


def test_hub_code_path_through_a_local_dataset_folder(tmp_path):
    # A folder laid out like a hub dataset repo goes through datasets.load_dataset, as a hub id does.
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "repo" / "data").mkdir(parents=True)
    rows = [
        {"instruction": "Write a SQL query to count rows.", "input": "", "output": "SELECT COUNT(*) FROM t;"},
        {"instruction": "Print hi in Python", "input": "", "output": "print('hi')"},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "repo" / "data" / "train-00000-of-00001.parquet")
    stats = SourceStats()
    recs = list(CodeAlpacaSource(input=str(tmp_path / "repo")).records(stats))
    assert [r.to_alpaca() for r in recs] == rows
    assert [r.language for r in recs] == ["sql", "python"] and stats.read == stats.emitted == 2


def test_bad_rows_are_counted_with_reasons(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"instruction": "ok", "input": "", "output": "x"},
                {"instruction": "", "output": "x"},
                {"instruction": "no output"},
                [1],
                {"instruction": "ok2", "output": 3},
            ]
        )
        + "\n"
    )
    stats = SourceStats()
    recs = list(CodeAlpacaSource(input=str(path)).records(stats))
    assert len(recs) == 1 and stats.read == 5
    assert dict(stats.rejected) == {
        "empty_instruction": 1,
        "missing_output": 1,
        "not_an_object": 1,
        "bad_type_output": 1,
    }
    assert [e["where"] for e in stats.examples] == ["2", "3", "4", "5"]


def test_malformed_file_exits_2_with_file_line_and_no_output(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": oops}\n]\n')
    out = tmp_path / "out" / "ca.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "data_generation", "codealpaca", "--input", str(bad), "--output", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert f"{bad}:3: invalid JSON" in proc.stderr
    assert not out.exists() and not list(out.parent.glob("*"))


def test_unknown_input_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="not a Hugging Face hub id"):
        list(CodeAlpacaSource(input=str(tmp_path / "missing.json")).records(SourceStats()))


def test_registry_names_match_classes():
    assert SOURCES["codealpaca"] is CodeAlpacaSource
    assert all(cls.name == name for name, cls in SOURCES.items())
