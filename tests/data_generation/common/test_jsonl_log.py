"""The one append-only JSONL log: fsynced batches, a torn tail cut on open (or left out by a reader),
damage elsewhere an error with its line."""

import json

import pytest

from data_generation.common.io import DataError
from data_generation.common.jsonl_log import JsonlLog, read_log


def lines(*rows: dict) -> bytes:
    return b"".join((json.dumps(r) + "\n").encode() for r in rows)


def test_append_reopen_and_rewind(tmp_path):
    path = tmp_path / "sub" / "log.jsonl"
    with JsonlLog.open(path) as log:
        assert log.rows == [] and path.exists()  # created at once, empty
        assert log.append([{"a": 1}, {"a": 2}]) == 2 and log.append([]) == 0
        log.append([{"a": 3}])
        assert log.count == 3
        log.rewind(1)
        log.append([{"a": 4}])
    assert path.read_bytes() == lines({"a": 1}, {"a": 4})
    with JsonlLog.open(path, lambda row: row["a"]) as log:
        assert log.rows == [1, 4] and log.count == 2


@pytest.mark.parametrize(
    "tail",
    [b'{"a": 3', b'{"a": 3}', b'{"a": tru\n', b"\xff\xfe\n", b"\n"],
    ids=["cut-mid-line", "no-newline-yet", "damaged-last-line", "not-utf8", "blank-last-line"],
)
def test_a_torn_tail_is_left_out_by_readers_and_cut_by_the_owner(tmp_path, tail):
    path = tmp_path / "log.jsonl"
    good = lines({"a": 1}, {"a": 2})
    path.write_bytes(good + tail)
    contents = read_log(path)
    assert contents.rows == [{"a": 1}, {"a": 2}] and contents.torn == len(tail)
    assert path.read_bytes() == good + tail  # reading changes nothing
    with JsonlLog.open(path) as log:
        assert log.rows == [{"a": 1}, {"a": 2}]
        assert path.read_bytes() == good
        log.append([{"a": 3}])
    assert read_log(path).rows == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_damage_before_the_last_line_is_an_error_naming_it(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(lines({"a": 1}) + b"not json\n" + lines({"a": 2}))
    with pytest.raises(DataError, match=r"log\.jsonl:2: damaged line in the middle of a shard"):
        read_log(path, kind="shard")
    with pytest.raises(DataError, match=r"log\.jsonl:2: damaged line"):
        JsonlLog.open(path)
    assert path.read_bytes() == lines({"a": 1}) + b"not json\n" + lines({"a": 2})  # left as it was


def test_a_row_that_parse_refuses_counts_as_damage(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(lines({"a": 1}, {"b": 2}))

    def parse(row: dict) -> int:
        if "a" not in row:
            raise ValueError("no a")
        return row["a"]

    assert read_log(path, parse).rows == [1]  # the last line: torn
    path.write_bytes(lines({"b": 2}, {"a": 1}))
    with pytest.raises(DataError, match=r":1: damaged line in the middle of a log \(no a\)"):
        read_log(path, parse)
