"""Our pipeline runs beside the numbers the seeds (CodeCapybara) published, in their table layout.

    python -m scripts.seeds_table OUT_DIR [OUT_DIR ...]     (pipeline output folders)

Prints, per benchmark, the seeds' published rows (marked as such) above our rows from each run's
`eval/*/metrics.json`, and the seeds' data table beside ours (the merge manifest). The seeds publish
HumanEval only (their README's MBPP section is empty); their MBPP rows are "not published".
Published figures: FSoft-AI4Code/CodeCapybara README (Results and Data Collection sections).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from main.evaluation.passk import DEFAULT_KS
from main.evaluation.report import load_run, run_labels, task_set
from main.flow.config import SOURCE_COMMANDS
from main.flow.report import SOURCE_LABELS

PUBLISHED_SOURCE = "CodeCapybara README (FSoft-AI4Code/CodeCapybara), n = 200, T = 0.1, top-p 0.75, top-k 40"
# (model, base checkpoint, pass@1, pass@10, pass@100), percent, HumanEval (164 tasks)
PUBLISHED_HUMANEVAL = [
    ("LLaMA", "decapoda-research/llama-7b-hf", 10.70, 13.29, 13.41),
    ("LLaMA", "huggyllama/llama-7b", 9.7, 12.66, 12.80),
    ("Alpaca-LoRA", "decapoda-research/llama-7b-hf", 8.00, 10.00, 10.37),
    ("CodeCapybara-LoRA", "decapoda-research/llama-7b-hf", 9.61, 11.62, 12.02),
    ("CodeCapybara", "huggyllama/llama-7b", 11.10, 13.33, 13.41),
]
# The seeds' data table, keyed by our source that makes the same kind of data.
PUBLISHED_DATA = {"reverse_instruct": 20574, "codealpaca": 20022, "codecontests": 13328}


def our_runs(out_dirs: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for out in out_dirs:
        folders = sorted((out / "eval").glob("*/metrics.json"))
        if not folders:
            raise FileNotFoundError(f"{out}/eval: no metrics.json (run the pipeline first)")
        runs += [load_run(path.parent) for path in folders]
    return runs


def pass_table(benchmark: str, runs: list[dict[str, Any]]) -> list[str]:
    header = "| Model | Base checkpoint | " + " | ".join(f"pass@{k}" for k in DEFAULT_KS) + " | |"
    lines = [f"### {benchmark}", "", header, "|---|---|" + "---:|" * len(DEFAULT_KS) + "---|"]
    if benchmark == "humaneval":
        lines += [
            f"| {m} | {b} | {p1:.2f} | {p10:.2f} | {p100:.2f} | published |"
            for m, b, p1, p10, p100 in PUBLISHED_HUMANEVAL
        ]
    else:
        lines.append("| (the seeds publish no MBPP numbers) | | " + " | ".join("–" for _ in DEFAULT_KS) + " | |")
    for metrics in runs:
        if metrics.get("benchmark") != benchmark:
            continue
        model, base = run_labels(metrics)
        cells = [f"{100 * metrics[f'pass@{k}']:.2f}" if f"pass@{k}" in metrics else "–" for k in DEFAULT_KS]
        n = metrics["n"] if not isinstance(metrics["n"], dict) else f"{metrics['n']['min']}–{metrics['n']['max']}"
        lines.append(f"| {model} | {base} | " + " | ".join(cells) + f" | ours, {task_set(metrics)}, n = {n} |")
    return lines + [""]


def data_table(out_dirs: list[Path]) -> list[str]:
    """The seeds' "Data source | No. samples" beside ours (the first run's merge: every run of one
    experiment trains on the same merged dataset)."""
    manifest = json.loads((out_dirs[0] / "dataset" / "manifest.json").read_text(encoding="utf-8"))
    ours = {name: manifest["per_source"].get(command, {}).get("kept") for name, command in SOURCE_COMMANDS.items()}
    lines = ["### data", "", "| Data source | No. samples (seeds) | No. samples (ours) |", "|-|-:|-:|"]
    for name, label in SOURCE_LABELS.items():
        if name in PUBLISHED_DATA or ours[name]:
            seeds, mine = PUBLISHED_DATA.get(name), ours[name]
            lines.append(
                f"| {label} | {'–' if seeds is None else f'{seeds:,}'} | {'–' if mine is None else f'{mine:,}'} |"
            )
    total = sum(v for v in ours.values() if v)
    lines.append(f"| **Total** | **{sum(PUBLISHED_DATA.values()):,}** | **{total:,}** |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.seeds_table", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        dest="out_dirs",
        nargs="+",
        required=True,
        type=Path,
        metavar="OUT_DIR",
        help="pipeline output folders (output_dir)",
    )
    args = parser.parse_args(argv)
    try:
        runs = our_runs(args.out_dirs)
        lines = ["## Ours beside the seeds' published numbers", "", f"Published: {PUBLISHED_SOURCE}.", ""]
        lines += pass_table("humaneval", runs) + pass_table("mbpp", runs) + data_table(args.out_dirs)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
