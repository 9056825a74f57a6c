"""CodeContests (DeepMind, AlphaCode): competitive programming problems with human solutions.

Accepts the hub id `deepmind/code_contests` (splits train/valid/test), a local clone of it, or a
local JSONL/parquet file in the same schema. Each problem becomes one record per chosen correct
solution: the instruction is one of the templates in `prompts/codecontests_templates.txt` filled
with the statement and the solution's real language, the output is the solution. Incorrect
solutions are never used (they would teach the model bugs). The public tests go into `meta`, and
optionally into `input`.

Unless `--no-verify`, each chosen solution is first run on its problem's tests (`verify.py`: public,
or with `--verify-tests all` private and generated too) and kept only if it passes them all, or if it
could not be run here (no toolchain: kept, marked `unverified` with the reason). Every record's
`meta["verification"]` says which; the per-language counts are in `config()["verify_counts"]`.

`stats.read` counts problems, `stats.emitted` counts records; every problem read is either used
(one or more records) or rejected with exactly one reason (`no_verified_solutions`: every chosen
solution failed its tests).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import logging
from collections import Counter, deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from data_generation.common.io import iter_input_rows
from data_generation.common.record import Record, RowError
from data_generation.sources.base import SourceStats
from data_generation.sources.codecontests.problems import (
    LANGUAGE_IDS,
    LANGUAGES,
    Problem,
    Solution,
    parse_problem,
    select_solutions,
)
from data_generation.sources.codecontests.templates import (
    TEMPLATES_PATH,
    format_tests,
    io_note,
    load_templates,
    template_index,
)
from data_generation.sources.codecontests.verify import (
    DEFAULT_VERIFY,
    Verifier,
    VerifySettings,
    add_verify_arguments,
    make_job,
    problem_tests,
    summary,
    tests_digest,
    verify_settings,
)

log = logging.getLogger(__name__)

HUB_ID = "deepmind/code_contests"
SOLUTION_MODES = ("first", "shortest", "all")
DEFAULT_LANGUAGES = ("python3", "cpp", "java")
CACHE_SUFFIX = ".verdicts.jsonl"  # the verdict cache: OUTPUT + this
NOT_VERIFIED = {"status": "unverified", "tests": None, "tests_run": 0, "tool": None, "reason": "--no-verify"}


def _language_list(value: str) -> list[str]:
    keys = list(dict.fromkeys(k.strip().lower() for k in value.split(",") if k.strip()))
    unknown = [k for k in keys if k not in LANGUAGE_IDS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown language {unknown[0] if unknown else value!r}; choose from {', '.join(LANGUAGE_IDS)}"
        )
    return keys


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


class CodeContestsSource:
    name: ClassVar[str] = "codecontests"

    def __init__(
        self,
        input: str = HUB_ID,
        split: str = "train",
        revision: str | None = None,
        solutions: str = "first",
        max_per_language: int = 1,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        show_tests: bool = False,
        templates: str | Path = TEMPLATES_PATH,
        verify: VerifySettings | None = DEFAULT_VERIFY,
        verdict_cache: Path | None = None,
    ) -> None:
        """`verify`: None runs nothing; `verdict_cache`: where verdicts are kept across runs (None: nowhere)."""
        if solutions not in SOLUTION_MODES:
            raise ValueError(f"solutions must be one of {SOLUTION_MODES}, not {solutions!r}")
        if max_per_language < 1:
            raise ValueError("max_per_language must be at least 1")
        unknown = [k for k in languages if k not in LANGUAGE_IDS]
        if unknown or not languages:
            raise ValueError(f"unknown languages {unknown}; choose from {list(LANGUAGE_IDS)}")
        self.input, self.split, self.revision = input, split, revision
        self.solutions, self.max_per_language = solutions, max_per_language
        self.languages, self.show_tests = list(languages), show_tests
        self.verify, self.verdict_cache = verify, verdict_cache
        self.verify_counts: dict[str, Any] = {}  # filled by a verifying run, for the manifest
        # Loaded up front so a broken template file fails before any data is read. The manifest
        # records the file's sha256, so records can be matched to the exact wording that made them.
        self.templates_path = Path(templates)
        self.templates = load_templates(self.templates_path)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", default=HUB_ID, help=f"local file/folder or hub id (default {HUB_ID})")
        parser.add_argument("--split", default="train", help="hub split: train, valid or test (default train)")
        parser.add_argument("--revision", default=None, help="hub revision (commit, tag or branch)")
        parser.add_argument(
            "--solutions",
            choices=SOLUTION_MODES,
            default="first",
            help="which correct solutions become records: the first K per language, "
            "the K shortest, or all distinct ones (default first)",
        )
        parser.add_argument(
            "--max-per-language",
            type=_positive_int,
            default=1,
            metavar="K",
            help="K for --solutions first/shortest; ignored by all (default 1)",
        )
        parser.add_argument(
            "--languages",
            type=_language_list,
            default=list(DEFAULT_LANGUAGES),
            help=f"comma-separated, from {','.join(LANGUAGE_IDS)} (default {','.join(DEFAULT_LANGUAGES)})",
        )
        parser.add_argument(
            "--show-tests",
            action="store_true",
            help="put the public example tests into each record's input (default: empty input)",
        )
        add_verify_arguments(parser)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CodeContestsSource":
        verify = verify_settings(args)
        return cls(
            input=args.input,
            split=args.split,
            revision=args.revision,
            solutions=args.solutions,
            max_per_language=args.max_per_language,
            languages=args.languages,
            show_tests=args.show_tests,
            verify=verify,
            verdict_cache=Path(f"{args.output}{CACHE_SUFFIX}") if verify else None,
        )

    def config(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "split": self.split,
            "revision": self.revision,
            "solutions": self.solutions,
            "max_per_language": self.max_per_language,
            "languages": self.languages,
            "show_tests": self.show_tests,
            "templates_sha256": hashlib.sha256(self.templates_path.read_bytes()).hexdigest(),
            "verify": {**self.verify.to_dict(), "cache": str(self.verdict_cache) if self.verdict_cache else None}
            if self.verify
            else None,
            # results, not settings: the CLI writes a quick source's manifest from config and stats alone
            "verify_counts": self.verify_counts,
        }

    def records(self, stats: SourceStats) -> Iterator[Record]:
        used = 0
        if self.verify is None:
            for problem, chosen, where in self._problems(stats):
                used += 1
                stats.emitted += len(chosen)
                yield from (self._record(problem, sol, where, dict(NOT_VERIFIED)) for sol in chosen)
        else:
            with Verifier(self.verify, self.verdict_cache, self.languages) as verifier:
                for records in self._verified(stats, verifier, self.verify):
                    used += 1
                    stats.emitted += len(records)
                    yield from records
            self.verify_counts = verifier.tally.to_dict()
            log.info("verification: %d solutions run here; %s", verifier.judged, summary(self.verify_counts))
        log.info("%d of %d problems gave %d records", used, stats.read, stats.emitted)

    def _problems(self, stats: SourceStats) -> Iterator[tuple[Problem, list[Solution], str | int]]:
        """Each usable problem with its chosen solutions; the others are counted as rejected."""
        for where, row in iter_input_rows(self.input, split=self.split, revision=self.revision):
            stats.read += 1
            try:
                problem = parse_problem(row)
                chosen = select_solutions(problem.solutions, self.languages, self.solutions, self.max_per_language)
                if not chosen:
                    raise RowError(
                        "no_solutions_in_languages",
                        f"{problem.name}: no non-empty solution in {','.join(self.languages)}",
                    )
            except RowError as err:
                stats.reject(err.reason, where, str(err))
                continue
            yield problem, chosen, where

    def _verified(self, stats: SourceStats, verifier: Verifier, settings: VerifySettings) -> Iterator[list[Record]]:
        """The kept records of each problem, in input order, while later problems are being verified."""
        window = 4 * settings.workers  # solutions in flight: enough to keep the workers busy
        pending: deque[tuple[Problem, str | int, list[tuple[Solution, Future]]]] = deque()
        in_flight = 0
        for problem, chosen, where in self._problems(stats):
            digest = tests_digest(problem_tests(problem, settings))
            jobs = []
            for sol in chosen:
                lang = LANGUAGES[sol.language_id].key
                job = make_job(problem, lang, sol.text.strip(), settings, digest)
                label = {"problem": problem.name, "solution_index": sol.index}
                jobs.append((sol, verifier.submit(job, label)))
            pending.append((problem, where, jobs))
            in_flight += len(jobs)
            while in_flight > window:
                in_flight -= len(pending[0][2])
                yield from self._settle(*pending.popleft(), stats, settings.tests)
        while pending:
            yield from self._settle(*pending.popleft(), stats, settings.tests)

    def _settle(
        self, problem: Problem, where: str | int, jobs: list[tuple[Solution, Future]], stats: SourceStats, tests: str
    ) -> Iterator[list[Record]]:
        """One problem's records from its verdicts (nothing, and a reject, when every solution failed)."""
        verdicts = [(sol, future.result()) for sol, future in jobs]
        kept = [(sol, v) for sol, v in verdicts if v.status != "failed"]
        if not kept:
            kinds = Counter(v.kind for _, v in verdicts)
            detail = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            stats.reject("no_verified_solutions", where, f"{problem.name}: {len(verdicts)} failed ({detail})")
            return
        yield [self._record(problem, sol, where, v.meta(tests)) for sol, v in kept]

    def _record(self, problem: Problem, sol: Solution, where: str | int, verification: dict[str, Any]) -> Record:
        lang = LANGUAGES[sol.language_id]
        template_id = template_index(problem.name, lang.key, len(self.templates))
        instruction = self.templates[template_id].format(language=lang.display, description=problem.description)
        # Deep copy: records of one problem must not share the mutable lists inside meta.
        meta = {
            **copy.deepcopy(problem.meta),
            "language_id": sol.language_id,
            "solution_index": sol.index,
            "template_id": template_id + 1,
            "origin": self.input,
            "split": self.split,
            "row": str(where),
            "verification": verification,
        }
        return Record(
            instruction=instruction + io_note(problem),
            input=format_tests(problem.tests) if self.show_tests else "",
            output=sol.text.strip(),
            source=self.name,
            language=lang.record_language,
            meta=meta,
        )
