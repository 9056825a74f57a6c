import json

import pytest

from data_generation.common.io import (
    DataError,
    atomic_path,
    iter_rows,
    read_records,
    write_alpaca_json,
    write_hf_dataset,
    write_jsonl,
    write_parquet,
    write_records,
)
from data_generation.common.record import Record, RowError

RECS = [
    Record("Reverse a string", "", "s[::-1]", "a", "python", {"n": 1}),
    Record("Sum a list", "[1, 2]", "sum(xs)", "b", "python", {"tests": {"input": ["1"]}}),
    Record("Échappe «ça»", "", "print('ü')", "c"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_full_formats_round_trip(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    assert write_records(RECS, path) == 3
    back = [rec for _, rec in read_records(path, default_source="x")]
    assert back == RECS


def test_alpaca_json_is_exactly_the_seed_shape(tmp_path):
    path = tmp_path / "d.json"
    write_alpaca_json(RECS, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == [r.to_alpaca() for r in RECS]
    back = [rec for _, rec in read_records(path, default_source="alpaca")]
    assert [r.to_alpaca() for r in back] == data and {r.source for r in back} == {"alpaca"}


def test_hf_dataset_round_trip(tmp_path):
    write_hf_dataset({"train": RECS[:2], "validation": RECS[2:]}, tmp_path / "hf")
    assert [r for _, r in read_records(tmp_path / "hf", default_source="x", split="train")] == RECS[:2]
    assert [r for _, r in read_records(tmp_path / "hf", default_source="x")] == RECS
    with pytest.raises(DataError, match="no split 'test'"):
        list(iter_rows(tmp_path / "hf", split="test"))


def test_json_list_rows_report_their_lines(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n\n  {"instruction": "c"}\n]\n')
    got = list(read_records(path, default_source="s"))
    assert [w for w, _ in got] == [2, 4]
    assert isinstance(got[1][1], RowError) and got[1][1].reason == "missing_output"


@pytest.mark.parametrize(
    "name, content, where, message",
    [
        ("bad.jsonl", b'{"instruction": "a", "output": "b"}\n{"instruction": \n', 2, "invalid JSON"),
        ("bad.json", b'[\n {"instruction": "a", "output": "b"},\n {"instruction": "c",, }\n]', 3, "invalid JSON"),
        ("bad.json", b'[\n {"instruction": "a", "output": "b"}\n {"x": 1}\n]', 3, "expected ',' or ']'"),
        ("bad.json", b'[\n {"instruction": "a", "output": "b"},\n', 3, "invalid JSON"),
        ("bad.json", b'{"instruction": "a"}', 1, "expected a JSON list"),
        (
            "latin1.jsonl",
            b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n',
            2,
            "not valid UTF-8",
        ),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, content, where, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        list(iter_rows(path))
    assert err.value.where == where and message in str(err.value)
    assert str(err.value).startswith(f"{path}:{where}: ")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jsonl", b"  \n", "file is empty"),
        ("x.csv", b"a,b\n", "unknown format"),
        ("broken.parquet", b"not parquet", "not a readable parquet file"),
    ],
)
def test_unusable_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        list(iter_rows(path))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        list(iter_rows(tmp_path / "nope.jsonl"))


def test_failed_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "out.jsonl"

    def records():
        yield RECS[0]
        raise DataError("in.json", 7, "boom")

    with pytest.raises(DataError):
        write_jsonl(records(), path)
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_only_on_success(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("new")
            raise RuntimeError
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    with atomic_path(path) as tmp:
        tmp.write_text("new")
    assert path.read_text() == "new"


def test_parquet_writer_keeps_meta_as_json(tmp_path):
    import pyarrow.parquet as pq

    write_parquet(RECS, tmp_path / "d.parquet")
    table = pq.read_table(tmp_path / "d.parquet")
    assert json.loads(table.column("meta")[1].as_py()) == RECS[1].meta
