"""Resuming self-instruct with other settings: a larger `--num-instructions` goes on from where the run
stopped (nothing redone, nothing twice); a setting that would make other tasks (the seed tasks' content,
the teacher model, the sampling, the API) stops with exit 2, names it and leaves every file as it was.

The scripted loopback teacher is the one of test_source.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.rouge import rouge_l
from data_generation.sources.self_instruct import tasks as si
from data_generation.teacher.loopback import LoopbackServer
from tests.data_generation.sources.self_instruct.test_source import read_jsonl, run_args, scripted_reply
from tests.paths import REPO

SEEDS = REPO / "data" / "seed_tasks.jsonl"


@pytest.fixture()
def server():
    with LoopbackServer(scripted_reply) as srv:
        yield srv


@pytest.fixture()
def seeds(tmp_path: Path) -> Path:
    path = tmp_path / "seeds" / "seed_tasks.jsonl"
    path.parent.mkdir()
    shutil.copy(SEEDS, path)
    return path


def files_of(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.parent.iterdir()) if p.name.startswith(out.stem)}


def test_a_larger_target_goes_on_from_where_the_run_stopped(server, env_key, tmp_path, seeds):
    out, cache = tmp_path / "si.jsonl", tmp_path / "cache"
    assert main(run_args(server, out, cache, "--seed-tasks", str(seeds), "--num-instructions", "10")) == 0
    first = out.read_bytes()
    # the seed file moved (same content): not a change
    moved = tmp_path / "moved.jsonl"
    shutil.move(seeds, moved)
    assert main(run_args(server, out, cache, "--seed-tasks", str(moved), "--num-instructions", "20")) == 0
    rows = read_jsonl(out)
    assert out.read_bytes().startswith(first), "the first run's tasks stay as they were"
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20
    steps = [r["meta"]["step"] for r in rows]
    assert steps == sorted(steps) and steps[10] > steps[9], "the resume starts with the step after the last one"
    pool = [s.instruction for s in si.load_seed_tasks(moved)]
    for row in rows:  # the ROUGE-L guarantee holds across the two runs
        assert max(rouge_l(row["instruction"], other) for other in pool) <= 0.7
        pool.append(row["instruction"])
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["resumed_from"] == 10 and manifest["config"]["num_instructions"] == 20
    assert manifest["status"] == "completed" and manifest["total_records"] == 20


def drop_last_seed(seeds: Path) -> tuple[str, ...]:
    """Edit the seed file in place (no option changes)."""
    lines = seeds.read_text().splitlines(keepends=True)
    seeds.write_text("".join(lines[:-1]))
    return ()


@pytest.mark.parametrize(
    "change,named",
    [
        (drop_last_seed, "seed_tasks_sha256: "),
        (lambda seeds: ("--model", "another-teacher"), 'teacher.model: "scripted-teacher" then, "another-teacher" now'),
        (lambda seeds: ("--temperature", "0.5"), "temperature: 1.0 then, 0.5 now"),
        (lambda seeds: ("--api", "chat"), "prompts_sha256: "),
        (lambda seeds: ("--seed", "8"), "seed: 7 then, 8 now"),
    ],
    ids=["seed-file-edited", "model", "temperature", "api", "seed"],
)
def test_a_setting_that_changes_the_tasks_refuses_and_touches_nothing(
    server, env_key, tmp_path, seeds, capsys, change, named
):
    out, cache = tmp_path / "si.jsonl", tmp_path / "cache"
    assert main(run_args(server, out, cache, "--seed-tasks", str(seeds), "--num-instructions", "10")) == 0
    # a crash tore the journal's last line: the refused run must not even cut that
    out.write_bytes(out.read_bytes() + b'{"instruction": "half a li')
    before, sent = files_of(out), len(server.completion_requests())
    capsys.readouterr()
    extra = change(seeds)
    assert main(run_args(server, out, cache, "--seed-tasks", str(seeds), "--num-instructions", "20", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: cannot resume") and named in err[0]
    assert "num_instructions" not in err[0], "a larger target is not a change that refuses"
    assert files_of(out) == before and len(server.completion_requests()) == sent
