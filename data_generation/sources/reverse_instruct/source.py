"""Reverse instruction: real functions -> problem statements -> complete, checked programs.

Functions are harvested with tree-sitter (`data_generation.sources.reverse_instruct.harvest`, `data_generation.sources.reverse_instruct.corpus`)
from directories, a Hugging Face dataset, or by default from the Python standard library and the
other languages' sources found on the machine. Each *step* takes the next
`snippets_per_request * requests_per_step` functions and runs:

1. round 1 — k functions per request, one numbered problem statement back per function;
2. the statement filters and the exact ROUGE-L near-duplicate filter over every pooled statement;
3. round 2 — one request per statement: a complete program that contains the function;
4. the program checks (`data_generation.sources.reverse_instruct.program_check`): tree-sitter, then the toolchain if present.

`--paths` and `--stdlib` combine: the bundled multi-language sample `data/samples/functions` plus
the running Python's standard library finds functions in all ten languages on any machine;
`--max-lines` keeps only short functions (a small teacher copies those whole). With a teacher that
starts its replies (the local one), round 1 stops at the end of a single statement's paragraph and
round 2 where the code block closes, so no tokens go to text that is thrown away.

Every function taken ends as exactly one record (in the output journal) or one reject (in the
rejects file beside it, with its reason, statement and program — never in the dataset). Resume:
records of a step go to the journal first, then the step's rejects and a `step_done` marker to the
rejects file in one fsynced write. A re-run keeps the steps that have a marker and all their
records, cuts the rest from both files, and carries on; with the teacher cache it redoes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import sysconfig
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from data_generation.common.record import Record
from data_generation.common.sandbox.execution import Executor, Limits
from data_generation.common.treesitter import LANGUAGES
from data_generation.dataset.rouge import RougeLFilter
from data_generation.sources.base import SourceStats, log_step
from data_generation.sources.filters import FilterConfig
from data_generation.sources.parsing import parse_numbered_statements
from data_generation.sources.reverse_instruct import corpus
from data_generation.sources.reverse_instruct import prompts as ri
from data_generation.sources.reverse_instruct.harvest import (
    Deduper,
    HarvestStats,
    Snippet,
    harvest_paths,
)
from data_generation.sources.reverse_instruct.harvest import (
    FilterConfig as HarvestFilter,
)
from data_generation.sources.reverse_instruct.program_check import (
    CheckResult,
    check_programs,
)
from data_generation.sources.reverse_instruct.rejects import RejectsFile
from data_generation.teacher import Teacher, add_teacher_arguments, teacher_from_args
from data_generation.teacher.base import Completion, Decoding, Request, starts_replies

IMPORT_RUN_LIMITS = Limits(timeout=5.0, memory_mb=1024)  # definitions only: a program needs far less

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReverseInstructConfig:
    paths: tuple[str, ...] = ()  # directories or files to harvest; with no dataset either: the default corpus
    stdlib: bool = False  # harvest the running Python's standard library too (with paths or a dataset)
    max_lines: int | None = None  # harvest only functions of at most this many lines (doc comment included)
    dataset: str | None = None  # a HF dataset of functions (hub id, save_to_disk folder or file)
    code_column: str = "code"
    language_column: str = "language"
    path_column: str | None = None
    repo_column: str | None = None
    license_column: str | None = None
    split: str = "train"
    languages: tuple[str, ...] = ()  # empty: all ten
    per_language: int | None = None  # harvest quota per language
    limit: int | None = None  # functions sent to the teacher in total
    snippets_per_request: int = 3  # k in round 1, as in CodeCapybara
    requests_per_step: int = 8
    threshold: float = 0.7  # ROUGE-L F above which a statement is a near-duplicate
    min_words: int = 8
    max_words: int = 200
    seed: int = 0
    temperature: float = 0.7  # round 1
    program_temperature: float = 0.2  # round 2: programs should be conservative
    top_p: float = 1.0
    statement_max_tokens: int = 1536
    program_max_tokens: int = 2048
    check_timeout: float = 30.0
    check_workers: int = 2
    compact_prompts: bool = False  # the *_compact.txt prompts: fewer tokens for a small, CPU-bound teacher
    rejects: str | None = None  # default: OUTPUT with suffix .rejects.jsonl

    def __post_init__(self) -> None:
        if self.snippets_per_request < 1 or self.requests_per_step < 1 or self.check_workers < 1:
            raise ValueError("snippets_per_request, requests_per_step and check_workers must be >= 1")
        if (self.limit is not None and self.limit < 1) or (self.per_language is not None and self.per_language < 1):
            raise ValueError("limit and per_language must be >= 1")
        if self.max_lines is not None and self.max_lines < HarvestFilter.min_lines:
            raise ValueError(f"max_lines must be >= {HarvestFilter.min_lines} (the shortest function harvested)")
        if not 0 < self.min_words <= self.max_words:
            raise ValueError("need 0 < min_words <= max_words")
        unknown = set(self.languages) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"unknown languages {sorted(unknown)}; choose from {', '.join(sorted(LANGUAGES))}")

    @property
    def step_size(self) -> int:
        return self.snippets_per_request * self.requests_per_step


class ReverseInstructSource:
    name: ClassVar[str] = "reverse-instruct"
    resumable: ClassVar[bool] = True

    def __init__(self, config: ReverseInstructConfig, teacher: Teacher, rejects_path: str | Path) -> None:
        self.cfg, self.teacher = config, teacher
        self.rejects = RejectsFile(Path(config.rejects or rejects_path))
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
        d = ReverseInstructConfig()
        g = parser.add_argument_group("functions to harvest (default: the Python stdlib + sources found here)")
        g.add_argument(
            "--paths",
            nargs="+",
            default=[],
            help="directories or files of source code, e.g. data/samples/functions (a small sample "
            "in all ten languages that ships with the repo)",
        )
        g.add_argument(
            "--stdlib",
            action="store_true",
            help="also harvest the running Python's standard library (with --paths or --dataset; "
            "without either, the default corpus includes it anyway)",
        )
        g.add_argument(
            "--max-lines",
            type=int,
            default=None,
            help="harvest only functions of at most this many lines, doc comment included "
            "(short functions suit a small teacher; default: up to 200)",
        )
        g.add_argument("--dataset", default=None, help="HF dataset of functions: hub id, save_to_disk folder or file")
        for column in ("code", "language", "path", "repo", "license"):
            g.add_argument(
                f"--{column}-column",
                default=getattr(d, f"{column}_column"),
                help=f"dataset column holding the {column}",
            )
        g.add_argument("--split", default=d.split, help="dataset split")
        g.add_argument("--languages", default="", help=f"comma-separated subset of: {', '.join(sorted(LANGUAGES))}")
        g.add_argument("--per-language", type=int, default=None, help="at most this many functions per language")
        g.add_argument("--limit", type=int, default=None, help="at most this many functions sent to the teacher")
        g = parser.add_argument_group("generation")
        g.add_argument(
            "--snippets-per-request", type=int, default=d.snippets_per_request, help="functions per round-1 request (k)"
        )
        g.add_argument(
            "--requests-per-step",
            type=int,
            default=d.requests_per_step,
            help="round-1 requests per step (a step is the unit of resume)",
        )
        g.add_argument("--threshold", type=float, default=d.threshold, help="ROUGE-L near-duplicate threshold")
        g.add_argument("--min-words", type=int, default=d.min_words, help="shortest problem statement")
        g.add_argument("--max-words", type=int, default=d.max_words, help="longest problem statement")
        g.add_argument("--seed", type=int, default=d.seed, help="sampling seed")
        g.add_argument("--temperature", type=float, default=d.temperature, help="round 1 (statements)")
        g.add_argument("--program-temperature", type=float, default=d.program_temperature, help="round 2 (programs)")
        g.add_argument("--top-p", type=float, default=d.top_p)
        g.add_argument("--statement-max-tokens", type=int, default=d.statement_max_tokens)
        g.add_argument("--program-max-tokens", type=int, default=d.program_max_tokens)
        g.add_argument("--check-timeout", type=float, default=d.check_timeout, help="seconds per toolchain check")
        g.add_argument("--check-workers", type=int, default=d.check_workers, help="toolchain checks run together")
        g.add_argument(
            "--compact-prompts",
            action="store_true",
            help="shorter prompts (prompts/reverse_instruct_*_compact.txt) for a small teacher on a CPU, "
            "where prompt tokens cost most of the time",
        )
        g.add_argument("--rejects", default=None, help="rejects file (default: OUTPUT with .rejects.jsonl)")
        add_teacher_arguments(parser)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ReverseInstructSource":
        try:
            languages = tuple(x.strip() for x in args.languages.split(",") if x.strip())
            cfg = ReverseInstructConfig(
                **{
                    **{
                        k: getattr(args, k)
                        for k in ReverseInstructConfig.__dataclass_fields__
                        if k not in ("paths", "languages")
                    },
                    "paths": tuple(args.paths),
                    "languages": languages,
                }
            )
        except ValueError as exc:  # an impossible combination of options: say which, no traceback
            raise SystemExit(f"reverse-instruct: {exc}") from None
        return cls(cfg, teacher_from_args(args), Path(args.output).with_suffix(".rejects.jsonl"))

    def config(self) -> dict[str, Any]:
        return {**asdict(self.cfg), "rejects": str(self.rejects.path), "teacher": {"model": self.teacher.model}}

    def summary(self) -> dict[str, Any]:
        """Manifest extras: the corpus, harvest counts, and per-language records and reject reasons
        over the whole run (resumed runs included: rejects come from the rejects file)."""
        per_language: dict[str, Any] = defaultdict(lambda: {"records": 0, "rejected": Counter()})
        for lang, n in self.kept_languages.items():
            per_language[lang]["records"] = n
        for row in self.rejects.rows:
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
            "rejects_file": str(self.rejects.path),
        }

    def close(self) -> None:
        self.teacher.close()

    # ------------------------------------------------------------ resuming

    def resume(self, done: list[Record]) -> int:
        """Keep the steps that finished (marker in the rejects file, all their records in the
        journal); return how many journal records that is. Pooled statements come back in order."""
        if any(r.source != self.name or not isinstance(r.meta.get("step"), int) for r in done):
            raise ValueError(
                "the output file holds records that are not from a reverse-instruct run; "
                "choose a new --output (reverse-instruct appends to it, to resume)"
            )
        per_step = Counter(r.meta["step"] for r in done)
        self.step = 0
        while self.step in self.rejects.done and self.rejects.done[self.step] == per_step.get(self.step, 0):
            self.step += 1
        keep = sum(1 for r in done if r.meta["step"] < self.step)
        if keep != len(done) or self.rejects.after(self.step):
            log.warning("step %d was cut by a crash: it is run again", self.step)
        self.rejects.truncate(self.step)
        self.sent = keep + len(self.rejects.rows)  # each function sent is one record or one reject
        pooled = [(r.meta["index"], r.instruction) for r in done[:keep]]
        pooled += [(row["index"], row["statement"]) for row in self.rejects.rows if row.get("pooled")]
        for _, statement in sorted(pooled):
            self.pool.add(statement)
        self.kept_languages.update(r.language for r in done[:keep])
        if self.step:
            log.info("resuming at step %d (%d records kept)", self.step, keep)
        return keep

    # ------------------------------------------------------------ generating

    def records(self, stats: SourceStats) -> Iterator[Record]:
        for batch in self.batches(stats):
            yield from batch

    def batches(self, stats: SourceStats) -> Iterator[list[Record]]:
        """One list of records per step; the step's rejects and marker are written after the
        records were taken (and appended to the journal by the caller)."""
        size = self.cfg.step_size
        stream = itertools.islice(self._snippets(), self.cfg.limit)
        indexed = enumerate(stream)
        for _ in itertools.islice(indexed, self.step * size):  # finished steps: harvested again, not sent
            pass
        while chunk := list(itertools.islice(indexed, size)):
            records, rejects = self._run_step(chunk, stats)
            yield records
            self.rejects.append_step(self.step, rejects, kept=len(records))
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
            yield from corpus.iter_dataset_snippets(
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

    def _decoding(self, tag: str, *, temperature: float, max_tokens: int, stop: tuple[str, ...] = ()) -> Decoding:
        return Decoding(
            temperature=temperature,
            top_p=self.cfg.top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=random.Random(tag).randrange(2**31),
        )

    def _run_step(self, chunk: list[tuple[int, Snippet]], stats: SourceStats) -> tuple[list[Record], list[dict]]:
        stats.read += len(chunk)
        rejects: list[dict] = []
        statements = self._round_one(chunk, rejects)
        novel = self._novel(chunk, statements, rejects)
        programs = self._round_two(novel, rejects)
        results = check_programs(
            [(prog, s.language, s.name) for (_, s), _, prog, _ in programs],
            workers=self.cfg.check_workers,
            timeout=self.cfg.check_timeout,
        )
        results = self._import_run(programs, results)
        records = []
        for ((index, snippet), statement, program, meta), result in zip(programs, results):
            if not result.ok:
                reason = result.reason if result.reason.startswith("check_") else f"check_{result.reason}"
                rejects.append(
                    self._reject(
                        index,
                        snippet,
                        reason,
                        statement=statement,
                        program=program,
                        detail=json.dumps(list(result.checks))[:500],
                    )
                )
                continue
            meta = {**meta, "checks": list(result.checks)}
            records.append(
                Record(
                    instruction=statement,
                    input="",
                    output=program,
                    source=self.name,
                    language=snippet.language,
                    meta=meta,
                )
            )
        for row in rejects:
            stats.reject(row["reason"], f"step {self.step} function {row['index']}", row["detail"][:120])
        records = [r.replace(meta={**r.meta, "step_kept": len(records)}) for r in records]
        stats.emitted += len(records)
        return records, rejects

    def _import_run(self, programs: list, results: list[CheckResult]) -> list[CheckResult]:
        """Python programs that passed the checks also run once, top level only (imports,
        definitions), in the evaluation sandbox: no network, CPU, memory and process limits."""
        todo = [i for i, (((_, s), *_), r) in enumerate(zip(programs, results)) if r.ok and s.language == "python"]
        if not todo:
            return results
        with Executor(min(self.cfg.check_workers, len(todo)), IMPORT_RUN_LIMITS) as executor:
            runs = list(executor.map(programs[i][2] for i in todo))
        results = list(results)
        for i, run in zip(todo, runs):
            check = {"check": "sandbox import-run", "status": "passed" if run.passed else "failed"}
            if not run.passed:
                check["detail"] = f"{run.result}: {run.output[-300:]}".strip()
            results[i] = CheckResult(run.passed, None if run.passed else "import_failed", (*results[i].checks, check))
        return results

    def _round_one(self, chunk: list[tuple[int, Snippet]], rejects: list[dict]) -> dict[int, tuple[str, Completion]]:
        """Statements by function index; functions without a usable one become rejects."""
        k = self.cfg.snippets_per_request
        groups = [chunk[i : i + k] for i in range(0, len(chunk), k)]
        requests = []
        for r, group in enumerate(groups):
            tag = f"reverse-instruct:r1:{self.cfg.seed}:{self.step}:{r}"
            prompt = ri.build_statement_prompt(
                [s for _, s in group],
                min_words=self.cfg.min_words,
                max_words=self.cfg.max_words,
                compact=self.cfg.compact_prompts,
            )
            stop: tuple[str, ...] = (f"\n{len(group) + 1}.",)
            if len(group) == 1 and starts_replies(self.teacher):
                # the reply began with "1. Write the ...": its statement is the first paragraph
                stop += ("\n\n", "\n```")
            decoding = self._decoding(
                tag, temperature=self.cfg.temperature, max_tokens=self.cfg.statement_max_tokens, stop=stop
            )
            requests.append(
                Request.chat(prompt, tag=tag, decoding=decoding, reply_prefix=ri.statement_prefix(group[0][1]))
            )
        out = {}
        for group, completion in zip(groups, self.teacher.complete_all(requests)):
            choice = completion.choices[0]
            found = parse_numbered_statements(choice.text, len(group), finish_reason=choice.finish_reason)
            for number, (index, snippet) in enumerate(group, start=1):
                statement = ri.first_paragraph(found[number]) if number in found else None
                reason = "missing" if statement is None else ri.statement_reason(statement, snippet, self.filters)
                if reason:
                    rejects.append(
                        self._reject(
                            index,
                            snippet,
                            f"statement_{reason}",
                            statement=statement or "",
                            detail=choice.text[:300] if statement is None else "",
                        )
                    )
                else:
                    out[index] = (statement, completion)
        return out

    def _novel(self, chunk, statements, rejects) -> list[tuple[tuple[int, Snippet], str, Completion]]:
        """Statements that pass the ROUGE-L filter, in function order (each one kept is pooled)."""
        todo = [(item, *statements[item[0]]) for item in chunk if item[0] in statements]
        decisions = self.pool.filter(statement for _, statement, _ in todo)
        novel = []
        for (item, statement, completion), decision in zip(todo, decisions):
            if decision.keep:
                novel.append((item, statement, completion))
            else:
                rejects.append(
                    self._reject(
                        item[0],
                        item[1],
                        "similar_to_pool",
                        statement=statement,
                        detail=f"ROUGE-L {decision.max_score:.3f}",
                    )
                )
        return novel

    def _round_two(self, novel, rejects: list[dict]) -> list[tuple[tuple[int, Snippet], str, str, dict]]:
        requests = []
        for (index, snippet), statement, _ in novel:
            tag = f"reverse-instruct:r2:{self.cfg.seed}:{index}"
            # the local teacher opened the code block itself (reply_prefix): the program ends where it closes
            decoding = self._decoding(
                tag,
                temperature=self.cfg.program_temperature,
                max_tokens=self.cfg.program_max_tokens,
                stop=("```",) if starts_replies(self.teacher) else (),
            )
            prompt = ri.build_program_prompt(snippet, statement, compact=self.cfg.compact_prompts)
            requests.append(
                Request.chat(prompt, tag=tag, decoding=decoding, reply_prefix=ri.program_prefix(snippet.language))
            )
        programs = []
        for ((index, snippet), statement, first), completion in zip(novel, self.teacher.complete_all(requests)):
            choice = completion.choices[0]
            program, reason = ri.parse_program_reply(choice.text, snippet.language, choice.finish_reason)
            if program is None:
                rejects.append(
                    self._reject(
                        index, snippet, f"program_{reason}", statement=statement, program=choice.text, pooled=True
                    )
                )
                continue
            meta = {
                "index": index,
                "step": self.step,
                "function": _provenance(snippet),
                "teacher_model": completion.model,
                "statement_finish_reason": first.choices[0].finish_reason,
                "program_finish_reason": choice.finish_reason,
            }
            programs.append(((index, snippet), statement, program, meta))
        return programs

    def _reject(
        self,
        index: int,
        snippet: Snippet,
        reason: str,
        *,
        statement: str = "",
        program: str = "",
        detail: str = "",
        pooled: bool | None = None,
    ) -> dict:
        if pooled is None:  # past the similarity filter, the statement is in the pool
            pooled = reason.startswith(("program_", "check_"))
        return {
            "step": self.step,
            "index": index,
            "language": snippet.language,
            "reason": reason,
            "function": _provenance(snippet),
            "statement": statement,
            "program": program,
            "detail": detail,
            "pooled": pooled,
        }


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


def _provenance(snippet: Snippet) -> dict[str, Any]:
    return {
        "name": snippet.name,
        "path": snippet.path,
        "start_line": snippet.start_line,
        "end_line": snippet.end_line,
        **snippet.meta,
    }
