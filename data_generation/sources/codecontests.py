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
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from data_generation.common.io import DataError
from data_generation.common.paths import PROMPTS_DIR
from data_generation.common.record import Record, RowError
from data_generation.sources.base import SourceStats, iter_input_rows

log = logging.getLogger(__name__)

HUB_ID = "deepmind/code_contests"
TEMPLATES_PATH = PROMPTS_DIR / "codecontests_templates.txt"
SOLUTION_MODES = ("first", "shortest", "all")
DEFAULT_LANGUAGES = ("python3", "cpp", "java")


@dataclass(frozen=True)
class Language:
    key: str  # what --languages accepts
    display: str  # what the instruction says
    record_language: str  # Record.language, in the names the rest of the pipeline uses


# Solution.Language in contest_problem.proto; the hub data stores the same integers.
# PYTHON (1) is Python 2, which is easy to get wrong. 0 (UNKNOWN_LANGUAGE) is never selectable.
LANGUAGES: dict[int, Language] = {
    3: Language("python3", "Python 3", "python"),
    1: Language("python2", "Python 2", "python2"),
    2: Language("cpp", "C++", "cpp"),
    4: Language("java", "Java", "java"),
}
LANGUAGE_IDS: dict[str, int] = {lang.key: lang_id for lang_id, lang in LANGUAGES.items()}

# The proto numbers ATCODER 6 and AIZU 7 (5 is reserved), but the hub parquet stores `source` as a
# dense 7-class label, so AtCoder is 5 and Aizu is 6 there. We read hub-shaped data, hence dense.
PLATFORMS = ("unknown", "CodeChef", "Codeforces", "HackerEarth", "Code Jam", "AtCoder", "Aizu")

