"""CodeContests rows as problems: the dataset's schema (languages, platforms, difficulties, the hub's
transposed repeated fields), validation of a row into a `Problem`, and the choice of solutions.

A row that cannot be used raises `RowError` with a drop reason; the source counts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from data_generation.common.record import RowError


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
    hidden_tests: tuple[tuple[str, str], ...] = ()  # private, then generated: only verification reads them


def parse_problem(row: Any) -> Problem:
    """Validate one CodeContests row; RowError (with a drop reason) when it cannot be used."""
    if not isinstance(row, Mapping):
        raise RowError("not_an_object", f"row is {type(row).__name__}")
    name, description = _text(row, "name", required=True), _text(row, "description", required=True)
    tests = _tests(row, "public_tests")
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
        tuple(_tests(row, "private_tests") + _tests(row, "generated_tests")),
    )


def _tests(row: Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    return [(_as_text(i, key), _as_text(o, key)) for i, o in _pairs(row, key, ("input", "output"))]


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
