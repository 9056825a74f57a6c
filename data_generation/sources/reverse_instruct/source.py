"""Reverse instruction: real functions -> problem statements -> complete, checked programs.

Functions are harvested with tree-sitter (`harvest`, `corpus`, `dataset_functions`) from
directories, a Hugging Face dataset, or by default from the Python standard library and the other
languages' sources found on the machine. Each *step* takes the next
`snippets_per_request * requests_per_step` functions and runs them through two teacher rounds and
the program checks (`step.StepRun`: statements, filters, programs, checks).

`--paths` and `--stdlib` combine: the bundled multi-language sample `data/samples/functions` plus
the running Python's standard library finds functions in all ten languages on any machine;
`--max-lines` keeps only short functions (a small teacher copies those whole). With a teacher that
starts its replies (the local one), round 1 stops at the end of a single statement's paragraph and
round 2 where the code block closes, so no tokens go to text that is thrown away.

Every function taken ends as exactly one record (in the output journal) or one reject (in the
rejects file beside it, with its reason, statement and program — never in the dataset). Resume:
records of a step go to the journal first, then the step's rejects and a `step_done` marker to the
rejects file in one fsynced write. A re-run keeps the steps that have a marker and all their
records, cuts the rest from both files, and carries on after the last function they account for
(`resume`), also with a larger `--limit`; with the teacher cache it redoes nothing. A re-run whose
corpus no longer starts with the functions done, or whose settings would make other records
(`resume_settings`), stops before it cuts anything.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sysconfig
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from data_generation.common.record import Record
from data_generation.common.rouge import RougeLFilter
from data_generation.common.treesitter import LANGUAGES
from data_generation.sources.base import ResumableSource, SourceStats, log_step
from data_generation.sources.filters import FilterConfig
from data_generation.sources.resume_settings import templates_sha256
from data_generation.sources.reverse_instruct import config as options
from data_generation.sources.reverse_instruct import corpus
from data_generation.sources.reverse_instruct import prompts as ri
from data_generation.sources.reverse_instruct.config import ReverseInstructConfig
from data_generation.sources.reverse_instruct.dataset_functions import iter_dataset_snippets
from data_generation.sources.reverse_instruct.harvest import Deduper, HarvestStats, harvest_paths
from data_generation.sources.reverse_instruct.harvest import FilterConfig as HarvestFilter
from data_generation.sources.reverse_instruct.rejects import RejectsFile
from data_generation.sources.reverse_instruct.resume import continue_after, finished_functions
from data_generation.sources.reverse_instruct.snippets import Snippet
from data_generation.sources.reverse_instruct.step import StepRun
from data_generation.teacher import Teacher, add_teacher_arguments, teacher_from_args

log = logging.getLogger(__name__)


class ReverseInstructSource(ResumableSource):
    name: ClassVar[str] = "reverse-instruct"
    # a larger limit only sends more functions; the check workers only pace the checks
    resume_may_change: ClassVar[frozenset[str]] = frozenset({"limit", "check_workers"})

    def __init__(self, config: ReverseInstructConfig, teacher: Teacher, rejects_path: str | Path) -> None:
        self.cfg, self.teacher = config, teacher
        self.rejects_path = Path(config.rejects or rejects_path)
        self.rejects: RejectsFile | None = None  # read by `resume`: only once the run holds its lock
        self._todo: Iterator[tuple[int, Snippet]] | None = None  # numbered functions still to send
        self.filters = FilterConfig(min_words=config.min_words, max_words=config.max_words)
        self.pool = RougeLFilter(config.threshold)
        self.harvest = HarvestStats()
        self.step = 0
        self.kept_languages: Counter = Counter()  # records per language, over the whole (resumed) run
        self.corpus_summary: dict[str, Any] = {}
        self.sent = 0  # functions sent to the teacher so far, over the whole (resumed) run
        self.stop_reason: str | None = None  # never set: a run ends when its functions are done
        self.on_step: Callable[[], None] | None = None  # called after each finished step (the CLI's manifest)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        options.add_arguments(parser)
        add_teacher_arguments(parser)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ReverseInstructSource":
        try:
            cfg = options.config_from_args(args)
        except ValueError as exc:  # an impossible combination of options: say which, no traceback
            raise SystemExit(f"reverse-instruct: {exc}") from None
        return cls(cfg, teacher_from_args(args), Path(args.output).with_suffix(".rejects.jsonl"))

    def config(self) -> dict[str, Any]:
        return {
            **asdict(self.cfg),
            "rejects": str(self.rejects_path),
            "teacher": {"model": self.teacher.model},
            "prompts_sha256": templates_sha256(ri.template_names(compact=self.cfg.compact_prompts)),
        }

    def side_files(self) -> list[Path]:
        return [self.rejects_path]

    def summary(self) -> dict[str, Any]:
        """Manifest extras: the corpus, harvest counts, and per-language records and reject reasons
        over the whole run (resumed runs included: rejects come from the rejects file)."""
        per_language: dict[str, Any] = defaultdict(lambda: {"records": 0, "rejected": Counter()})
        for lang, n in self.kept_languages.items():
            per_language[lang]["records"] = n
        for row in self.rejects.rows if self.rejects else []:
            per_language[row["language"]]["rejected"][row["reason"]] += 1
        languages = {
            lang: {
                "functions": v["records"] + sum(v["rejected"].values()),
                "records": v["records"],
                "rejected": dict(sorted(v["rejected"].items())),
            }
            for lang, v in sorted(per_language.items())
        }
        return {
            "teacher_usage": self.teacher.usage(),
            "steps": self.step,
            "functions_sent": self.sent,
            "corpus": self.corpus_summary,
            "harvest": self.harvest.as_dict(),
            "languages": languages,
            "rejects_file": str(self.rejects_path),
        }

    def close(self) -> None:
        self.teacher.close()
        if self.rejects is not None:
            self.rejects.close()

    # ------------------------------------------------------------ resuming

    def resume(self, done: list[Record]) -> int:
        """Keep the steps that finished (marker in the rejects file, all their records in the
        journal); return how many journal records that is. The functions they account for are
        harvested again and checked, and the run goes on after them (`resume.continue_after`); a
        ValueError, before anything is cut, when that cannot be done exactly. Pooled statements come
        back in order."""
        if any(r.source != self.name or not isinstance(r.meta.get("step"), int) for r in done):
            raise ValueError(
                "the output file holds records that are not from a reverse-instruct run; "
                "choose a new --output (reverse-instruct appends to it, to resume)"
            )
        self.rejects = RejectsFile(self.rejects_path)
        per_step = Counter(r.meta["step"] for r in done)
        self.step = 0
        while self.step in self.rejects.done and self.rejects.done[self.step] == per_step.get(self.step, 0):
            self.step += 1
        keep = sum(1 for r in done if r.meta["step"] < self.step)
        finished = finished_functions(done[:keep], [row for row in self.rejects.rows if row["step"] < self.step])
        self._todo = continue_after(self._snippets(), finished, self.cfg.limit)
        if keep != len(done) or self.rejects.after(self.step):
            log.warning("step %d was cut by a crash: it is run again", self.step)
        self.rejects.truncate(self.step)
        self.sent = len(finished)  # each function sent is one record or one reject
        pooled = [(r.meta["index"], r.instruction) for r in done[:keep]]
        pooled += [(row["index"], row["statement"]) for row in self.rejects.rows if row.get("pooled")]
        for _, statement in sorted(pooled):
            self.pool.add(statement)
        self.kept_languages.update(r.language for r in done[:keep])
        if self.step:
            log.info("resuming at step %d, function %d (%d records kept)", self.step, self.sent, keep)
        return keep

    # ------------------------------------------------------------ generating

    def records(self, stats: SourceStats) -> Iterator[Record]:
        for batch in self.batches(stats):
            yield from batch

    def batches(self, stats: SourceStats) -> Iterator[list[Record]]:
        """One list of records per step; the step's rejects and marker are written after the
        records were taken (and appended to the journal by the caller)."""
        if self.rejects is None or self._todo is None:  # not resumed by the CLI: a run from the start
            self.resume([])
        rejects_file, todo = self.rejects, self._todo
        assert rejects_file is not None and todo is not None
        while chunk := list(itertools.islice(todo, self.cfg.step_size)):
            run = StepRun(self.name, self.cfg, self.teacher, self.filters, self.pool, self.step)
            records, rejects = run.run(chunk, stats)
            yield records
            rejects_file.append_step(self.step, rejects, kept=len(records))
            self.kept_languages.update(r.language for r in records)
            self.sent += len(chunk)
            log_step(
                log,
                self.name,
                self.step,
                len(records),
                Counter(row["reason"] for row in rejects),
                f"{sum(self.kept_languages.values())} records from {self.sent} functions"
                + (f" of at most {self.cfg.limit}" if self.cfg.limit else ""),
            )
            self.step += 1
            if self.on_step is not None:
                self.on_step()

    def _snippets(self) -> Iterator[Snippet]:
        """Functions in a fixed order: round-robin over the languages of the paths or the default
        corpus (so a --limit sample covers them all), then the dataset's rows in order."""
        cfg, langs = self.cfg, self.cfg.languages or sorted(LANGUAGES)
        limits = HarvestFilter() if cfg.max_lines is None else HarvestFilter(max_lines=cfg.max_lines)
        if not cfg.paths and not cfg.dataset:
            found = corpus.default_corpus()
            self.corpus_summary = {lang: [str(p) for p in roots] for lang, roots in found.items()}
            log.info(
                "default corpus (the Python stdlib and the sources found here):\n%s", corpus.describe_corpus(found)
            )
            yield from _round_robin(
                [
                    corpus.harvest_corpus({lang: found[lang]}, [lang], cfg.per_language, self.harvest, limits)
                    for lang in langs
                    if found.get(lang)
                ]
            )
            return
        stdlib = sysconfig.get_paths()["stdlib"] if cfg.stdlib else None
        self.corpus_summary = {"paths": list(cfg.paths), "stdlib": stdlib, "dataset": cfg.dataset}
        if cfg.paths or stdlib:
            yield from _round_robin([self._language_stream(lang, stdlib, limits) for lang in langs])
        if cfg.dataset:
            yield from iter_dataset_snippets(
                cfg.dataset,
                code_column=cfg.code_column,
                language_column=cfg.language_column,
                path_column=cfg.path_column,
                repo_column=cfg.repo_column,
                license_column=cfg.license_column,
                split=cfg.split,
                languages=cfg.languages or None,
                quota=cfg.per_language,
                stats=self.harvest,
                cfg=limits,
            )

    def _language_stream(self, lang: str, stdlib: str | None, limits: HarvestFilter) -> Iterator[Snippet]:
        """One language's functions: from the paths first, then (Python) from the standard library,
        with one dedup across both."""
        dedup = Deduper()
        if self.cfg.paths:
            yield from harvest_paths(self.cfg.paths, [lang], self.cfg.per_language, self.harvest, limits, dedup)
        if stdlib and lang == "python":
            yield from harvest_paths([stdlib], [lang], self.cfg.per_language, self.harvest, limits, dedup)


def _round_robin(streams: list[Iterator[Snippet]]) -> Iterator[Snippet]:
    """One item from each stream in turn until all are exhausted (lazily: nothing is read ahead)."""
    active = list(streams)
    while active:
        for stream in list(active):
            item = next(stream, None)
            if item is None:
                active.remove(stream)
            else:
                yield item
