"""Reverse instruction end to end through the real `openai` SDK against the loopback server.

The scripted teacher reads the real prompts: round 1 answers one numbered statement per function
shown (naming it, as asked), round 2 answers with the complete source file the function came from
(tests/fixtures/harvest holds one per language). It also misbehaves on purpose, by function name:
a statement left out, one with code in it, a near-copy of another, a reply cut off by the token
limit, a program that renamed the function, one that fails when the sandbox imports it; and
`broken.py` does not parse. Each must end up as a
reject with its reason, never as a record, and every function must be accounted for exactly once.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.rouge import rouge_l
from data_generation.sources.reverse_instruct.harvest import harvest_paths
from data_generation.sources.reverse_instruct.program_check import available_toolchains
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import RecordedRequest, Reply
from tests.paths import REPO

FIXTURES = REPO / "tests" / "fixtures" / "harvest"
WORDS = (
    "parses validates merges sorts counts filters groups encodes decodes splits joins rotates scales "
    "clamps rounds hashes caches buffers retries schedules ranks scores limits pads trims maps folds "
    "reverses flattens buckets samples"
).split()
NOUNS = (
    "records rows tokens prices readings nodes edges matrices vectors slugs words accounts carts stacks "
    "queues intervals timestamps bytes pages items"
).split()
FUNCTION = re.compile(r"^Function (\d+): the (\S+) (?:function|method) `([^`]+)`", re.M)


def statement_for(language: str, name: str) -> str:
    rng = random.Random(name)
    middle = " ".join(f"{rng.choice(WORDS)} the {rng.choice(NOUNS)}" for _ in range(6))
    return f"Write the {language} function {name} which {middle}, returning the result to the caller."


def round_one(prompt: str) -> Reply:
    lines = []
    for number, language, name in FUNCTION.findall(prompt):
        if name == "restock":
            continue  # left out: statement_missing
        text = statement_for(language, name)
        if name == "clamp":
            text += " For example ```clamp(5, 0, 3)```."
        if name == "Readings":  # a near-copy of Step's statement: similar_to_pool
            text = statement_for(language, "Step").replace("Step", "Readings")
        lines.append(f"{number}. {text}")
    return Reply.text("Here are the statements:\n\n" + "\n".join(lines))


def source_file(name: str) -> Path:
    for snippet in harvest_paths([FIXTURES]):
        if snippet.name == name:
            return Path(snippet.path)
    raise AssertionError(name)


def round_two(prompt: str) -> Reply:
    name = re.search(r"Keep the function `([^`]+)`", prompt).group(1)
    fence = re.search(r"one ```(\S+) code block", prompt).group(1)
    program = source_file(name).read_text()
    if name == "dot":
        return Reply.text(f"```{fence}\n{program[:40]}", finish_reason="length")  # cut off: program_truncated
    if name == "withdraw":
        program = program.replace("def withdraw", "def take_out")  # check_function_missing
    if name == "top_sellers":  # compiles, but fails when the sandbox imports it: check_import_failed
        program = "import a_module_that_is_not_installed\n" + program
    return Reply.text(f"Here is the complete program:\n\n```{fence}\n{program}```\n")


def scripted(req: RecordedRequest) -> Reply:
    prompt = req.body["messages"][-1]["content"]
    return round_one(prompt) if prompt.startswith("You are a programming teacher") else round_two(prompt)


@pytest.fixture()
def server():
    with LoopbackServer(scripted) as srv:
        yield srv


def run_args(server: LoopbackServer, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "reverse-instruct",
        "--paths",
        str(FIXTURES),
        "--teacher",
        "openai",
        "--base-url",
        server.base_url,
        "--model",
        "scripted-teacher",
        "--requests-per-step",
        "2",
        "--seed",
        "3",
        "--no-progress",
        "--max-retries",
        "1",
        "--timeout",
        "10",
        "--cache-dir",
        str(cache),
        "--output",
        str(out),
        *extra,
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


EXPECTED_REJECTS = {
    "restock": "statement_missing",
    "clamp": "statement_contains_code",
    "Readings": "similar_to_pool",
    "dot": "program_truncated",
    "withdraw": "check_function_missing",
    "fine": "check_syntax_error",
    "top_sellers": "check_import_failed",
}


def test_records_rejects_and_manifest_account_for_every_function(server, env_key, tmp_path):
    out = tmp_path / "ri.jsonl"
    assert main(run_args(server, out, tmp_path / "cache")) == 0
    functions = list(harvest_paths([FIXTURES]))
    rows, rejects = read_jsonl(out), read_jsonl(tmp_path / "ri.rejects.jsonl")
    reject_rows = [r for r in rejects if "step_done" not in r]
    assert sorted([r["meta"]["index"] for r in rows] + [r["index"] for r in reject_rows]) == list(range(len(functions)))
    by_name = {r["function"]["name"]: r["reason"] for r in reject_rows}
    assert {k: by_name.get(k) for k in EXPECTED_REJECTS} == EXPECTED_REJECTS
    assert set(by_name) - set(EXPECTED_REJECTS) <= {"constructor", "__init__"} | {
        n for n, reason in by_name.items() if reason == "check_compile_failed"
    }
    tools = available_toolchains()
    for row in rows:
        name, language = row["meta"]["function"]["name"], row["language"]
        assert name not in EXPECTED_REJECTS and row["source"] == "reverse-instruct"
        assert row["output"] == source_file(name).read_text() and row["input"] == ""
        assert row["instruction"].startswith("Write the ") and name in row["instruction"]
        checks = {c["check"].split()[0]: c["status"] for c in row["meta"]["checks"]}
        assert checks.pop("tree-sitter") == "passed"
        assert set(checks.values()) <= ({"passed"} if tools.get(language) else {"skipped"})
        assert row["meta"]["function"]["path"].startswith(str(FIXTURES)) and row["meta"]["teacher_model"]
    instructions = [r["instruction"] for r in rows]
    assert all(rouge_l(a, b) <= 0.7 for i, a in enumerate(instructions) for b in instructions[:i])
    assert "sk-test-not-a-secret" not in out.read_text()

    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    languages = manifest["languages"]
    assert set(languages) == {"python", "javascript", "java", "go", "ruby", "rust", "php", "c", "cpp", "csharp"}
    for lang, counts in languages.items():
        mine = [r for r in rows if r["language"] == lang]
        assert counts["records"] == len(mine)
        assert counts["functions"] == manifest["harvest"]["kept"][lang] == len(mine) + sum(counts["rejected"].values())
    assert languages["python"]["rejected"]["statement_missing"] == 1
    assert manifest["counts"]["emitted"] == len(rows) and manifest["total_records"] == len(rows)
    assert manifest["teacher_usage"]["requests"] == len(server.completion_requests())


def test_rerun_is_free_and_a_crash_mid_step_is_redone_identically(server, env_key, tmp_path):
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    assert main(run_args(server, ref, tmp_path / "cache")) == 0
    sent = len(server.completion_requests())
    assert main(run_args(server, ref, tmp_path / "cache")) == 0  # finished run: nothing to do, nothing sent
    assert len(server.completion_requests()) == sent
    assert json.loads(Path(f"{ref}.manifest.json").read_text())["resumed_from"] == len(read_jsonl(ref))

    # a crash after step 1's records reached the journal but before its rejects and marker did
    lines = (tmp_path / "ref.rejects.jsonl").read_text().splitlines(keepends=True)
    end0 = next(i for i, line in enumerate(lines) if json.loads(line).get("step_done") == 0)
    step1 = [line for line in lines[end0 + 1 :] if json.loads(line).get("step") == 1]
    (tmp_path / "out.rejects.jsonl").write_text("".join(lines[: end0 + 1]) + (step1[0][:25] if step1 else ""))
    out.write_text(
        "".join(line for line in ref.read_text().splitlines(keepends=True) if json.loads(line)["meta"]["step"] <= 1)
    )
    assert main(run_args(server, out, tmp_path / "cache")) == 0
    assert out.read_bytes() == ref.read_bytes()
    assert (tmp_path / "out.rejects.jsonl").read_bytes() == (tmp_path / "ref.rejects.jsonl").read_bytes()
    assert len(server.completion_requests()) == sent, "with the cache, the redone step costs nothing"


def test_limit_and_languages_and_bad_options(server, env_key, tmp_path, capsys):
    out = tmp_path / "few.jsonl"
    assert main(run_args(server, out, tmp_path / "cache", "--languages", "go,rust", "--limit", "3")) == 0
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert sum(v["functions"] for v in manifest["languages"].values()) == 3
    assert set(manifest["languages"]) <= {"go", "rust"}
    with pytest.raises(SystemExit, match="unknown languages"):
        main(run_args(server, tmp_path / "x.jsonl", tmp_path / "cache", "--languages", "cobol"))
    with pytest.raises(SystemExit, match="min_words"):
        main(run_args(server, tmp_path / "x.jsonl", tmp_path / "cache", "--min-words", "50", "--max-words", "10"))
