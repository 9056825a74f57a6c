"""Resuming reverse instruction with other settings: a larger limit goes on after the last function
sent (none skipped, none twice); a setting that would make other records, or a corpus that no longer
starts with the functions done, stops with exit 2 and leaves every file as it was.

The scripted loopback teacher is the one of test_source.py (statements and programs read from the
prompts, some rejected on purpose).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.sources.reverse_instruct.resume import finished_functions
from data_generation.teacher.loopback import LoopbackServer
from tests.data_generation.sources.reverse_instruct.test_source import FIXTURES, read_jsonl, run_args, scripted

STEP_OF_8 = ("--snippets-per-request", "2", "--requests-per-step", "4")


@pytest.fixture()
def server():
    with LoopbackServer(scripted) as srv:
        yield srv


def functions_done(out: Path) -> list[tuple[int, str, str, int]]:
    """(index, name, path, start line) of every function the output's records and rejects hold."""
    records = [(r["meta"]["index"], r["meta"]["function"]) for r in read_jsonl(out)]
    rows = [row for row in read_jsonl(out.with_suffix(".rejects.jsonl")) if "step_done" not in row]
    found = records + [(row["index"], row["function"]) for row in rows]
    return sorted((i, f["name"], f["path"], f["start_line"]) for i, f in found)


def files_of(out: Path) -> dict[str, bytes]:
    """Every file the run keeps beside `out` (output, rejects, manifest; a lock left behind too)."""
    return {p.name: p.read_bytes() for p in sorted(out.parent.iterdir()) if p.name.startswith(out.stem)}


def test_limit_4_then_10_sends_every_function_0_to_9_exactly_once(server, env_key, tmp_path):
    out, ref, cache = tmp_path / "ri.jsonl", tmp_path / "ref.jsonl", tmp_path / "cache"
    assert main(run_args(server, out, cache, *STEP_OF_8, "--limit", "4")) == 0
    assert [i for i, *_ in functions_done(out)] == [0, 1, 2, 3]
    first_records = len(read_jsonl(out))
    assert main(run_args(server, out, cache, *STEP_OF_8, "--limit", "10")) == 0
    done = functions_done(out)
    assert [i for i, *_ in done] == list(range(10)), "functions 4..7 were skipped (resumed at step * step size)"
    # the same functions, at the same places, as one run with limit 10 takes
    assert main(run_args(server, ref, cache, *STEP_OF_8, "--limit", "10")) == 0
    assert done == functions_done(ref)
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["functions_sent"] == 10 and manifest["config"]["limit"] == 10
    assert sum(v["functions"] for v in manifest["languages"].values()) == 10
    assert manifest["resumed_from"] == first_records
    # a smaller limit afterwards has nothing left to send, and sends nothing
    sent = len(server.completion_requests())
    assert main(run_args(server, out, cache, *STEP_OF_8, "--limit", "6")) == 0
    assert functions_done(out) == done and len(server.completion_requests()) == sent


@pytest.mark.parametrize(
    "change,named",
    [
        (("--seed", "4"), "seed: 3 then, 4 now"),
        (("--model", "another-teacher"), 'teacher.model: "scripted-teacher" then, "another-teacher" now'),
        (("--max-words", "150"), "max_words: 200 then, 150 now"),
        (("--languages", "python"), 'languages: [] then, ["python"] now'),
        (("--compact-prompts",), "compact_prompts: false then, true now"),
        (("--requests-per-step", "2"), "requests_per_step: 4 then, 2 now"),
    ],
)
def test_a_setting_that_changes_the_records_refuses_and_touches_nothing(
    server, env_key, tmp_path, capsys, change, named
):
    out, cache = tmp_path / "ri.jsonl", tmp_path / "cache"
    assert main(run_args(server, out, cache, *STEP_OF_8, "--limit", "4")) == 0
    before, sent = files_of(out), len(server.completion_requests())
    capsys.readouterr()
    assert main(run_args(server, out, cache, *STEP_OF_8, "--limit", "10", *change)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: cannot resume") and named in err[0]
    assert "limit:" not in err[0], "a larger limit is not a change that refuses"
    assert files_of(out) == before and len(server.completion_requests()) == sent


def test_an_edited_corpus_refuses_before_anything_is_cut(server, env_key, tmp_path, capsys):
    corpus, out, cache = tmp_path / "corpus", tmp_path / "ri.jsonl", tmp_path / "cache"
    shutil.copytree(FIXTURES, corpus)
    args = ("--paths", str(corpus), *STEP_OF_8)
    assert main(run_args(server, out, cache, *args, "--limit", "10")) == 0  # steps 0 (8 functions) and 1
    # a crash tore step 1's marker (a cut the resume would make), then the C file gained a function
    # before the others: function 0 is now another one
    rejects = out.with_suffix(".rejects.jsonl")
    rejects.write_bytes(rejects.read_bytes()[:-7])
    c_file = corpus / "sample.c"
    c_file.write_text("int first_of_all(int x) {\n    int y = x * 2;\n    return y + 1;\n}\n\n" + c_file.read_text())
    before = files_of(out)
    assert main(run_args(server, out, cache, *args, "--limit", "12")) == 2
    err = capsys.readouterr().err
    assert "function 0 of the run was `reverse`" in err and "`first_of_all`" in err
    assert files_of(out) == before


def test_files_of_a_resume_that_skipped_functions_are_refused():
    """What the old resume (steps times the step size) left after LIMIT 4 then 10: functions 4..7 never
    sent. Such files cannot be continued exactly, and the message says which functions are missing."""
    rows = [{"index": i, "function": {"name": f"f{i}"}} for i in (0, 1, 2, 3, 8, 9)]
    with pytest.raises(ValueError, match=r"never sent: 4-7; sent twice: none"):
        finished_functions([], rows)
    with pytest.raises(ValueError, match=r"never sent: none; sent twice: 1"):
        finished_functions([], rows[:2] + rows[1:2])
    assert finished_functions([], rows[:4][::-1]) == [{"name": f"f{i}"} for i in range(4)]
