"""Inputs of function harvesting (issue 4): a dataset of code functions, and the machine's own sources.

`iter_dataset_snippets` reads a Hugging Face dataset (hub id, `save_to_disk` folder or a local
JSONL/JSON/parquet file) with a code and a language column and yields the functions each row
holds, through the same filters, dedup, quota and `HarvestStats` as `harvest.harvest_paths`.
`default_corpus` finds source trees already on this machine (the interpreter's standard library
first); `harvest_corpus` harvests them, JDK `src.zip` archives included, with one dedup across all.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sysconfig
import textwrap
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from data_generation.common.io import DataError
from data_generation.common.treesitter import EXTENSIONS, LANGUAGES
from data_generation.sources.base import iter_input_rows
from data_generation.sources.reverse_instruct.harvest import (
    MAX_FILE_BYTES,
    SKIP_DIRS,
    Deduper,
    FilterConfig,
    HarvestStats,
    Snippet,
    admit,
    extract,
    generated_reason,
    harvest_paths,
    harvest_source,
)

log = logging.getLogger(__name__)

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


def _check_languages(languages: Iterable[str] | None) -> set[str] | None:
    wanted = set(languages) if languages is not None else None
    unknown = (wanted or set()) - set(LANGUAGES)
    if unknown:
        raise ValueError(f"unknown languages {sorted(unknown)}; choose from {sorted(LANGUAGES)}")
    return wanted


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
    wanted = _check_languages(languages)
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
        meta = {"dataset": spec, "row": str(where)}
        meta.update(
            {
                role: v
                for role in ("repo", "path", "license")
                if role in columns and (v := _meta_value(row[columns[role]])) is not None
            }
        )
        yield from _row_snippets(row[code_column], lang, meta, dedup, stats, quota, cfg)


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


# ---- the machine's own sources ---------------------------------------------------------------

NODE_DIRS = ("/usr/lib/node_modules", "/usr/local/lib/node_modules", "/usr/share/nodejs")
HEADER_DIRS = ("/usr/include", "/usr/local/include", "/usr/src")
FIRST_ONLY = {"java"}  # two JDKs hold mostly the same classes: $JAVA_HOME, the one on PATH, else any
# what to install when a language has nothing on this machine (shown by describe_corpus)
HINTS = {
    "go": "install Go (its GOROOT/src ships the standard library)",
    "rust": "rustup component add rust-src, or `cargo fetch` a project (~/.cargo/registry/src)",
    "ruby": "install ruby (RbConfig rubylibdir)",
    "php": "apt-get install php-pear or another php-* library (/usr/share/php)",
    "javascript": "npm install -g some packages (/usr/lib/node_modules)",
    "java": "install a JDK with its src.zip (Debian: openjdk-17-source)",
    "c": "apt-get install libc6-dev (/usr/include)",
    "cpp": "install headers with .hpp/.cc files, or point at a C++ tree",
    "csharp": "no C# sources are found in standard places; point the harvest at a C# tree",
}


def _tool(*cmd: str) -> str | None:
    """A toolchain's answer about itself (GOROOT, sysroot), or None when the tool is absent or fails."""
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s failed: %s", cmd, exc)
        return None
    return out.stdout.strip() or None


def _java_homes() -> list[Path]:
    homes = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    for exe in ("javac", "java"):  # /usr/bin/java -> /usr/lib/jvm/X/bin/java: X is the home
        found = shutil.which(exe)
        if found:
            homes.append(Path(os.path.realpath(found)).parents[1])
    return homes + sorted(Path("/usr/lib/jvm").glob("*"), reverse=True)  # then any other JDK


def _node_roots() -> list[Path]:
    """Global packages, plus the dependencies npm bundles in its own node_modules.

    `harvest_paths` skips `node_modules` *below* a root because in a repository it holds vendored
    copies; here those bundled packages are the only JavaScript on a Debian machine, so each
    package's node_modules becomes a root of its own (one listdir per package, no walk).
    """
    roots: list[Path] = []
    for top in map(Path, NODE_DIRS):
        if not top.is_dir():
            continue
        roots.append(top)
        roots.extend(sorted(p for p in top.glob("*/node_modules") if p.is_dir()))
    return roots


