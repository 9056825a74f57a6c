"""Tests for harvest inputs: dataset rows (JSONL and save_to_disk), the default corpus, zip sources."""

from __future__ import annotations

import json
import os
import pathlib
import sysconfig
import textwrap
import time
import zipfile

import pytest

from data_generation.common.io import DataError
from data_generation.common.treesitter import LANGUAGES
from data_generation.sources.reverse_instruct import corpus
from data_generation.sources.reverse_instruct.corpus import default_corpus, describe_corpus, harvest_corpus
from data_generation.sources.reverse_instruct.dataset_functions import (
    WRAPPER_CLASS,
    extract_row,
    iter_dataset_snippets,
    normalise_language,
)
from data_generation.sources.reverse_instruct.harvest import HarvestStats
from tests.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES
ROWS_FILE = FIXTURES / "corpus" / "functions.jsonl"
ROWS = [json.loads(line) for line in ROWS_FILE.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    "label, expected",
    [
        ("Python", "python"),
        ("python3", "python"),
        ("C++", "cpp"),
        ("c++", "cpp"),
        ("C#", "csharp"),
        ("c_sharp", "csharp"),
        ("js", "javascript"),
        ("JavaScript", "javascript"),
        ("golang", "go"),
        ("Go", "go"),
        ("Ruby", "ruby"),
        (" rust ", "rust"),
        ("PHP", "php"),
        ("C", "c"),
        ("Java", "java"),
        ("Kotlin", None),
        ("TypeScript", None),
        (None, None),
        (3, None),
    ],
)
def test_normalise_language(label: object, expected: str | None) -> None:
    assert normalise_language(label) == expected


def test_jsonl_rows_become_snippets_with_meta_and_counts() -> None:
    stats = HarvestStats()
    kept = list(
        iter_dataset_snippets(
            str(ROWS_FILE), path_column="path", repo_column="repo", license_column="license", stats=stats
        )
    )
    assert [(s.language, s.name) for s in kept] == [
        ("python", "moving_average"),
        ("java", "countVowels"),
        ("csharp", "MaxMagnitude"),
        ("javascript", "total"),
        ("php", "join_parts"),
        ("go", "Clamp"),
        ("cpp", "sum_squares"),
        ("python", "parse_pair"),
        ("python", "parse_pairs"),
    ]
    by_row = {s.meta["row"]: s for s in kept}
    java = by_row["2"]
    assert java.meta == {
        "node_type": "method_declaration",
        "dataset": str(ROWS_FILE),
        "row": "2",
        "repo": "acme/text",
        "path": "src/main/java/acme/Text.java",
        "license": "Apache-2.0",
    }
    assert java.path == "src/main/java/acme/Text.java"
    # a row holding one whole function keeps exactly its text (docs included), wrapped or not
    for row in ("2", "3", "4", "5", "6", "7"):
        assert by_row[row].code == ROWS[int(row) - 1]["code"].rstrip("\n"), row
        assert WRAPPER_CLASS not in by_row[row].code and "class" not in by_row[row].meta
    assert by_row["1"].code == textwrap.dedent(ROWS[0]["code"]).rstrip("\n")  # indented method
    assert stats.rows == {
        "python": 4,
        "java": 1,
        "csharp": 1,
        "javascript": 1,
        "php": 1,
        "go": 1,
        "cpp": 1,
        "ruby": 1,
        "rust": 1,
    }
    assert stats.skipped_rows == {"unknown_language": 1, "no_function": 1, "empty_code": 1}
    assert stats.unknown_languages == {"Kotlin": 1}
    assert stats.rejected["python"] == {"duplicate": 1}  # row 10: row 1 without its indentation
    assert stats.rejected["ruby"] == {"trivial_accessor": 1}
    for lang in stats.found:
        assert stats.found[lang] == stats.kept[lang] + sum(stats.rejected[lang].values())
    assert json.loads(json.dumps(stats.as_dict()))["unknown_languages"] == {"Kotlin": 1}


