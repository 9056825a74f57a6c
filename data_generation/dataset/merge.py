"""Merge source outputs into one dataset: normalise -> exact dedup -> near dedup -> decontaminate
(literal, then semantic: dataset/contamination.py) -> shuffle -> split -> write (Alpaca JSON, JSONL,
parquet, HF dataset) + manifest.json + report.md + drops.jsonl.

Every input row ends up either kept or dropped with exactly one reason, so the manifest always
satisfies: input == kept + sum(dropped). The whole output folder is built in a temporary sibling
and renamed into place, so a failed run leaves no partial dataset behind. One merge at a time per
output folder: a second one started meanwhile stops at once (exit 75, `common.output_lock`).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from data_generation.common.benchmarks import BENCHMARKS
from data_generation.common.defaults import DEFAULT_SEED
from data_generation.common.io import DataError
from data_generation.common.output_lock import output_lock
from data_generation.common.provenance import fingerprint, package_versions
from data_generation.common.record import Record
from data_generation.dataset import embed
from data_generation.dataset.contamination import LayerReport, add_semantic_arguments, ngram_layer, semantic_layer
from data_generation.dataset.decontaminate import DEFAULT_DECONTAMINATE, benchmark_versions, load_benchmark_docs
from data_generation.dataset.merge_files import Ledger, publish, read_inputs
from data_generation.dataset.minhash import find_near_duplicates
from data_generation.dataset.normalise import Vocab, dedup_key
from data_generation.dataset.quality_report import write_quality_report
from data_generation.dataset.semantic import SemanticConfig
from data_generation.teacher import Teacher, add_teacher_arguments, teacher_from_args

log = logging.getLogger(__name__)
FORMATS = ("json", "jsonl", "parquet", "hf")


@dataclass
class MergeConfig:
    inputs: list[str]
    output_dir: str
    near_dup: bool = True
    near_dup_threshold: float = 0.85
    num_perm: int = 128
    shingle: int = 5
    decontaminate: tuple[str, ...] = DEFAULT_DECONTAMINATE
    ngram: int = 10
    substring_min_words: int = 8
    code_coverage: float = 0.5
    semantic: bool = True
    semantic_top_k: int = SemanticConfig.top_k
    semantic_min_cosine: float = SemanticConfig.min_cosine
    semantic_flag_cosine: float = SemanticConfig.flag_cosine
    semantic_max_solvers: int = SemanticConfig.max_solvers
    semantic_behaviour: bool = True
    semantic_confirm: bool = False  # ask the teacher to confirm each flagged pair
    workers: int = 2  # sandbox processes of the semantic layer's behaviour check
    allow_weak_sandbox: bool = False
    benchmark_paths: dict[str, str] = field(default_factory=dict)  # name -> file or hub id; else its default
    seed: int = DEFAULT_SEED
    validation_size: float = 0.0
    formats: tuple[str, ...] = ("json", "jsonl")
    overwrite: bool = False

    @property
    def benchmark_sources(self) -> dict[str, str]:
        """Benchmark data the config names; the other benchmarks use their defaults."""
        return dict(self.benchmark_paths)

    def semantic_config(self) -> SemanticConfig:
        return SemanticConfig(
            top_k=self.semantic_top_k,
            min_cosine=self.semantic_min_cosine,
            flag_cosine=self.semantic_flag_cosine,
            max_solvers=self.semantic_max_solvers,
            behaviour=self.semantic_behaviour,
            workers=self.workers,
            allow_weak_sandbox=self.allow_weak_sandbox,
        )


def _exact_dedup(records: list[Record], ledger: Ledger) -> list[Record]:
    first: dict[bytes, str] = {}
    kept = []
    for rec in records:
        key = dedup_key(rec.instruction, rec.input, rec.output)
        if key in first:
            ledger.drop(
                rec.source, "exact_duplicate", id=rec.id, duplicate_of=first[key], instruction=rec.instruction[:200]
            )
            continue
        first[key] = rec.id
        kept.append(rec)
    return kept


def _concat(encoded: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    return (np.concatenate(encoded) if encoded else np.empty(0, np.uint64)), offsets


def _text(rec: Record) -> str:
    return f"{rec.instruction}\n{rec.input}\n{rec.output}"


def _near_dedup(cfg: MergeConfig, records: list[Record], encoded: list[np.ndarray], ledger: Ledger) -> list[int]:
    ids, offsets = _concat(encoded)
    dups = find_near_duplicates(
        ids, offsets, threshold=cfg.near_dup_threshold, num_perm=cfg.num_perm, shingle=cfg.shingle, seed=cfg.seed
    )
    dropped = set()
    for d in dups:
        rec = records[d.index]
        ledger.drop(
            rec.source,
            "near_duplicate",
            id=rec.id,
            duplicate_of=records[d.kept_index].id,
            jaccard=round(d.jaccard, 4),
            instruction=rec.instruction[:200],
        )
        dropped.add(d.index)
    return [i for i in range(len(records)) if i not in dropped]


def _decontaminate(
    cfg: MergeConfig,
    vocab: Vocab,
    records: list[Record],
    encoded: list[np.ndarray],
    keep: list[int],
    ledger: Ledger,
    teacher: Teacher | None,
) -> tuple[list[int], LayerReport | None]:
    if not cfg.decontaminate:
        return keep, None
    docs = load_benchmark_docs(cfg.decontaminate, cfg.benchmark_sources)
    ids, offsets = _concat([encoded[i] for i in keep])
    keep = ngram_layer(docs, cfg, vocab, ids, offsets, [_text(records[i]) for i in keep], keep, records, ledger)
    if not cfg.semantic:
        return keep, None
    return semantic_layer(docs, cfg.semantic_config(), records, keep, ledger, teacher)


def _split(cfg: MergeConfig, records: list[Record]) -> dict[str, list[Record]]:
    records = list(records)
    random.Random(cfg.seed).shuffle(records)
    size = cfg.validation_size
    # A validation split that was asked for holds at least one record, however small the fraction.
    n_val = int(size) if size >= 1 else max(1, int(round(size * len(records)))) if size > 0 else 0
    if n_val >= len(records) and n_val > 0:
        raise ValueError(f"validation size {size} leaves no training records (only {len(records)} kept)")
    splits = {"train": records[n_val:]}
    if n_val:
        splits["validation"] = records[:n_val]
    return splits


def build_manifest(
    cfg: MergeConfig,
    ledger: Ledger,
    splits: dict[str, list[Record]],
    inputs: list[dict],
    timings: dict[str, float],
    semantic: LayerReport | None = None,
) -> dict:
    kept_by_source = Counter(r.source for recs in splits.values() for r in recs)
    dropped_total = Counter()
    for reasons in ledger.dropped.values():
        dropped_total.update(reasons)
    n_in, n_kept = sum(ledger.input_by_source.values()), sum(kept_by_source.values())
    if n_in != n_kept + sum(dropped_total.values()):
        raise AssertionError(f"ledger does not balance: {n_in} in, {n_kept} kept, {dict(dropped_total)} dropped")
    # Through JSON so the returned manifest equals the one written (tuples become lists).
    config = json.loads(json.dumps({k: v for k, v in asdict(cfg).items() if k not in ("output_dir", "overwrite")}))
    sources = sorted(set(ledger.input_by_source) | set(ledger.dropped))
    return {
        "counts": {
            "input": n_in,
            "kept": n_kept,
            "dropped": dict(sorted(dropped_total.items())),
            "splits": {name: len(recs) for name, recs in splits.items()},
        },
        "per_source": {
            s: {
                "input": ledger.input_by_source[s],
                "kept": kept_by_source[s],
                "dropped": dict(sorted(ledger.dropped[s].items())),
            }
            for s in sources
        },
        "per_language": dict(Counter(r.language for recs in splits.values() for r in recs).most_common()),
        "contaminated_tasks": _contaminated_tasks(ledger.drops),
        "inputs": inputs,
        "config": config,
        "config_fingerprint": fingerprint(config),
        "versions": package_versions(),
        "benchmarks": benchmark_versions(cfg.decontaminate, cfg.benchmark_sources),
        "semantic": None if semantic is None else {"model": embed.version(), **asdict(semantic)},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _contaminated_tasks(drops: list[dict]) -> dict[str, dict[str, int]]:
    tasks: dict[str, Counter] = defaultdict(Counter)
    for d in drops:
        if d["reason"].startswith("contaminated:"):
            tasks[d["reason"].split(":", 1)[1]][d["task_id"]] += 1
    return {bench: dict(sorted(c.items())) for bench, c in sorted(tasks.items())}


def merge(cfg: MergeConfig, teacher: Teacher | None = None) -> dict:
    """Run the whole merge; returns the manifest (also written to OUTPUT_DIR/manifest.json). Holds the
    output folder's lock throughout (OutputBusy when another merge holds it), from before it looks
    at what the folder holds. `teacher` confirms the semantic layer's pairs when
    `cfg.semantic_confirm` is set."""
    if cfg.semantic_confirm and teacher is None:
        raise ValueError("semantic_confirm needs a teacher")
    with output_lock(cfg.output_dir):
        return _merge(cfg, teacher if cfg.semantic_confirm else None)


def _merge(cfg: MergeConfig, teacher: Teacher | None) -> dict:
    out = Path(cfg.output_dir)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    bad = set(cfg.formats) - set(FORMATS) or set(cfg.decontaminate) - set(BENCHMARKS)
    if bad:
        raise ValueError(f"unknown format/benchmark {sorted(bad)}; formats: {FORMATS}, benchmarks: {tuple(BENCHMARKS)}")
    ledger, timings, t0 = Ledger(), {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        timings[name], t0 = time.perf_counter() - t0, time.perf_counter()

    records, inputs = read_inputs(cfg.inputs, ledger)
    lap("read")
    records = _exact_dedup(records, ledger)
    lap("exact_dedup")
    vocab = Vocab()
    encoded = [vocab.encode(_text(r)) for r in records]
    lap("tokenize")
    keep = _near_dedup(cfg, records, encoded, ledger) if cfg.near_dup else list(range(len(records)))
    lap("near_dedup")
    keep, semantic = _decontaminate(cfg, vocab, records, encoded, keep, ledger, teacher)
    lap("decontaminate")
    splits = _split(cfg, [records[i] for i in keep])
    manifest = build_manifest(cfg, ledger, splits, inputs, timings, semantic)
    publish(cfg.formats, splits, manifest, ledger, out)
    # The quality report (quality.md, quality.json, plots) beside the dataset: dataset/quality_report.py.
    write_quality_report(out, splits=splits, manifest=manifest, drops=ledger.drops)
    return manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = MergeConfig(inputs=[], output_dir="")
    p.add_argument(
        "--input",
        dest="inputs",
        nargs="+",
        required=True,
        metavar="FILE",
        help="source outputs (.jsonl, .json, .parquet or save_to_disk folders)",
    )
    p.add_argument("--output-dir", required=True, help="folder for the dataset, manifest.json and report.md")
    p.add_argument("--no-near-dup", dest="near_dup", action="store_false", help="skip MinHash near-dup removal")
    p.add_argument("--near-dup-threshold", type=float, default=d.near_dup_threshold, help="Jaccard on word shingles")
    p.add_argument("--num-perm", type=int, default=d.num_perm, help="MinHash permutations")
    p.add_argument("--shingle", type=int, default=d.shingle, help="words per shingle")
    p.add_argument(
        "--decontaminate",
        default=",".join(d.decontaminate),
        help=f"comma list of benchmarks to remove overlap with ({','.join(BENCHMARKS)}); empty to skip",
    )
    p.add_argument("--ngram", type=int, default=d.ngram, help="words per contamination n-gram")
    p.add_argument(
        "--substring-min-words",
        type=int,
        default=d.substring_min_words,
        help="shortest benchmark statement (in words) searched for as a substring",
    )
    p.add_argument(
        "--code-coverage",
        type=float,
        default=d.code_coverage,
        help="fraction of a problem's solution/test n-grams a record must share to count",
    )
    add_semantic_arguments(p, d)
    add_teacher_arguments(p)
    for bench in BENCHMARKS.values():  # the same data options generate and evaluate take
        p.add_argument(bench.path_flag, dest=f"path_{bench.name}", metavar="PATH", help=bench.path_help)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--validation-size", type=float, default=d.validation_size, help="fraction (<1) or count")
    p.add_argument("--formats", default=",".join(d.formats), help=f"comma list of {','.join(FORMATS)}")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    cfg = MergeConfig(
        inputs=args.inputs,
        output_dir=args.output_dir,
        near_dup=args.near_dup,
        near_dup_threshold=args.near_dup_threshold,
        num_perm=args.num_perm,
        shingle=args.shingle,
        decontaminate=tuple(x for x in args.decontaminate.split(",") if x),
        ngram=args.ngram,
        substring_min_words=args.substring_min_words,
        code_coverage=args.code_coverage,
        semantic=args.semantic,
        semantic_top_k=args.semantic_top_k,
        semantic_min_cosine=args.semantic_min_cosine,
        semantic_flag_cosine=args.semantic_flag_cosine,
        semantic_max_solvers=args.semantic_max_solvers,
        semantic_behaviour=args.semantic_behaviour,
        semantic_confirm=args.semantic_confirm,
        workers=args.workers,
        allow_weak_sandbox=args.allow_weak_sandbox,
        benchmark_paths={n: getattr(args, f"path_{n}") for n in BENCHMARKS if getattr(args, f"path_{n}", None)},
        seed=args.seed,
        validation_size=args.validation_size,
        formats=tuple(x for x in args.formats.split(",") if x),
        overwrite=args.overwrite,
    )
    try:
        manifest = merge(cfg, teacher_from_args(args) if cfg.semantic_confirm else None)
    except (FileExistsError, ValueError) as err:
        raise DataError(cfg.output_dir, None, str(err)) from None
    c = manifest["counts"]
    log.info(
        "merged %d rows -> kept %d (%s); dropped %s; wrote %s",
        c["input"],
        c["kept"],
        c["splits"],
        c["dropped"] or "none",
        cfg.output_dir,
    )
    return 0
