"""Semantic decontamination: benchmark problems reworded past the n-gram layer.

Two stages, because no cosine separates "the same task in new words" from "a similar everyday task"
(a rewording of MBPP's "sum of the digits" and CodeAlpaca's own "sum of the digits of a number" sit
at the same similarity; measured in data_generation/README.md):

1. Retrieval. Every record's instruction (+ input) and every benchmark problem statement are
   embedded (dataset/embed.py); each record keeps its `top_k` nearest tasks with cosine at least
   `min_cosine`.
2. Evidence, per (record, candidate task):
   - behaviour: the record's Python function passes the task's own tests in the sandbox
     (dataset/behaviour.py): the same problem, whatever the words. Only for *specific* tasks: one
     that more than `max_solvers` distinct records of the dataset solve is an everyday task (a sort,
     a palindrome test, the sum of two numbers), and solving it is no sign of having seen the
     benchmark (those pairs are counted in the manifest, not dropped);
   - literals: the record states the task's own examples or test inputs (dataset/literals.py), which
     survive a rewording and a translation into another language; literals used by more than two
     tasks or by many records do not count;
   - embedding: the cosine alone is at least `flag_cosine`.
   Optionally a teacher LLM confirms each flagged pair ("are these the same programming problem?");
   a "no" keeps the record, and every answer is kept in the drops and the manifest.

Thresholds are calibrated on tests/fixtures/decontamination/calibration_pairs.jsonl against the real
CodeAlpaca sample (scripts/bench/calibrate_semantic.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from data_generation.common.benchmarks import BENCHMARKS
from data_generation.dataset import behaviour, embed
from data_generation.dataset.decontaminate import BenchmarkDoc
from data_generation.dataset.literals import drop_words, literals, prose_words, rare, strong

log = logging.getLogger(__name__)
_ROWS_PER_BLOCK = 4096  # records scored against every task at a time (4096 x tasks float32)


@dataclass(frozen=True)
class SemanticConfig:
    top_k: int = 10
    min_cosine: float = 0.3
    flag_cosine: float = 0.95
    max_solvers: int = 1
    behaviour: bool = True
    workers: int = 2
    allow_weak_sandbox: bool = False


@dataclass(frozen=True)
class SemanticHit:
    index: int  # position of the record in the batch checked
    benchmark: str
    task_id: str
    method: str  # "behaviour", "literals" or "embedding"
    score: float  # the cosine of the pair
    evidence: str
    benchmark_text: str


@dataclass
class SemanticResult:
    hits: list[SemanticHit]
    everyday: dict[str, int]  # benchmark task -> distinct records solving it (too many to be evidence)
    sandbox_note: str = ""


def record_text(instruction: str, input_: str) -> str:
    return f"{instruction}\n{input_}".strip()


class SemanticIndex:
    """The benchmark side, embedded and made checkable once per merge."""

    def __init__(self, docs: Sequence[BenchmarkDoc], cfg: SemanticConfig = SemanticConfig()) -> None:
        self.docs, self.cfg = list(docs), cfg
        self.vectors = embed.embed([d.statement for d in self.docs])
        self.checks: list[behaviour.TaskCheck | None] = []
        own: list[set[str]] = []
        for d in self.docs:
            p = d.problem
            program = BENCHMARKS[d.benchmark].reference_program(p) if p is not None else ""
            self.checks.append(behaviour.task_check(d.benchmark, d.task_id, p, program) if p is not None else None)
            own.append(literals(f"{p.prompt}\n{p.tests}") if p is not None else set())
        distinctive = rare(own, max_count=2)
        self.literals = [lits & distinctive for lits in own]
        self._by_literal: dict[str, list[int]] = {}
        for j, lits in enumerate(self.literals):
            for lit in lits:
                self._by_literal.setdefault(lit, []).append(j)

    def find(self, instructions: Sequence[str], inputs: Sequence[str], outputs: Sequence[str]) -> SemanticResult:
        """The records that are a benchmark task by some evidence; one hit per record, by behaviour,
        then literals, then embedding."""
        vectors = embed.embed([record_text(i, x) for i, x in zip(instructions, inputs)])
        tasks, cos = self._nearest(vectors)
        result = SemanticResult([], {})
        hits: dict[int, SemanticHit] = {}
        if self.cfg.behaviour:
            self._by_behaviour(tasks, vectors, outputs, result, hits)
        texts = [f"{i}\n{x}\n{o}" for i, x, o in zip(instructions, inputs, outputs)]
        self._by_literals(texts, vectors, hits)
        for rec in np.flatnonzero(cos[:, 0] >= self.cfg.flag_cosine).tolist():
            if rec not in hits:
                hits[rec] = self._hit(rec, int(tasks[rec, 0]), "embedding", float(cos[rec, 0]), "")
        result.hits = [hits[k] for k in sorted(hits)]
        return result

    def _nearest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tasks, cosines), each (records, top_k), nearest first; task -1 where below `min_cosine`."""
        k = min(self.cfg.top_k, len(self.docs))
        tasks = np.full((len(vectors), k), -1, dtype=np.int64)
        cos = np.zeros((len(vectors), k), dtype=np.float32)
        for lo in range(0, len(vectors), _ROWS_PER_BLOCK):
            sims = vectors[lo : lo + _ROWS_PER_BLOCK] @ self.vectors.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")
            top, top_sims = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)
            tasks[lo : lo + len(top)] = np.where(top_sims >= self.cfg.min_cosine, top, -1)
            cos[lo : lo + len(top)] = top_sims
        return tasks, cos

    def _by_behaviour(
        self, tasks: np.ndarray, vectors: np.ndarray, outputs: Sequence[str], result: SemanticResult, hits: dict
    ) -> None:
        index = {id(c): j for j, c in enumerate(self.checks) if c is not None}
        jobs = []
        for rec, output in enumerate(outputs):
            near = [c for j in tasks[rec] if j >= 0 and (c := self.checks[j]) is not None]
            code = behaviour.python_code(output) if near else None
            if code is not None:
                jobs.append((rec, code, near))
        try:
            passes = list(behaviour.run_checks(jobs, workers=self.cfg.workers, allow_weak=self.cfg.allow_weak_sandbox))
        except behaviour.SandboxError as exc:
            # Data work goes on where evaluation could not: the other evidence still counts, and the
            # manifest says what was skipped.
            result.sandbox_note = f"behaviour check skipped: {exc}"
            log.warning("semantic decontamination: %s", result.sandbox_note)
            return
        solvers = Counter(key for key in {(p.record, index[id(p.task)]) for p in passes})
        solved_by = Counter(j for _, j in solvers)
        for p in passes:
            j = index[id(p.task)]
            if solved_by[j] > self.cfg.max_solvers:
                result.everyday[f"{self.docs[j].benchmark}:{self.docs[j].task_id}"] = solved_by[j]
            elif p.record not in hits:
                score = float(vectors[p.record] @ self.vectors[j])
                evidence = f"passes the task's tests as {p.function}()"
                hits[p.record] = self._hit(p.record, j, "behaviour", score, evidence)

    def _by_literals(self, texts: Sequence[str], vectors: np.ndarray, hits: dict) -> None:
        words = prose_words([*texts, *(d.statement for d in self.docs)])
        own = [drop_words(literals(t), words) for t in texts]
        usual = set().union(*own) - rare(own, max_count=max(2, len(texts) // 1000))
        for rec, lits in enumerate(own):
            if rec in hits:
                continue
            shared: dict[int, set[str]] = {}
            for lit in lits - usual:
                for j in self._by_literal.get(lit, ()):
                    shared.setdefault(j, set()).add(lit)
            found = [(float(vectors[rec] @ self.vectors[j]), j) for j, s in shared.items() if strong(s)]
            found = [(c, j) for c, j in found if c >= self.cfg.min_cosine]
            if found:
                c, j = max(found)
                shown = ", ".join(sorted(x[2:] for x in shared[j]))[:300]
                hits[rec] = self._hit(rec, j, "literals", c, f"states the task's own values: {shown}")

    def _hit(self, rec: int, j: int, method: str, score: float, evidence: str) -> SemanticHit:
        d = self.docs[j]
        return SemanticHit(
            rec, d.benchmark, d.task_id, method, round(score, 4), evidence or f"cosine {score:.3f}", d.statement
        )
