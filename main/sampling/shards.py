"""The sample shards of `main.generate`: `SAMPLES.jsonl.shards/rankRRR-of-WWW.jsonl`, one per rank.

Each rank appends its samples to its own shard (a `jsonl_log`), one fsynced write per batch, so a
killed run loses at most the batch in flight; a torn last line (a write cut by the kill) is cut when
the shard is opened again and skipped when it is read. A re-run finds every sample already on disk in any shard,
whatever the earlier world size. `merge_shards` writes SAMPLES.jsonl only when every task has
exactly samples 0..n-1: a missing sample is an error, never a silently smaller n.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks.base import Problem
from data_generation.common.io import DataError, write_text_atomic
from data_generation.common.jsonl_log import JsonlLog, read_log


class IncompleteSamples(RuntimeError):
    """The shards lack samples (a rank died, or a run was stopped): re-run the same command."""


def shard_dir(output: Path) -> Path:
    return output.with_name(output.name + ".shards")


def shard_path(output: Path, rank: int, world: int) -> Path:
    """The shard rank `rank` of a `world`-rank run appends to (and holds the lock of)."""
    return shard_dir(output) / f"rank{rank:03d}-of-{world:03d}.jsonl"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Complete rows of a shard; a torn last line (a write cut by a kill) is left out."""
    try:
        return read_log(path, kind="shard").rows
    except DataError as exc:
        raise IncompleteSamples(str(exc)) from None


class ShardWriter:
    """A rank's shard, opened for appending (a torn tail is cut first); each batch is one fsynced write."""

    def __init__(self, path: Path) -> None:
        try:
            self._log: JsonlLog[dict[str, Any]] = JsonlLog.open(path, kind="shard")
        except DataError as exc:
            raise IncompleteSamples(str(exc)) from None

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        self._log.append(rows)

    def close(self) -> None:
        self._log.close()


def has_samples(output: Path) -> bool:
    """Whether any sample of `output` is on disk (merged, or in a shard)."""
    return output.exists() or bool(finished_samples(output))


def finished_samples(output: Path) -> set[tuple[str | int, int]]:
    """(task_id, sample) pairs already in any shard of `output`."""
    folder = shard_dir(output)
    paths = sorted(folder.glob("rank*.jsonl")) if folder.is_dir() else []
    return {(row["task_id"], row["sample"]) for path in paths for row in read_rows(path)}


def merge_shards(output: Path, problems: Sequence[Problem], n: int) -> int:
    """Write `output` from the shards (problem order, then sample) if every task has samples 0..n-1.

    Raises `IncompleteSamples` naming what is missing; nothing is written then. Returns the row count."""
    wanted = {p.task_id: i for i, p in enumerate(problems)}
    found: dict[tuple[str | int, int], dict[str, Any]] = {}
    for path in sorted(shard_dir(output).glob("rank*.jsonl")):
        for row in read_rows(path):
            key = (row["task_id"], row["sample"])
            if key[0] in wanted and 0 <= key[1] < n:
                found.setdefault(key, row)
    missing = [(p.task_id, s) for p in problems for s in range(n) if (p.task_id, s) not in found]
    if missing:
        shown = ", ".join(f"{t}#{s}" for t, s in missing[:10])
        raise IncompleteSamples(
            f"{len(missing)} of {len(problems) * n} samples are missing ({shown}"
            f"{', ...' if len(missing) > 10 else ''}); re-run the same command to generate them"
        )
    rows = sorted(found.values(), key=lambda r: (wanted[r["task_id"]], r["sample"]))
    write_text_atomic(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)