# `difficulty` follows the hub dataset's own ClassLabel (its card lists 29 dense names: A..V are
# 7..28). The proto file skips 18, but the hub files are what users load, so the card is the authority.
DIFFICULTIES: dict[int, str] = {
    **dict(enumerate(("UNKNOWN_DIFFICULTY", "EASY", "MEDIUM", "HARD", "HARDER", "HARDEST", "EXTERNAL"))),
    **{7 + i: letter for i, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUV")},
}


# ---------------------------------------------------------------- templates


def load_templates(path: str | Path = TEMPLATES_PATH) -> list[str]:
    """Read the instruction templates; a template that could mislabel or crash stops the run."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read templates: {exc}") from None
    templates: list[str] = []
    block: list[str] = []
    start = 1
    for lineno, line in enumerate([*text.splitlines(), "---"], start=1):
        if line.strip() == "---":
            template = "\n".join(block).strip()
            if template:
                _check_template(path, start, template)
                templates.append(template)
            block = []
        elif not line.startswith("#"):
            start = start if block else lineno  # report errors at the block's first line
            block.append(line)
    if not templates:
        raise DataError(path, None, "no templates found")
    return templates


def _check_template(path: Path, lineno: int, template: str) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:  # stray "{" or "}"
        raise DataError(path, lineno, f"bad template: {exc}") from None
    if fields != {"language", "description"}:
        raise DataError(
            path, lineno, f"template placeholders are {sorted(fields)}; need exactly {{language}} and {{description}}"
        )
    named = [lang.display for lang in LANGUAGES.values() if lang.display.split()[0].lower() in template.lower()]
    if named:
        raise DataError(path, lineno, f"template names a language itself ({named[0]}); use {{language}}")


def template_index(problem_name: str, language_key: str, count: int) -> int:
    """Stable choice of template per (problem, language): sha256, not hash(), which is salted per process."""
    digest = hashlib.sha256(f"{problem_name}\0{language_key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


# ---------------------------------------------------------------- problems


@dataclass(frozen=True)
class Solution:
    index: int  # position in the problem's `solutions`, so a record can be traced back
    language_id: int
    text: str


@dataclass(frozen=True)
class Problem:
    name: str
    description: str
    meta: dict[str, Any]  # problem-level part of every record's meta
    tests: tuple[tuple[str, str], ...]  # public tests as (input, output)
    solutions: tuple[Solution, ...]
    input_file: str
    output_file: str


def parse_problem(row: Any) -> Problem:
    """Validate one CodeContests row; RowError (with a drop reason) when it cannot be used."""
    if not isinstance(row, Mapping):
        raise RowError("not_an_object", f"row is {type(row).__name__}")
    name, description = _text(row, "name", required=True), _text(row, "description", required=True)
    tests = [
        (_as_text(i, "public_tests"), _as_text(o, "public_tests"))
        for i, o in _pairs(row, "public_tests", ("input", "output"))
    ]
    source, difficulty = _int(row, "source"), _int(row, "difficulty")
    meta = {
        "problem": name,
        "platform": PLATFORMS[source] if source is not None and 0 <= source < len(PLATFORMS) else "unknown",
        "difficulty": DIFFICULTIES.get(difficulty, "UNKNOWN_DIFFICULTY"),
        "cf_rating": _int(row, "cf_rating") or None,  # 0 means "no rating" outside Codeforces
        "cf_tags": _tags(row),
        "time_limit_s": _seconds(row.get("time_limit")),
        "memory_limit_bytes": _int(row, "memory_limit_bytes") or None,  # 0 means "not given"
        "public_tests": {"input": [t[0] for t in tests], "output": [t[1] for t in tests]},
    }
    solutions = tuple(
        Solution(i, _as_int(lang, "solutions"), _as_text(text, "solutions"))
        for i, (lang, text) in enumerate(_pairs(row, "solutions", ("language", "solution")))
    )
    return Problem(
        name,
        description.strip(),
        meta,
        tuple(tests),
        solutions,
        _text(row, "input_file", required=False),
        _text(row, "output_file", required=False),
    )


def _text(row: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if value is None:
        raise RowError(f"missing_{key}")
    if not isinstance(value, str):
        raise RowError(f"bad_type_{key}", f"{key} is {type(value).__name__}, expected str")
    if required and not value.strip():
        raise RowError(f"empty_{key}")
    return value


def _as_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"bad_type_{key}", f"{key} has {type(value).__name__} {value!r}, expected int")
    return value


def _as_text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise RowError(f"bad_type_{key}", f"{key} has {type(value).__name__}, expected str")
    return value


def _int(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    return None if value is None else _as_int(value, key)


def _tags(row: Mapping[str, Any]) -> list[str]:
    tags = row.get("cf_tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RowError("bad_type_cf_tags", "cf_tags must be a list of strings")
    return tags


def _seconds(value: Any) -> float | None:
    """time_limit is a protobuf Duration {seconds, nanos}; null when the site gave none."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RowError("bad_type_time_limit", f"time_limit is {type(value).__name__}, expected object")
    seconds, nanos = value.get("seconds") or 0, value.get("nanos") or 0
    return _as_int(seconds, "time_limit") + _as_int(nanos, "time_limit") / 1e9


def _pairs(row: Mapping[str, Any], key: str, fields: tuple[str, str]) -> list[tuple[Any, Any]]:
    """A repeated proto message as pairs. The hub layout transposes it into parallel lists,
    e.g. public_tests = {"input": [...], "output": [...]}, and so must a local file."""
    value = row.get(key)
    a, b = fields
    if value is None:
        return []
    if isinstance(value, Mapping):
        left, right = value.get(a) or [], value.get(b) or []
        if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
            return list(zip(left, right, strict=True))
    raise RowError(f"bad_type_{key}", f"{key} must be an object of equally long lists {a!r} and {b!r}")


# ---------------------------------------------------------------- records


def select_solutions(solutions: Sequence[Solution], languages: Sequence[str], mode: str, k: int) -> list[Solution]:
    """Per language, in the order asked for: drop empty and repeated texts, then pick by mode.

    `first` keeps the dataset's order (the first k), `shortest` the k shortest (ties by position),
    `all` every distinct one. Repeats are judged on the stripped text, within one language only:
    the same text under two language labels gives two different instructions.
    """
    chosen: list[Solution] = []
    for key in languages:
        seen: set[str] = set()
        pool = []
        for sol in solutions:
            text = sol.text.strip()
            if sol.language_id == LANGUAGE_IDS[key] and text and text not in seen:
                seen.add(text)
                pool.append(sol)
        if mode == "shortest":
            pool.sort(key=lambda s: (len(s.text.strip()), s.index))
        chosen.extend(pool if mode == "all" else pool[:k])
    return chosen


def format_tests(tests: Sequence[tuple[str, str]]) -> str:
    """Public sample tests as labelled blocks; numbered only when there is more than one."""
    blocks = []
    for n, (test_in, test_out) in enumerate(tests, start=1):
        label = f" {n}" if len(tests) > 1 else ""
        blocks.append(f"Example input{label}:\n{test_in.rstrip()}\n\nExample output{label}:\n{test_out.rstrip()}")
    return "\n\n".join(blocks)


def _io_note(problem: Problem) -> str:
    # A few problems read and write named files instead of stdin/stdout, and their solutions do so;
    # an instruction that did not say so would not match its answer.
    parts = [
        f"read the input from the file {problem.input_file}" if problem.input_file else "",
        f"write the output to the file {problem.output_file}" if problem.output_file else "",
    ]
    parts = [p for p in parts if p]
    return f"\n\nYour program must {' and '.join(parts)}." if parts else ""


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
            instruction=instruction + _io_note(problem),
            input=format_tests(problem.tests) if self.show_tests else "",
            output=sol.text.strip(),
            source=self.name,
            language=lang.record_language,
            meta=meta,
        )