def _candidates() -> dict[str, list[Path]]:
    """Where each language's sources usually live; only cheap probes (a tool's answer, a stat)."""
    home = Path.home()
    goroot, sysroot = _tool("go", "env", "GOROOT"), _tool("rustc", "--print", "sysroot")
    ruby = _tool("ruby", "-e", "print RbConfig::CONFIG['rubylibdir'], \"\\n\", Gem.default_dir")
    php = _tool("php", "-r", "echo get_include_path();")
    cargo = Path(os.environ.get("CARGO_HOME", home / ".cargo"))
    return {
        "python": [Path(sysconfig.get_paths()["stdlib"])],
        "go": [Path(goroot, "src")] if goroot else [],
        "rust": ([Path(sysroot, "lib/rustlib/src/rust/library")] if sysroot else []) + [cargo / "registry" / "src"],
        "ruby": [Path(p) / sub for p, sub in zip((ruby or "").splitlines(), ("", "gems")) if p],
        "php": [Path(p) for p in (php or "").split(":") if p not in {"", "."}] + [Path("/usr/share/php")],
        "javascript": _node_roots(),
        "java": [h / "lib" / "src.zip" for h in _java_homes()],
        "c": list(map(Path, HEADER_DIRS)),
        "cpp": list(map(Path, HEADER_DIRS)),
        "csharp": [],
    }


def _usable(path: Path) -> bool:
    if path.is_file():
        return zipfile.is_zipfile(path)
    return path.is_dir() and next(os.scandir(path), None) is not None


def default_corpus() -> dict[str, list[Path]]:
    """language -> existing source roots on this machine (directories, or zip archives of sources)."""
    corpus: dict[str, list[Path]] = {}
    for lang, paths in _candidates().items():
        seen: dict[str, Path] = {}
        for p in paths:  # two names of one JDK (java-17 and java-1.17.0 link) count once
            if _usable(p):
                seen.setdefault(os.path.realpath(p), p)
        corpus[lang] = list(seen.values())[:1] if lang in FIRST_ONLY else list(seen.values())
    return corpus


def describe_corpus(corpus: dict[str, list[Path]], stats: HarvestStats | None = None) -> str:
    """One line per supported language: its roots (and counts once harvested), or what to install."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lines = []
    for lang in sorted(LANGUAGES):
        roots = corpus.get(lang) or []
        if not roots:
            lines.append(f"{lang}: none found ({HINTS.get(lang, 'point the harvest at a tree')})")
            continue
        text = ", ".join(f"{r} (stdlib)" if r == stdlib else str(r) for r in roots)
        if stats is not None:
            rejected = sum(stats.rejected[lang].values()) if lang in stats.rejected else 0
            text += (
                f" -- {stats.files[lang]:,} files, {stats.found[lang]:,} functions found, "
                f"{stats.kept[lang]:,} kept, {rejected:,} rejected"
            )
        lines.append(f"{lang}: {text}")
    return "\n".join(lines)


def iter_zip_sources(archive: Path, language: str) -> Iterator[tuple[str, int, zipfile.ZipFile, zipfile.ZipInfo]]:
    """(member path, size, zip, entry) of `language` files, sorted, skipping the harvest's skip dirs."""
    with zipfile.ZipFile(archive) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            parts = info.filename.split("/")
            if info.is_dir() or EXTENSIONS.get(os.path.splitext(parts[-1])[1].lower()) != language:
                continue
            if any(p.startswith(".") or p in SKIP_DIRS for p in parts[:-1]):
                continue
            yield f"{archive}!/{info.filename}", info.file_size, zf, info


def harvest_corpus(
    corpus: dict[str, list[Path]],
    languages: Iterable[str] | None = None,
    quota: int | None = None,
    stats: HarvestStats | None = None,
    cfg: FilterConfig = FilterConfig(),
) -> Iterator[Snippet]:
    """Harvest every root of `corpus` for its language, with one dedup and one quota across all."""
    wanted = _check_languages(languages)
    stats = stats if stats is not None else HarvestStats()
    dedup = Deduper()
    for lang, roots in corpus.items():
        if wanted is not None and lang not in wanted:
            continue
        trees = [r for r in roots if not r.is_file()]
        if trees:
            yield from harvest_paths(trees, [lang], quota, stats, cfg, dedup)
        for archive in (r for r in roots if r.is_file()):
            for name, size, zf, info in iter_zip_sources(archive, lang):
                if quota is not None and stats.kept[lang] >= quota:
                    break
                if size > MAX_FILE_BYTES:
                    stats.files[lang] += 1
                    stats.skipped_files["too_large"] += 1
                    continue
                yield from harvest_source(zf.read(info), lang, name, dedup, stats, quota, cfg)
