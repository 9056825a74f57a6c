"""Sample shards on the shared JSONL log: a torn tail is left out when read and cut when the rank's
writer opens its shard again; damage before the last line stops the run."""

import json

import pytest

from main.sampling.shards import IncompleteSamples, ShardWriter, read_rows


def row(task: str, sample: int) -> bytes:
    return (json.dumps({"task_id": task, "sample": sample}) + "\n").encode()


@pytest.mark.parametrize("tail", [b'{"task_id": "T/1", "sam', b'{"task_id": "T/1", "sam\n'])
def test_a_torn_last_line_is_skipped_then_cut_by_the_writer(tmp_path, tail):
    shard = tmp_path / "rank000-of-001.jsonl"
    shard.write_bytes(row("T/0", 0) + tail)
    assert read_rows(shard) == [{"task_id": "T/0", "sample": 0}]
    writer = ShardWriter(shard)
    writer.append([{"task_id": "T/1", "sample": 0}])
    writer.close()
    assert shard.read_bytes() == row("T/0", 0) + row("T/1", 0)


def test_damage_inside_a_shard_stops_the_run(tmp_path):
    shard = tmp_path / "rank000-of-001.jsonl"
    shard.write_bytes(row("T/0", 0) + b"garbage\n" + row("T/0", 1))
    with pytest.raises(IncompleteSamples, match=r"rank000-of-001\.jsonl:2: damaged line"):
        read_rows(shard)
    with pytest.raises(IncompleteSamples, match=r":2: damaged line"):
        ShardWriter(shard)
