"""Functions from a dataset of code: a Hugging Face dataset (hub id or `save_to_disk` folder) or a
local JSONL/JSON/parquet file with a code and a language column.

`iter_dataset_snippets` yields the functions each row holds, through the same filters, dedup, quota
and `HarvestStats` as `harvest.harvest_paths`. Rows that hold a method without its class or PHP
without `<?php` (CodeSearchNet does) are wrapped before parsing (`extract_row`).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

from data_generation.common.io import DataError, iter_input_rows
from data_generation.sources.reverse_instruct.harvest import (
    MAX_FILE_BYTES,
    Deduper,
    FilterConfig,
    HarvestStats,
    admit,
    check_languages,
    generated_reason,
)
from data_generation.sources.reverse_instruct.snippets import Snippet, extract

# keys are lower-cased with spaces, "_" and "-" removed
LANGUAGE_ALIASES = {
    "python": "python",
    "python3": "python",
    "py": "python",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
    "java": "java",
    "go": "go",
    "golang": "go",
    "ruby": "ruby",
    "rb": "ruby",
    "rust": "rust",
    "rs": "rust",
    "php": "php",
    "c": "c",
    "cpp": "cpp",
    "c++": "cpp",
    "cxx": "cpp",
    "cplusplus": "cpp",
    "csharp": "csharp",
    "c#": "csharp",
    "cs": "csharp",
}
WRAPPER_CLASS = "CodecapyWrapper"
# Datasets such as CodeSearchNet store a method without its class, PHP without `<?php`: the
# wrapped text is parsed only when the bare text looks like that (see _looks_bare), and the
# snippet's code is still the row's own text (the wrapper adds whole lines before and after it).
_CLASS = (f"class {WRAPPER_CLASS} {{\n", "\n}\n")
WRAPPERS = {"java": _CLASS, "csharp": _CLASS, "javascript": _CLASS, "php": ("<?php\n", "\n")}


def normalise_language(value: Any) -> str | None:
    """Our language name for a dataset's label ("Python", "C++", "C#", "golang"), or None."""
    if not isinstance(value, str):
        return None
    return LANGUAGE_ALIASES.get(re.sub(r"[\s_-]", "", value.lower()))


def _clean_count(snippets: list[Snippet]) -> int:
    return sum(not s.has_error for s in snippets)


def _looks_bare(snippets: list[Snippet]) -> bool:
    """No clean function, or C#'s top-level-statement reading of a method (which loses its `///` docs)."""
    return not snippets or any(s.has_error or s.meta.get("node_type") == "local_function_statement" for s in snippets)


def extract_row(code: str, language: str, path: str = "") -> list[Snippet]:
    """The top-level functions of one dataset row, wrapped into a class or `<?php` if that parses better."""
    text = textwrap.dedent(code)  # a method cut out of its class keeps its indentation
    bare = extract(text.encode(), language, path)
    wrapper = WRAPPERS.get(language)
    if wrapper is None or not _looks_bare(bare):
        return bare
    before, after = wrapper
    wrapped = extract((before + text + after).encode(), language, path)
    if _clean_count(wrapped) < max(1, _clean_count(bare)):
        return bare
    shift = before.count("\n")
    for s in wrapped:
        s.start_line, s.end_line = s.start_line - shift, s.end_line - shift
        if s.meta.get("class") == WRAPPER_CLASS:
            del s.meta["class"]
    return wrapped


def _meta_value(value: Any) -> str | None:
    """meta holds strings: The Stack's licence column is a list, others may be null."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or None
    return str(value)


def _check_row(spec: str, where: str | int, row: Any, columns: dict[str, str]) -> None:
    if not isinstance(row, dict):
        raise DataError(spec, where, f"expected an object with columns, got {type(row).__name__}")
    for role, column in columns.items():
        if column not in row:
            raise DataError(
                spec,
                where,
                f"no {role} column {column!r}; the columns are {sorted(row)} (set {role}_column to one of them)",
            )


def iter_dataset_snippets(
    spec: str,
    *,
    code_column: str = "code",
    language_column: str | None = "language",
    path_column: str | None = None,
    repo_column: str | None = None,
    license_column: str | None = None,
    split: str = "train",
    revision: str | None = None,
    languages: Iterable[str] | None = None,
    quota: int | None = None,
    stats: HarvestStats | None = None,
    cfg: FilterConfig = FilterConfig(),
) -> Iterator[Snippet]:
    """Kept function snippets from a dataset's rows; `meta` keeps dataset, row and the named columns.

    Without a language column (`language_column=None`) every row is in the single language of
    `languages`. Rows are counted in `stats.rows` per language; rows dropped before parsing are in
    `stats.skipped_rows` (unknown labels also per value in `stats.unknown_languages`).
    """
    wanted = check_languages(languages)
    if language_column is None and (wanted is None or len(wanted) != 1):
        raise ValueError("without a language column, name exactly one language in `languages`")
    stats = stats if stats is not None else HarvestStats()
    dedup = Deduper()
    columns = {
        role: col
        for role, col in (
            ("code", code_column),
            ("language", language_column),
            ("path", path_column),
            ("repo", repo_column),
            ("license", license_column),
        )
        if col
    }
    for where, row in iter_input_rows(spec, split=split, revision=revision):
        _check_row(spec, where, row, columns)
        lang = normalise_language(row[language_column]) if language_column else next(iter(wanted or ()))
        if lang is None:
            stats.unknown_languages[str(row[language_column])] += 1
            stats.skipped_rows["unknown_language"] += 1
            continue
        if wanted is not None and lang not in wanted:
            stats.skipped_rows["language_not_selected"] += 1
            continue
        if quota is not None and stats.kept[lang] >= quota:
            stats.skipped_rows["quota"] += 1
            if wanted is not None and all(stats.kept[w] >= quota for w in wanted):
                break  # every selected language is full: stop reading a possibly huge dataset
            continue
        stats.rows[lang] += 1
        yield from _row_snippets(row[code_column], lang, _row_meta(spec, where, row, columns), dedup, stats, quota, cfg)


def _row_meta(spec: str, where: str | int, row: dict, columns: dict[str, str]) -> dict[str, str]:
    """The dataset and row, and the repo, path and licence where the dataset has them."""
    meta = {"dataset": spec, "row": str(where)}
    for role in ("repo", "path", "license"):
        if role in columns and (value := _meta_value(row[columns[role]])) is not None:
            meta[role] = value
    return meta


def _row_snippets(
    code: Any,
    lang: str,
    meta: dict[str, str],
    dedup: Deduper,
    stats: HarvestStats,
    quota: int | None,
    cfg: FilterConfig,
) -> Iterator[Snippet]:
    if not isinstance(code, str) or not code.strip():
        stats.skipped_rows["empty_code"] += 1
        return
    if len(code) > MAX_FILE_BYTES:  # the same bound as a file on disk
        stats.skipped_rows["too_large"] += 1
        return
    reason = generated_reason(code[:2048], cfg)  # a whole generated file in one row (The Stack)
    if reason:
        stats.skipped_rows[reason] += 1
        return
    snippets = extract_row(code, lang, meta.get("path") or f"{meta['dataset']}:{meta['row']}")
    if not snippets:
        stats.skipped_rows["no_function"] += 1
    for s in snippets:
        s.meta.update(meta)
        if admit(s, dedup, stats, quota, cfg):
            yield s
