"""Where a resumed reverse-instruction run carries on: right after the last function its finished steps
account for, and only if the corpus still yields those functions in the same order.

The position is the number of functions the kept steps turned into records or rejects, never a step
count times the step size: a step cut short by `--limit` holds fewer functions than a full one, so a
resume with a larger limit would otherwise start past functions that were never sent.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from data_generation.common.record import Record
from data_generation.sources.reverse_instruct.snippets import Snippet
from data_generation.sources.reverse_instruct.step import function_provenance


def finished_functions(records: list[Record], rejects: list[dict]) -> list[dict[str, Any]]:
    """The provenance of functions 0..n-1 as the finished steps' records and rejects hold them; a
    ValueError when they do not account for each of 0..n-1 exactly once (files from a run that
    skipped or repeated functions: continuing them would not keep the one-record-or-reject promise)."""
    found = [(r.meta["index"], r.meta.get("function")) for r in records]
    found += [(row["index"], row.get("function")) for row in rejects]
    counts = Counter(index for index, _ in found)
    missing = [i for i in range(max(counts, default=-1) + 1) if i not in counts]
    twice = sorted(i for i, n in counts.items() if n > 1)
    if missing or twice:
        raise ValueError(
            f"its finished steps do not account for each function up to {max(counts)} exactly once "
            f"(never sent: {_spans(missing) or 'none'}; sent twice: {_spans(twice) or 'none'}), "
            "so it cannot be resumed exactly: choose a new --output"
        )
    return [json.loads(json.dumps(function)) for _, function in sorted(found, key=lambda item: item[0])]


def continue_after(
    functions: Iterator[Snippet], finished: list[dict[str, Any]], limit: int | None
) -> Iterator[tuple[int, Snippet]]:
    """The numbered functions still to send, up to `limit` in all. The corpus is harvested again (its
    order is fixed) and its first functions must be the finished ones; otherwise a ValueError says
    which differs, before the caller cuts or writes anything."""
    numbered = enumerate(functions)
    for index, then in enumerate(finished):
        item = next(numbered, None)
        now = None if item is None else json.loads(json.dumps(function_provenance(item[1])))
        if now != then:
            raise ValueError(
                f"function {index} of the run was {_describe(then)}, the corpus now gives {_describe(now)}: "
                "the functions to harvest changed (files under --paths, the dataset, the default corpus "
                "found on this machine); resume with the same corpus or choose a new --output"
            )
    return itertools.islice(numbered, None if limit is None else max(0, limit - len(finished)))


def _describe(function: dict[str, Any] | None) -> str:
    if function is None:
        return "nothing (it ends before)"
    return f"`{function.get('name')}` at {function.get('path')}:{function.get('start_line')}"


def _spans(indices: list[int]) -> str:
    """`3-5, 9` for [3, 4, 5, 9]."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
