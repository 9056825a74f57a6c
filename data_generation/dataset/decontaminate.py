"""Decontamination against the registered benchmarks: word n-gram overlap plus normalised substring.

- n-grams: statement n-grams (MBPP's task sentence, the HumanEval docstring) count on any overlap;
  solution n-grams (reference code, docstrings removed) count only when a record covers a set
  fraction of the problem's code n-grams (code idioms are shared by many problems). Windows are
  matched by 64-bit hash in numpy.
- substring: a benchmark's problem statement found inside a record, after lower-casing and folding
  punctuation/whitespace, at word boundaries. Statements shorter than `substring_min_words` are
  skipped: short phrases are not evidence.
The problems are the ones evaluation runs (each benchmark's loader, default split); each benchmark
says what its statement and solution are. Each hit names the benchmark task and the matched words,
so every removal can be audited.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

import ahocorasick
import numpy as np

from data_generation.common.benchmarks import BENCHMARKS, get_benchmark
from data_generation.common.benchmarks.base import DataChoice, Problem
from data_generation.dataset.normalise import Vocab, ngram_hashes, phrase, words

DEFAULT_DECONTAMINATE = tuple(name for name, bench in BENCHMARKS.items() if bench.decontaminate_by_default)
# A few shared windows of a short solution are an idiom (a bubble sort inside MBPP/101), not a copy.
MIN_SHARED_CODE_NGRAMS = 6


@dataclass(frozen=True)
class BenchmarkDoc:
    benchmark: str
    task_id: str
    code: str  # the reference solution (signature included, docstrings removed): code n-grams
    statement: str  # the problem statement: statement n-grams and the substring check
    problem: Problem | None = field(default=None, compare=False)  # the task itself (semantic layer's tests)


@dataclass(frozen=True)
class Contamination:
    index: int  # position of the record in the batch checked
    benchmark: str
    task_id: str
    method: str  # "ngram" or "substring"
    evidence: str


def load_benchmark_docs(
    benchmarks: tuple[str, ...], sources: Mapping[str, str | os.PathLike | None] | None = None
) -> list[BenchmarkDoc]:
    """The problems of `benchmarks` as decontamination sees them; `sources` gives a benchmark's data
    path (a file, a folder or a hub id) where it is not the benchmark's default. Benchmarks are read in
    registry order whatever the order asked for, so the index (and its tie-breaks) is always the same."""
    for name in benchmarks:
        get_benchmark(name)  # an unknown name says which exist
    docs: list[BenchmarkDoc] = []
    for bench in BENCHMARKS.values():
        if bench.name not in benchmarks:
            continue
        source = (sources or {}).get(bench.name)
        for p in bench.load(DataChoice(source=None if source is None else str(source))):
            docs.append(BenchmarkDoc(bench.name, bench.task_name(p), bench.solution(p), bench.statement(p), p))
    return docs


def benchmark_versions(
    benchmarks: tuple[str, ...], sources: Mapping[str, str | os.PathLike | None] | None = None
) -> dict[str, str]:
    """The versions of the benchmark files checked against (for a manifest), in registry order."""
    versions: dict[str, str] = {}
    for bench in BENCHMARKS.values():
        if bench.name in benchmarks:
            source = (sources or {}).get(bench.name)
            versions.update(bench.versions(DataChoice(source=None if source is None else str(source))))
    return versions


class Decontaminator:
    """Index benchmark problems once; check any number of token-encoded records against them.

    Two n-gram rules, because code is full of idioms that every benchmark shares
    (`for i in range(n)`, a bubble sort, a prime test): any shared n-gram of a *statement* is
    evidence, but the *reference solution* counts only when a record covers at least
    `code_coverage` of that problem's distinct code n-grams. Windows with fewer than
    `min_distinct` distinct informative words (longer than one character, not a number) are never
    indexed: "0 0 0 ...", "1 2 3 ... a b c" and "arr j arr j 1" are not evidence of anything.
    """

    def __init__(
        self,
        docs: list[BenchmarkDoc],
        vocab: Vocab,
        *,
        ngram: int = 10,
        substring_min_words: int = 8,
        code_coverage: float = 0.5,
        min_distinct: int = 4,
    ) -> None:
        self.docs, self.ngram, self.code_coverage, self.min_distinct = docs, ngram, code_coverage, min_distinct
        self._statement: dict[int, tuple[int, str]] = {}  # n-gram hash -> (doc, words)
        self._code: dict[int, list[int]] = {}  # n-gram hash -> docs whose solution/tests contain it
        self._code_size: list[int] = []
        shared_phrasing: set[int] = set()
        for i, doc in enumerate(docs):
            for h, text in self._grams(vocab, doc.statement).items():
                if self._statement.setdefault(h, (i, text))[0] != i:
                    shared_phrasing.add(h)
            grams = self._grams(vocab, doc.code)
            self._code_size.append(len(grams))
            for h in grams:
                self._code.setdefault(h, []).append(i)
        for h in shared_phrasing:  # phrasing two problems share ("write a function that takes") is generic
            del self._statement[h]
        self._sorted = np.unique(np.fromiter([*self._statement, *self._code], dtype=np.uint64))
        self._automaton = self._build_automaton(substring_min_words)

    def _grams(self, vocab: Vocab, text: str) -> dict[int, str]:
        """Distinct informative n-grams of one text: hash -> the words (for evidence)."""
        ids, ws = vocab.encode(text), words(text)
        hashes, starts = ngram_hashes(ids, np.array([0, len(ids)]), self.ngram)
        out = {}
        for h, s in zip(hashes.tolist(), starts.tolist()):
            window = ws[s : s + self.ngram]
            if len({w for w in window if len(w) > 1 and not w.isdigit()}) >= self.min_distinct:
                out.setdefault(h, " ".join(window))
        return out

    def _build_automaton(self, min_words: int) -> ahocorasick.Automaton | None:
        automaton = ahocorasick.Automaton()
        for i, doc in enumerate(self.docs):
            key = phrase(doc.statement)
            if len(key.split()) >= min_words and key not in automaton:
                automaton.add_word(key, i)
        if len(automaton) == 0:
            return None
        automaton.make_automaton()
        return automaton

    def find(self, ids: np.ndarray, offsets: np.ndarray, texts: list[str]) -> list[Contamination]:
        """Contaminated records among a batch (ids/offsets from the same Vocab; texts for substrings).

        n-grams are compared by 64-bit hash; with ~1e7 record windows against ~1e5 benchmark
        n-grams the chance of any collision is about 1e-7, so hits are not re-checked word by word.
        """
        hashes, starts = ngram_hashes(ids, offsets, self.ngram)
        hit = np.flatnonzero(np.isin(hashes, self._sorted))
        rec_of = np.searchsorted(offsets, starts[hit], side="right") - 1
        per_record: dict[int, set[int]] = {}
        for h, rec in zip(hashes[hit].tolist(), rec_of.tolist()):
            per_record.setdefault(rec, set()).add(h)
        found = {rec: c for rec, grams in per_record.items() if (c := self._judge(rec, grams))}
        if self._automaton is not None:
            for rec, text in enumerate(texts):
                if rec not in found:
                    for _, doc in self._automaton.iter(phrase(text)):
                        d = self.docs[doc]
                        found[rec] = Contamination(rec, d.benchmark, d.task_id, "substring", d.statement)
                        break
        return [found[k] for k in sorted(found)]

    def _judge(self, rec: int, grams: set[int]) -> Contamination | None:
        for h in sorted(grams):
            if h in self._statement:
                doc, text = self._statement[h]
                return Contamination(rec, self.docs[doc].benchmark, self.docs[doc].task_id, "statement_ngram", text)
        shared: dict[int, int] = {}
        for h in grams:
            for doc in self._code.get(h, ()):
                shared[doc] = shared.get(doc, 0) + 1
        best = max(shared, key=lambda d: (shared[d] / self._code_size[d], -d), default=None)
        if (
            best is None
            or shared[best] < MIN_SHARED_CODE_NGRAMS
            or shared[best] / self._code_size[best] < self.code_coverage
        ):
            return None
        d = self.docs[best]
        cover = shared[best] / self._code_size[best]
        return Contamination(
            rec,
            d.benchmark,
            d.task_id,
            "code_ngram",
            f"{shared[best]}/{self._code_size[best]} code n-grams ({cover:.0%})",
        )