@pytest.mark.parametrize(
    "language, code, name, lines",
    [
        ("php", "function add($a, $b) {\n    $c = $a + $b;\n    return $c;\n}\n", "add", (1, 4)),
        ("javascript", "\n// Doubles it.\nscale(x) {\n  const y = x * 2;\n  return y;\n}\n", "scale", (2, 6)),
        (
            "csharp",
            "/// <summary>Sum.</summary>\npublic int Add(int a, int b)\n{\n    return a + b;\n}\n",
            "Add",
            (1, 5),
        ),
        (
            "java",
            '@Override\npublic String toString() {\n    String s = name;\n    return s + "!";\n}\n',
            "toString",
            (1, 5),
        ),
    ],
)
def test_extract_row_wraps_bare_methods_but_keeps_their_text(
    language: str, code: str, name: str, lines: tuple[int, int]
) -> None:
    [snippet] = extract_row(code, language, "row")
    assert (snippet.name, snippet.has_error, (snippet.start_line, snippet.end_line)) == (name, False, lines)
    assert snippet.code == code.strip("\n") and "class" not in snippet.meta


def test_save_to_disk_folder_with_codesearchnet_columns(tmp_path: pathlib.Path) -> None:
    import datasets

    renamed = [
        {
            "whole_func_string": r["code"],
            "lang": r["language"],
            "repository_name": r["repo"],
            "func_path_in_repository": r["path"],
            "licenses": [r["license"], "CC0-1.0"],
        }
        for r in ROWS
    ]
    folder = tmp_path / "csn"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(renamed)}).save_to_disk(str(folder))
    stats = HarvestStats()
    kept = list(
        iter_dataset_snippets(
            str(folder),
            code_column="whole_func_string",
            language_column="lang",
            repo_column="repository_name",
            path_column="func_path_in_repository",
            license_column="licenses",
            languages=["go", "java"],
            stats=stats,
        )
    )
    assert [(s.name, s.meta["row"], s.meta["license"]) for s in kept] == [
        ("countVowels", "train row 2", "Apache-2.0, CC0-1.0"),
        ("Clamp", "train row 6", "BSD-3-Clause, CC0-1.0"),
    ]
    assert kept[1].meta["repo"] == "acme/mathx" and kept[1].path == "mathx/clamp.go"
    assert stats.skipped_rows == {"language_not_selected": 10, "unknown_language": 1}
    with pytest.raises(DataError, match="no split 'test'"):
        list(iter_dataset_snippets(str(folder), split="test", code_column="whole_func_string"))


def test_missing_column_names_dataset_column_and_the_columns_there() -> None:
    with pytest.raises(DataError) as err:
        list(iter_dataset_snippets(str(ROWS_FILE), code_column="func_code_string"))
    message = str(err.value)
    assert message.startswith(f"{ROWS_FILE}:1: no code column 'func_code_string'")
    assert "['code', 'language', 'license', 'path', 'repo']" in message
    with pytest.raises(DataError, match="no license column 'licence'"):
        list(iter_dataset_snippets(str(ROWS_FILE), license_column="licence"))


def test_quota_stops_reading_and_language_options() -> None:
    stats = HarvestStats()
    kept = list(iter_dataset_snippets(str(ROWS_FILE), languages=["python"], quota=1, stats=stats))
    assert [s.name for s in kept] == ["moving_average"]
    # rows 2-8 are other languages; row 9 is python with the quota full: every language full, stop
    assert stats.skipped_rows == {"language_not_selected": 6, "unknown_language": 1, "quota": 1}
    assert stats.rows == {"python": 1}
    no_column = list(iter_dataset_snippets(str(ROWS_FILE), language_column=None, languages=["python"]))
    assert {s.name for s in no_column} >= {"moving_average", "parse_pair"}  # every row read as python
    with pytest.raises(ValueError, match="exactly one language"):
        next(iter_dataset_snippets(str(ROWS_FILE), language_column=None))
    with pytest.raises(ValueError, match="unknown languages"):
        next(iter_dataset_snippets(str(ROWS_FILE), languages=["kotlin"]))


def test_row_level_skips_and_non_object_rows(tmp_path: pathlib.Path) -> None:
    body = "def f(x):\n    y = x + 1\n    return y\n"
    rows = [
        {"code": "# Code generated by a tool. DO NOT EDIT.\n" + body, "language": "python"},
        {"code": body + "#" * 1_000_001, "language": "python"},
        {"code": None, "language": "python"},
        {"code": body, "language": "python"},
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows) + "[1, 2]\n", encoding="utf-8")
    stats = HarvestStats()
    with pytest.raises(DataError, match=r"rows.jsonl:5: expected an object with columns, got list"):
        for snippet in iter_dataset_snippets(str(data), stats=stats):
            assert snippet.meta["row"] == "4" and snippet.path == f"{data}:4"
    assert stats.skipped_rows == {"generated": 1, "too_large": 1, "empty_code": 1}
    assert stats.kept == {"python": 1}


