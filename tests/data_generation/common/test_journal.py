import json

import pytest

from data_generation.common.io import DataError
from data_generation.common.journal import Journal
from data_generation.common.record import Record


def recs(*names: str) -> list[Record]:
    return [Record(f"Task number {n} in words", "", f"out {n}", "t", meta={"n": n}) for n in names]


def test_append_then_reopen_gives_the_same_records(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.open(path, "t") as j:
        assert j.records == [] and j.count == 0
        assert j.append(recs("a", "b")) == 2
        j.append([])
        j.append(recs("c"))
        assert j.count == 3
    with Journal.open(path, "t") as j:
        assert j.records == recs("a", "b", "c")
        assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [r.id for r in recs("a", "b", "c")]


@pytest.mark.parametrize("tail", [b'{"instruction": "Task numb', b'{"broken": tru\n', b"\xff\xfe\n"])
def test_a_torn_last_line_is_cut_and_appending_continues(tmp_path, tail):
    path = tmp_path / "j.jsonl"
    with Journal.open(path, "t") as j:
        j.append(recs("a", "b"))
    good = path.read_bytes()
    path.write_bytes(good + tail)
    with Journal.open(path, "t") as j:
        assert j.records == recs("a", "b")
        assert path.read_bytes() == good
        j.append(recs("c"))
    assert Journal.open(path, "t").records == recs("a", "b", "c")


def test_damage_in_the_middle_is_an_error_with_the_line(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.open(path, "t") as j:
        j.append(recs("a"))
    path.write_bytes(path.read_bytes() + b"not json\n" + path.read_bytes())
    with pytest.raises(DataError, match=r"j\.jsonl:2: damaged line in the middle of a journal"):
        Journal.open(path, "t")


def test_rewind_drops_the_last_records(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal.open(path, "t") as j:
        j.append(recs("a", "b", "c"))
        j.rewind(1)
        assert j.count == 1
        j.append(recs("d"))
    assert Journal.open(path, "t").records == recs("a", "d")
    with Journal.open(path, "t") as j:
        j.rewind(0)
    assert path.read_bytes() == b""


def test_only_jsonl(tmp_path):
    with pytest.raises(DataError, match="must be a .jsonl"):
        Journal.open(tmp_path / "x.json", "t")
