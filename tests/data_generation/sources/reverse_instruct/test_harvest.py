"""Tests for tree-sitter harvesting: one hand-written file per language, filters, walking."""

from __future__ import annotations

import json
import pathlib

import pytest

from data_generation.common.treesitter import EXTENSIONS, LANGUAGES
from data_generation.sources.reverse_instruct.harvest import (
    Deduper,
    FilterConfig,
    HarvestStats,
    admit,
    generated_reason,
    harvest_paths,
    harvest_source,
    iter_source_files,
    parse_error_reason,
    reject_reason,
    size_reason,
    trivial_reason,
)
from data_generation.sources.reverse_instruct.snippets import Snippet, extract
from tests.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "harvest"

# language -> (fixture, every function name in order, the one with a doc comment and a line of it,
#              the trivial getter)
EXPECTED = {
    "python": (
        "sample.py",
        ["__init__", "size", "restock", "stub", "top_sellers"],
        "restock",
        '"""Add `count` units',
        "size",
    ),
    "javascript": (
        "sample.js",
        ["constructor", "getDiscount", "total", "parsePrice"],
        "total",
        "Sum of all line totals",
        "getDiscount",
    ),
    "java": ("Sample.java", ["getLimit", "prune", "toString"], "prune", "Keeps only values", "getLimit"),
    "go": ("sample.go", ["Items", "Pop", "Sum"], "Pop", "// or an error when", "Items"),
    "ruby": ("sample.rb", ["balance", "withdraw", "open"], "withdraw", "# would go negative", "balance"),
    "rust": ("sample.rs", ["rows", "transpose", "dot"], "transpose", "/// Panics when", "rows"),
    "php": ("sample.php", ["getSeparator", "slugify", "word_count"], "slugify", "URL slug", "getSeparator"),
    "c": ("sample.c", ["point_x", "reverse", "clamp"], "reverse", "NUL-terminated", "point_x"),
    "cpp": ("sample.cpp", ["Tokenizer", "separator", "split", "max_of"], "split", "// Splits `text`", "separator"),
    "csharp": ("sample.cs", ["GetTarget", "Step", "Readings"], "Step", "/// <summary>", "GetTarget"),
}


def _snip(
    code: str, body: tuple[str, ...] = ("x = compute()", "return x"), language: str = "python", has_error: bool = False
) -> Snippet:
    return Snippet(language, "f", code, "p", 1, code.count("\n") + 1, {}, has_error, body)


def test_registry_covers_ten_languages_and_extensions() -> None:
    assert set(LANGUAGES) == set(EXPECTED)
    assert set(EXTENSIONS.values()) == set(EXPECTED)


@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_extract_names_doc_comments_and_trivial_getter(language: str) -> None:
    fixture, names, documented, doc_line, getter = EXPECTED[language]
    path = FIXTURES / fixture
    snippets = extract(path.read_bytes(), language, str(path))
    assert [s.name for s in snippets] == names
    by_name = {s.name: s for s in snippets}
    doc = by_name[documented]
    assert doc_line in doc.code
    assert not doc.has_error and doc.path == str(path)
    # the doc comment precedes the signature, except Python's docstring which is in the body
    before = doc.code.index(doc_line) < doc.code.index(documented + "(")
    assert before == (language != "python")
    assert reject_reason(doc, Deduper()) is None
    assert reject_reason(by_name[getter], Deduper()) in {"trivial_accessor", "too_short"}


def test_meta_class_and_positions() -> None:
    src = (FIXTURES / "sample.cpp").read_bytes()
    split = next(s for s in extract(src, "cpp", "x.cpp") if s.name == "split")
    assert split.meta["class"] == "Tokenizer"  # out-of-class definition `Tokenizer::split`
    assert (split.start_line, split.end_line) == (18, 26)
    go = {s.name: s for s in extract((FIXTURES / "sample.go").read_bytes(), "go", "x.go")}
    assert go["Pop"].meta["class"] == "Stack" and "class" not in go["Sum"].meta
    rust = {s.name: s for s in extract((FIXTURES / "sample.rs").read_bytes(), "rust", "x.rs")}
    assert rust["transpose"].code.splitlines()[2] == "#[inline]"
    assert rust["transpose"].meta["class"] == "Matrix"


def test_broken_file_keeps_only_clean_functions() -> None:
    snippets = extract((FIXTURES / "broken.py").read_bytes(), "python", "broken.py")
    reasons = {s.name: parse_error_reason(s) for s in snippets}
    assert reasons["fine"] is None
    assert reasons["half"] == "parse_error"
    kept = list(harvest_paths([FIXTURES / "broken.py"]))
    assert [s.name for s in kept] == ["fine"]


@pytest.mark.parametrize(
    "body, language, expected",
    [
        ((), "java", "trivial_empty"),
        (("pass",), "python", "trivial_empty"),
        (('"""Docstring only."""', "..."), "python", "trivial_empty"),
        (("return self.name",), "python", "trivial_accessor"),
        (("return $this->name;",), "php", "trivial_accessor"),
        (("@balance",), "ruby", "trivial_accessor"),
        (("self.rows",), "rust", "trivial_accessor"),
        (("this.limit = limit;",), "java", "trivial_accessor"),
        (("return compute(x);",), "java", None),
        (('"".join(parts)',), "python", None),
        (("return a + b",), "python", None),
        (("total = a + b", "return total"), "python", None),
    ],
)
def test_trivial_reason_table(body: tuple[str, ...], language: str, expected: str | None) -> None:
    assert trivial_reason(_snip("a\nb\nc", body, language)) == expected