# ---- default corpus --------------------------------------------------------------------------


def test_default_corpus_on_this_machine_is_cheap_and_real() -> None:
    start = time.perf_counter()
    found = default_corpus()
    assert time.perf_counter() - start < 10  # tool probes and stats only, never a walk
    assert set(found) == set(LANGUAGES)
    assert found["python"] == [pathlib.Path(sysconfig.get_paths()["stdlib"])]
    assert all(p.exists() for roots in found.values() for p in roots)
    assert len(found["java"]) <= 1
    text = describe_corpus(found)
    assert text.splitlines()[0].startswith("c: ") and len(text.splitlines()) == len(LANGUAGES)
    assert f"python: {sysconfig.get_paths()['stdlib']} (stdlib)" in text


def test_default_corpus_probes(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    goroot, jdk, node = tmp_path / "go", tmp_path / "jdk", tmp_path / "node_modules"
    (goroot / "src" / "fmt").mkdir(parents=True)
    (jdk / "lib").mkdir(parents=True)
    with zipfile.ZipFile(jdk / "lib" / "src.zip", "w") as zf:
        zf.writestr("java.base/java/lang/Foo.java", "class Foo {}\n")
    (node / "npm" / "node_modules" / "glob").mkdir(parents=True)
    (node / "empty").mkdir()
    answers = {"go": str(goroot)}  # rustc, ruby and php "absent"
    monkeypatch.setattr(corpus, "_tool", lambda *cmd: answers.get(cmd[0]))
    monkeypatch.setattr(corpus, "NODE_DIRS", (str(node),))
    monkeypatch.setattr(corpus, "HEADER_DIRS", (str(tmp_path / "missing"),))
    monkeypatch.setenv("JAVA_HOME", str(jdk))
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "cargo"))
    found = default_corpus()
    assert found["go"] == [goroot / "src"]
    assert found["java"] == [jdk / "lib" / "src.zip"]
    assert found["javascript"] == [node, node / "npm" / "node_modules"]
    assert found["rust"] == found["c"] == found["csharp"] == []
    text = describe_corpus(found)
    assert "rust: none found (rustup component add rust-src" in text
    assert f"go: {goroot / 'src'}" in text


def test_harvest_corpus_reads_zips_and_dedups_across_roots(tmp_path: pathlib.Path) -> None:
    java = (FIXTURES / "harvest" / "Sample.java").read_bytes()
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("java.base/demo/Sample.java", java)
        zf.writestr("java.base/.hidden/Other.java", java)
        zf.writestr("java.base/demo/notes.txt", "not code")
    tree = tmp_path / "tree" / "node_modules" / "pkg" / "node_modules" / "dep"
    tree.mkdir(parents=True)
    (tree / "index.js").write_bytes((FIXTURES / "harvest" / "sample.js").read_bytes())
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "Sample.java").write_bytes(java)
    stats = HarvestStats()
    roots = {
        "java": [tmp_path / "copy", archive],
        "javascript": [
            tmp_path / "tree" / "node_modules",
            *sorted((tmp_path / "tree" / "node_modules").glob("*/node_modules")),
        ],
    }
    kept = list(harvest_corpus(roots, stats=stats))
    java_kept = [s for s in kept if s.language == "java"]
    assert java_kept and all(s.path == str(tmp_path / "copy" / "Sample.java") for s in java_kept)
    assert stats.files["java"] == 2 and stats.rejected["java"]["duplicate"] == len(java_kept)
    assert any(s.path.endswith(os.path.join("dep", "index.js")) for s in kept)  # bundled npm dependency
    only = HarvestStats()
    from_zip = list(harvest_corpus({"java": [archive]}, languages=["java"], quota=1, stats=only))
    assert len(from_zip) == 1 and from_zip[0].path == f"{archive}!/java.base/demo/Sample.java"
    assert only.rejected["java"]["quota"] >= 1
    assert "java: " in describe_corpus({"java": [archive]}, only) and "1 kept" in describe_corpus(
        {"java": [archive]}, only
    )
