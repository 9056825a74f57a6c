"""The rejects file of reverse instruction: what did not become a record, and why, step by step.

Reject rows of a step are followed by one `{"step_done": s, "kept": n}` marker, all in one fsynced
append to a `jsonl_log` (the journal's torn-tail rule). So after a crash the file holds whole steps
plus, at worst, a cut-off last step (rows without their marker, or a torn last line); `truncate`
cuts that off before the step runs again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_generation.common.jsonl_log import JsonlLog, LogContents, read_log


def _row(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


class RejectsFile:
    """The rejects JSONL: reject rows and one `{"step_done": s, "kept": n}` marker per finished step.

    Read when made; opened for writing only when a step is cut or appended, so a source that is
    only looked at leaves no file behind."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._contents: LogContents[dict] = (
            read_log(self.path, _row, kind="rejects file") if self.path.exists() else LogContents([], [], 0)
        )
        self._log: JsonlLog[dict] | None = None
        self.rows: list[dict] = []  # reject rows of finished steps
        self.done: dict[int, int] = {}  # step -> records kept
        self._steps: list[tuple[int, int, int]] = []  # per marker, in file order: (step, lines, rows) up to it
        self._pending = 0  # rows after the last marker (a step cut by a crash)
        self._torn = self._contents.torn > 0  # a last line cut mid-write
        for line, row in enumerate(self._contents.rows, start=1):
            if "step_done" in row:
                self.done[row["step_done"]] = row["kept"]
                self._steps.append((row["step_done"], line, len(self.rows)))
                self._pending = 0
            else:
                self.rows.append(row)
                self._pending += 1
        if self._pending:
            del self.rows[-self._pending :]

    def after(self, step: int) -> bool:
        """Whether the file holds anything from `step` on (or a cut-off step)."""
        return self._torn or bool(self._pending) or any(s >= step for s in self.done)

    def truncate(self, step: int) -> None:
        """Keep the leading steps before `step` (the steps a re-run keeps); cut the rest from the file."""
        if not self.after(step):
            return
        kept = 0
        while kept < len(self._steps) and self._steps[kept][0] < step:
            kept += 1
        _, lines, rows = self._steps[kept - 1] if kept else (None, 0, 0)
        self._writer().rewind(lines)
        del self._steps[kept:], self.rows[rows:]
        self.done = {s: self.done[s] for s, _, _ in self._steps}
        self._pending, self._torn = 0, False

    def append_step(self, step: int, rows: list[dict], *, kept: int) -> None:
        log = self._writer()
        log.append([*rows, {"step_done": step, "kept": kept}])
        self.rows.extend(rows)
        self.done[step] = kept
        self._steps.append((step, log.count, len(self.rows)))

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def _writer(self) -> JsonlLog[dict]:
        if self._log is None:
            self._log = JsonlLog.resume(self.path, self._contents)
        return self._log
