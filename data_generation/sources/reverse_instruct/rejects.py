"""The rejects file of a resumable source: what did not become a record, and why, step by step.

Reject rows of a step are followed by one `{"step_done": s, "kept": n}` marker, all in one fsynced
append. So after a crash the file holds whole steps plus, at worst, a cut-off last step (rows
without their marker, or a torn last line); `truncate` cuts that off before the step runs again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from data_generation.common.io import DataError, atomic_path


class RejectsFile:
    """The rejects JSONL: reject rows and one `{"step_done": s, "kept": n}` marker per finished step,
    appended one fsynced write per step (the same torn-tail rule as the journal)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict] = []  # reject rows of finished steps
        self.done: dict[int, int] = {}  # step -> records kept
        self._pending: list[dict] = []  # rows after the last marker (a step cut by a crash)
        self._torn = False  # a last line cut mid-write
        if path.exists():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_bytes().split(b"\n")
        for lineno, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                if lineno >= len(lines) - 1:  # a torn last line
                    self._torn = True
                    break
                raise DataError(self.path, lineno, "damaged line in the middle of a rejects file") from None
            if "step_done" in row:
                self.rows.extend(self._pending)
                self._pending = []
                self.done[row["step_done"]] = row["kept"]
            else:
                self._pending.append(row)

    def after(self, step: int) -> bool:
        """Whether the file holds anything from `step` on (or a cut-off step)."""
        return self._torn or bool(self._pending) or any(s >= step for s in self.done)

    def truncate(self, step: int) -> None:
        """Keep what steps before `step` wrote; rewrite the file atomically if anything goes."""
        if not self.after(step):
            return
        self.rows = [r for r in self.rows if r["step"] < step]
        self.done = {s: k for s, k in self.done.items() if s < step}
        self._pending, self._torn = [], False
        lines = []
        for s in sorted(self.done):
            lines += [r for r in self.rows if r["step"] == s] + [{"step_done": s, "kept": self.done[s]}]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")

    def append_step(self, step: int, rows: list[dict], *, kept: int) -> None:
        blob = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [*rows, {"step_done": step, "kept": kept}])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as handle:
            handle.write(blob.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        self.rows.extend(rows)
        self.done[step] = kept