@pytest.mark.parametrize(
    "code, expected",
    [
        ("def f():\n    return 1", "too_short"),
        ("\n".join(["x = 1"] * 201), "too_long"),
        ("def f():\n" + " + ".join(["a"] * 1200) + "\n    pass", "too_many_tokens"),
        ("def f():\n    x = 1\n    return x", None),
    ],
)
def test_size_reason_table(code: str, expected: str | None) -> None:
    assert size_reason(_snip(code), FilterConfig(max_line_chars=10_000)) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("// Code generated by protoc-gen-go. DO NOT EDIT.\nfunc f() {}", "generated"),
        ("# This file is auto-generated\n", "generated"),
        ("var a=" + "1," * 400 + "2;", "minified"),
        ("def f():\n    return generate(x)\n", None),
    ],
)
def test_generated_reason_table(text: str, expected: str | None) -> None:
    assert generated_reason(text) == expected


def test_parse_error_and_dedup_on_normalised_code() -> None:
    assert parse_error_reason(_snip("a\nb\nc", has_error=True)) == "parse_error"
    dedup = Deduper()
    first = _snip("def f(x):\n    y = x\n    return y")
    same = _snip("def f(x):\n        y  =  x\n\n    return y   ")
    other = _snip("def f(x):\n    y = x + 1\n    return y")
    assert [dedup.reason(s) for s in (first, same, other)] == [None, "duplicate", None]


def test_harvest_paths_walks_counts_and_skips(tmp_path: pathlib.Path) -> None:
    for f in FIXTURES.glob("[sS]ample.*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "again.py").write_bytes((FIXTURES / "sample.py").read_bytes())
    for skipped in ("node_modules", ".git"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x.js").write_text("function f(a) {\n  a += 1;\n  return a;\n}\n")
    (tmp_path / "latin1.py").write_bytes("# caf\xe9\ndef f():\n    x = 1\n    return x\n".encode("latin-1"))
    (tmp_path / "gen.go").write_text("// Code generated by stringer. DO NOT EDIT.\npackage p\n")
    stats = HarvestStats()
    kept = list(harvest_paths([tmp_path], stats=stats))
    assert {p.name for p, _ in iter_source_files([tmp_path])} >= {"again.py", "latin1.py"}
    assert not any("node_modules" in s.path or ".git" in s.path for s in kept)
    assert stats.skipped_files == {"not_utf8": 1, "generated": 1}
    assert stats.rejected["python"]["duplicate"] == 3  # copy/again.py repeats the kept functions
    assert stats.kept["python"] == 3 and stats.files["python"] == 3
    for lang in EXPECTED:
        assert stats.kept[lang] >= 2, lang
        assert stats.found[lang] == stats.kept[lang] + sum(stats.rejected[lang].values())
    assert json.dumps(stats.as_dict())  # serialisable for the manifest


def test_quota_and_language_selection() -> None:
    stats = HarvestStats()
    kept = list(harvest_paths([FIXTURES], languages=["go", "java"], quota=1, stats=stats))
    assert sorted(s.language for s in kept) == ["go", "java"]
    assert stats.rejected["go"]["quota"] == 1 and set(stats.files) == {"go", "java"}
    with pytest.raises(ValueError, match="unknown languages"):
        list(harvest_paths([FIXTURES], languages=["cobol"]))
    with pytest.raises(FileNotFoundError):
        list(harvest_paths([FIXTURES / "missing"]))


def test_stdlib_json_decoder_harvest() -> None:
    decoder = pathlib.Path(json.__file__).parent / "decoder.py"
    kept = {s.name: s for s in harvest_paths([decoder])}
    assert {"py_scanstring", "JSONObject", "raw_decode"} <= set(kept)
    assert '"""Decode a JSON document from' in kept["raw_decode"].code
    assert kept["raw_decode"].meta["class"] == "JSONDecoder"


def test_shared_dedup_across_calls_and_admit_counts() -> None:
    stats, dedup = HarvestStats(), Deduper()
    first = list(harvest_paths([FIXTURES / "sample.go"], stats=stats, dedup=dedup))
    again = list(harvest_source((FIXTURES / "sample.go").read_bytes(), "go", "copy.go", dedup, stats))
    assert first and not again
    assert stats.rejected["go"]["duplicate"] == len(first) and stats.files["go"] == 2
    assert set(stats.as_dict()) == {"files", "found", "kept", "rejected", "skipped_files"}  # no row keys
    fresh = HarvestStats()
    assert admit(_snip("def f(x):\n    y = x\n    return y"), Deduper(), fresh, quota=0) is False
    assert fresh.rejected["python"] == {"quota": 1} and fresh.found["python"] == 1
    assert list(harvest_source(b"\xff\xfe", "python", "bad.py", Deduper(), fresh)) == []
    assert fresh.skipped_files == {"not_utf8": 1}
