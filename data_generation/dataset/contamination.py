"""The merge's two contamination layers over the records left after deduplication.

1. n-gram (dataset/decontaminate.py): n-grams of statements and solutions, normalised substrings.
2. Semantic (dataset/semantic.py): the records a benchmark task's tests, examples or embedding
   single out, on what the literal layer kept; optionally confirmed one by one by a teacher LLM.

Both write their drops to the ledger with the benchmark task, the evidence and (semantic) the score
and the benchmark's own text, so every removal can be read next to what it matched.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from data_generation.common.record import Record
from data_generation.dataset.decontaminate import BenchmarkDoc, Decontaminator
from data_generation.dataset.merge_files import Ledger
from data_generation.dataset.normalise import Vocab
from data_generation.dataset.semantic import SemanticConfig, SemanticHit, SemanticIndex
from data_generation.teacher import Decoding, Request, Teacher

log = logging.getLogger(__name__)
_TEXT = 1000  # characters of each text a semantic drop keeps (drops.jsonl)
CONFIRM_PROMPT = (
    "Are these two the same programming problem, i.e. would a correct solution to one also be a correct "
    "solution to the other? Answer with one word, yes or no.\n\nProblem A:\n{record}\n\nProblem B:\n{benchmark}"
)


@dataclass
class LayerReport:
    """What the semantic layer did, for the manifest."""

    flagged: int = 0
    dropped: int = 0
    cleared_by_teacher: list[dict[str, Any]] = field(default_factory=list)
    everyday_tasks: dict[str, int] = field(default_factory=dict)
    sandbox_note: str = ""


def ngram_layer(
    docs: list[BenchmarkDoc],
    cfg: Any,
    vocab: Vocab,
    ids: np.ndarray,
    offsets: np.ndarray,
    texts: list[str],
    keep: list[int],
    records: list[Record],
    ledger: Ledger,
) -> list[int]:
    """`ids`/`offsets`/`texts`: the kept records, token-encoded with `vocab` and as text."""
    checker = Decontaminator(
        docs, vocab, ngram=cfg.ngram, substring_min_words=cfg.substring_min_words, code_coverage=cfg.code_coverage
    )
    hits = checker.find(ids, offsets, texts)
    dropped = set()
    for hit in hits:
        rec = records[keep[hit.index]]
        ledger.drop(
            rec.source,
            f"contaminated:{hit.benchmark}",
            id=rec.id,
            layer="ngram",
            benchmark=hit.benchmark,
            task_id=hit.task_id,
            method=hit.method,
            evidence=hit.evidence,
            instruction=rec.instruction[:200],
        )
        dropped.add(keep[hit.index])
    return [i for i in keep if i not in dropped]


def semantic_layer(
    docs: list[BenchmarkDoc],
    semantic: SemanticConfig,
    records: list[Record],
    keep: list[int],
    ledger: Ledger,
    teacher: Teacher | None = None,
) -> tuple[list[int], LayerReport]:
    found = SemanticIndex(docs, semantic).find(
        [records[i].instruction for i in keep], [records[i].input for i in keep], [records[i].output for i in keep]
    )
    report = LayerReport(flagged=len(found.hits), everyday_tasks=found.everyday, sandbox_note=found.sandbox_note)
    answers = confirm(teacher, [records[keep[h.index]] for h in found.hits], found.hits) if teacher else None
    dropped = set()
    for n, hit in enumerate(found.hits):
        rec = records[keep[hit.index]]
        details = _drop_details(rec, hit)
        if answers is not None:
            details["teacher"] = answers[n]
            if not answers[n]["same"]:
                kept = {k: details[k] for k in ("id", "task_id", "method", "score")}
                report.cleared_by_teacher.append(kept)
                continue
        ledger.drop(rec.source, f"contaminated:{hit.benchmark}", **details)
        dropped.add(keep[hit.index])
    report.dropped = len(dropped)
    return [i for i in keep if i not in dropped], report


def _drop_details(rec: Record, hit: SemanticHit) -> dict[str, Any]:
    return {
        "id": rec.id,
        "layer": "semantic",
        "benchmark": hit.benchmark,
        "task_id": hit.task_id,
        "method": hit.method,
        "score": hit.score,
        "evidence": hit.evidence,
        "instruction": rec.instruction[:_TEXT],
        "other_text": hit.benchmark_text.strip()[:_TEXT],
    }


def confirm(teacher: Teacher, recs: Sequence[Record], hits: Sequence[SemanticHit]) -> list[dict[str, Any]]:
    """The teacher's verdict on each flagged pair: {"same": bool, "answer": its reply}. A reply that is
    neither yes nor no keeps the flag (the evidence stands; the answer is recorded)."""
    requests = [
        Request.chat(
            CONFIRM_PROMPT.format(record=f"{r.instruction}\n{r.input}".strip(), benchmark=h.benchmark_text.strip()),
            decoding=Decoding(temperature=0.0, max_tokens=8),
            tag=f"decontaminate:{h.benchmark}:{h.task_id}",
        )
        for r, h in zip(recs, hits)
    ]
    out = []
    for completion in teacher.complete_all(requests):
        reply = completion.choices[0].text.strip() if completion.choices else ""
        word = re.match(r"\W*(yes|no)\b", reply.lower())
        out.append({"same": word is None or word.group(1) == "yes", "answer": reply[:200], "model": completion.model})
    return out


def add_semantic_arguments(p: argparse.ArgumentParser, d: Any) -> None:
    """The merge's options for the semantic layer (`d`: a MergeConfig with the defaults)."""
    g = p.add_argument_group("semantic decontamination (dataset/semantic.py; on by default)")
    g.add_argument("--no-semantic", dest="semantic", action="store_false", help="skip the semantic layer")
    g.add_argument("--semantic-top-k", type=int, default=d.semantic_top_k, help="benchmark tasks tried per record")
    g.add_argument(
        "--semantic-min-cosine", type=float, default=d.semantic_min_cosine, help="nearest tasks below it are not tried"
    )
    g.add_argument(
        "--semantic-flag-cosine", type=float, default=d.semantic_flag_cosine, help="cosine that flags on its own"
    )
    g.add_argument(
        "--semantic-max-solvers",
        type=int,
        default=d.semantic_max_solvers,
        help="a task solved by more distinct records is an everyday task: passing it is not evidence",
    )
    g.add_argument(
        "--no-semantic-behaviour",
        dest="semantic_behaviour",
        action="store_false",
        help="do not run records' code against the benchmark tests",
    )
    g.add_argument(
        "--semantic-confirm", action="store_true", help="ask the teacher (--teacher ...) to confirm each flagged pair"
    )
    g.add_argument("--workers", type=int, default=d.workers, help="sandbox processes for the behaviour check")
    g.add_argument(
        "--allow-weak-sandbox", action="store_true", help="run the behaviour check where namespaces are refused"
    )
