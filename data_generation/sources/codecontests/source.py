"""CodeContests (DeepMind, AlphaCode): competitive programming problems with human solutions.

Accepts the hub id `deepmind/code_contests` (splits train/valid/test), a local clone of it, or a
local JSONL/parquet file in the same schema. Each problem becomes one record per chosen correct
solution: the instruction is one of the templates in `prompts/codecontests_templates.txt` filled
with the statement and the solution's real language, the output is the solution. Incorrect
solutions are never used (they would teach the model bugs). The public tests go into `meta` so a
later step can run the solutions, and optionally into `input`.

`stats.read` counts problems, `stats.emitted` counts records; every problem read is either used
(one or more records) or rejected with exactly one reason.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import logging
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

log = logging.getLogger(__name__)

HUB_ID = "deepmind/code_contests"
SOLUTION_MODES = ("first", "shortest", "all")
DEFAULT_LANGUAGES = ("python3", "cpp", "java")


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
    ) -> None:
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

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CodeContestsSource":
        return cls(
            input=args.input,
            split=args.split,
            revision=args.revision,
            solutions=args.solutions,
            max_per_language=args.max_per_language,
            languages=args.languages,
            show_tests=args.show_tests,
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
        }

    def records(self, stats: SourceStats) -> Iterator[Record]:
        used = 0
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
            used += 1
            for sol in chosen:
                stats.emitted += 1
                yield self._record(problem, sol, where)
        log.info("%d of %d problems gave %d records", used, stats.read, stats.emitted)

    def _record(self, problem: Problem, sol: Solution, where: str | int) -> Record:
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
        }
        return Record(
            instruction=instruction + io_note(problem),
            input=format_tests(problem.tests) if self.show_tests else "",
            output=sol.text.strip(),
            source=self.name,
            language=lang.record_language,
            meta=meta,
        )
