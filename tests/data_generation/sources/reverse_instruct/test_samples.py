"""Reverse instruction over the bundled sample (data/samples/functions) plus the Python stdlib.

The sample holds short, documented functions in all ten languages, so reverse instruction finds
functions on any machine. The scripted teacher answers round 1 with a statement naming the function
and round 2 with the sample file the function came from (a complete program); a teacher that starts
its replies (the local one) is imitated to check the stops and prefixes it gets.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.treesitter import LANGUAGES
from data_generation.sources.base import SourceStats
from data_generation.sources.reverse_instruct.config import ReverseInstructConfig
from data_generation.sources.reverse_instruct.harvest import harvest_paths
from data_generation.sources.reverse_instruct.program_check import check_program
from data_generation.sources.reverse_instruct.source import ReverseInstructSource
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import RecordedRequest, Reply
from tests.fake_teacher import ReplyStartingTeacher
from tests.paths import REPO

SAMPLES = REPO / "data" / "samples" / "functions"
STDLIB = sysconfig.get_paths()["stdlib"]
FUNCTION = re.compile(r"^Function (\d+): the (\S+) (?:function|method) `([^`]+)`", re.M)
SAMPLE_FUNCTIONS = {s.name: s for s in harvest_paths([SAMPLES])}
WORDS = (
    "parses validates merges sorts counts filters groups encodes decodes splits joins rotates scales clamps "
    "rounds hashes caches the records rows tokens prices readings nodes edges vectors words items"
).split()


def test_the_sample_covers_all_ten_languages_with_documented_functions_that_compile():
    snippets = list(harvest_paths([SAMPLES]))
    per_language = Counter(s.language for s in snippets)
    assert set(per_language) == set(LANGUAGES) and min(per_language.values()) >= 5
    for s in snippets:
        lines = s.code.count("\n") + 1
        assert 3 <= lines <= 14, (s.name, lines)
        assert re.search(r'^\s*(///?|/\*\*?|#|""")|^\s+"""', s.code, re.M), f"{s.name} has no doc comment"
    first = {}
    for s in snippets:
        first.setdefault(s.path, s)
    for path, s in sorted(first.items()):  # each file is a whole program: parses and compiles where a tool is
        result = check_program(Path(path).read_text(), s.language, s.name)
        assert result.ok, (path, result.checks)
        assert all(c["status"] in ("passed", "skipped") for c in result.checks)


def make_source(tmp_path: Path, teacher=None, **cfg) -> ReverseInstructSource:
    return ReverseInstructSource(ReverseInstructConfig(**cfg), teacher, tmp_path / "rejects.jsonl")


def test_paths_and_stdlib_go_round_robin_paths_first_and_max_lines_holds(tmp_path):
    source = make_source(tmp_path, paths=(str(SAMPLES),), stdlib=True, max_lines=8, languages=("go", "python"))
    snippets = list(itertools.islice(source._snippets(), 30))
    assert [s.language for s in snippets[:4]] == ["go", "python"] * 2  # round-robin over the languages
    python = [s for s in snippets if s.language == "python"]
    from_sample = [s for s in python if s.path.startswith(str(SAMPLES))]
    assert from_sample == python[: len(from_sample)] and len(from_sample) >= 4  # the sample first
    assert all(s.path.startswith(STDLIB) for s in python[len(from_sample) :])
    assert len(python) > len(from_sample)  # then the standard library
    assert all(s.code.count("\n") + 1 <= 8 for s in snippets)
    assert source.harvest.rejected["python"]["too_long"] > 0
    assert source.corpus_summary == {"paths": [str(SAMPLES)], "stdlib": STDLIB, "dataset": None}
    with pytest.raises(ValueError, match="max_lines"):
        ReverseInstructConfig(max_lines=2)


def statement(language: str, name: str) -> str:
    rng = random.Random(name)
    return f"Write the {language} function {name} which " + " ".join(rng.choice(WORDS) for _ in range(16)) + "."


def scripted(req: RecordedRequest) -> Reply:
    prompt = req.body["messages"][-1]["content"]
    if prompt.startswith("For each of the") or prompt.startswith("You are a programming teacher"):
        found = FUNCTION.findall(prompt)
        return Reply.text("\n".join(f"{n}. {statement(lang, name)}" for n, lang, name in found))
    name = re.search(r"function `([^`]+)`", prompt).group(1)
    if name == "title_case":
        return Reply.text("```ruby\ndef title_case(text)\n  text.split.map(", finish_reason="length")
    snippet = SAMPLE_FUNCTIONS[name]
    fence = re.search(r"```(\S+)\n", prompt).group(1)
    return Reply.text(f"Here it is:\n```{fence}\n{Path(snippet.path).read_text()}```\n")


def test_end_to_end_on_the_sample_with_compact_prompts_and_per_step_manifests(env_key, tmp_path, caplog):
    out = tmp_path / "ri.jsonl"
    seen = []

    def spying(req: RecordedRequest) -> Reply:
        manifest = Path(f"{out}.manifest.json")
        if manifest.exists():
            m = json.loads(manifest.read_text())
            seen.append((m["status"], m["steps"], m["functions_sent"]))
        return scripted(req)

    caplog.set_level("INFO")
    languages = "python,javascript,ruby,php"
    with LoopbackServer(spying) as srv:
        args = [
            "reverse-instruct",
            "--teacher",
            "openai",
            "--base-url",
            srv.base_url,
            "--model",
            "scripted-teacher",
            "--paths",
            str(SAMPLES),
            "--stdlib",
            "--max-lines",
            "12",
            "--languages",
            languages,
            "--limit",
            "12",
            "--snippets-per-request",
            "1",
            "--requests-per-step",
            "4",
            "--compact-prompts",
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output",
            str(out),
        ]
        assert main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    rejects = [json.loads(line) for line in out.with_suffix(".rejects.jsonl").read_text().splitlines()]
    reject_rows = [r for r in rejects if "step_done" not in r]
    assert sorted([r["meta"]["index"] for r in records] + [r["index"] for r in reject_rows]) == list(range(12))
    assert [r["reason"] for r in reject_rows] == ["program_truncated"]  # title_case, cut off on purpose
    assert {r["language"] for r in records} == set(languages.split(","))
    assert all(r["meta"]["function"]["path"].startswith(str(SAMPLES)) for r in records)
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stop_reason"] is None
    assert manifest["functions_sent"] == 12 and manifest["steps"] == 3
    assert manifest["config"]["compact_prompts"] and manifest["config"]["stdlib"]
    assert manifest["corpus"]["stdlib"] == STDLIB
    assert sorted({(s, n) for _, s, n in seen}) == [(0, 0), (1, 4), (2, 8)]  # rewritten after every step
    steps = [m for m in caplog.messages if m.startswith("reverse-instruct step ")]
    assert len(steps) == 3 and "program_truncated 1" in " ".join(steps)


def sample_replies(request) -> str:
    """Round 1: a paragraph of words, then a second item; round 2: the sample function itself."""
    if request.reply_prefix.startswith("1. "):
        rng = random.Random(request.reply_prefix)
        return " " + " ".join(rng.choice(WORDS) for _ in range(14)) + ".\n\n2. And more.\n```"
    name = re.search(r"function `([^`]+)`", request.messages[-1][1]).group(1)
    return Path(SAMPLE_FUNCTIONS[name].path).read_text().removeprefix("<?php\n") + "```\nThat is the program."


def test_a_teacher_that_starts_replies_stops_at_the_paragraph_and_the_closing_fence(tmp_path):
    teacher = ReplyStartingTeacher(sample_replies)
    source = make_source(
        tmp_path,
        teacher,
        paths=(str(SAMPLES),),
        languages=("php", "rust"),
        limit=2,
        snippets_per_request=1,
        compact_prompts=True,
    )
    records = list(source.records(SourceStats()))
    statements = [r for r in teacher.requests if r.reply_prefix.startswith("1. ")]
    programs = [r for r in teacher.requests if r not in statements]
    assert all(r.decoding.stop == ("\n2.", "\n\n", "\n```") for r in statements)
    assert all(r.decoding.stop == ("```",) for r in programs)
    assert {r.reply_prefix for r in programs} == {"```php\n<?php\n", "```rust\n"}
    assert all(r.messages[-1][1].startswith("Write a complete") for r in programs)  # the compact prompt
    assert len(records) == 2
    for rec in records:
        assert "That is the program" not in rec.output and "```" not in rec.output
        assert rec.instruction.endswith(".") and "And more" not in rec.instruction
    php = next(r for r in records if r.language == "php")
    assert php.output.startswith("<?php\n")
