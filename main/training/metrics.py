"""Training metrics: one JSON object per line in `metrics.jsonl`, and a loss-curve PNG at the end.

Only rank 0 writes. Lines are `{"step": N, "kind": "train"|"val", ...}`; train lines carry loss, lr,
tokens/s, target tokens, useful-token fraction and grad norm, val lines the validation loss. A resumed
run first cuts the lines past its checkpoint's step, so the file always describes one run.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.path, self.enabled = Path(path), enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("", encoding="utf-8")
        elif self.path.exists():
            kept = [row for row in read_metrics(self.path) if row.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")

    def write(self, step: int, kind: str, **values: Any) -> None:
        if not self.enabled:
            return
        row = {"step": step, "kind": kind, "time": round(time.time(), 3), **values}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line after a crash
                log.warning("%s: skipping an unreadable line", path)
    return rows


def plot_loss_curve(metrics_path: Path, png_path: Path, title: str = "") -> Path | None:
    """Train loss (and val loss, if any) against the optimizer step; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if r.get("kind") == "val" and "val_loss" in r]
    if not train and not val:
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    if train:
        axes.plot(*zip(*train), label="train loss", linewidth=1)
    if val:
        axes.plot(*zip(*val), "o-", label="val loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (mean per target token)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return Path(png_path)
