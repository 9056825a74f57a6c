"""Self-instruct's single mode (one task per request, then its answer) and the run's manifest.

The scripted teacher answers like an HTTP one: a task request gets one sentence that starts with the
words the prompt asks for, drawn from the request's seed; an answer request gets prose around a code
block. It also writes the usual garbage: too-short and blacklisted tasks, near-copies, replies cut
off by the token limit, answers that do not parse or that never close their block.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.rouge import rouge_l
from data_generation.sources.base import SourceStats
from data_generation.sources.self_instruct import tasks as si
from data_generation.sources.self_instruct.config import SelfInstructConfig
from data_generation.sources.self_instruct.source import SelfInstructSource
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import RecordedRequest, Reply
from tests.fake_teacher import ReplyStartingTeacher
from tests.paths import REPO

SEEDS = REPO / "data" / "seed_tasks.jsonl"
OPS = (
    "reverses sorts deduplicates counts splits validates compresses rotates merges flattens filters sums groups "
    "encodes parses pads trims ranks hashes caches scales clamps rounds buckets samples"
).split()
THINGS = (
    "integers strings scores matrices lines urls dates trees stacks queues objects tags nodes bytes prices "
    "readings tokens records intervals timestamps pages items words vectors"
).split()
WANTS = re.compile(r'starts with "([^"]+)"')


def task_reply(req: RecordedRequest) -> Reply:
    prompt = req.body["messages"][-1]["content"]
    prefix = WANTS.search(prompt).group(1)
    rng = random.Random(req.body.get("seed", 0))
    roll = rng.random()
    if roll < 0.08:
        return Reply.text("Sort it.")  # too_short
    if roll < 0.14:
        return Reply.text(f"{prefix} plays a song about sorting arrays.")  # blacklisted_word
    if roll < 0.2:
        return Reply.text(f"{prefix} takes a very long", finish_reason="length")  # parse_truncated
    if roll < 0.32:  # the same task again and again: similar_to_pool
        return Reply.text(f"{prefix} reverses the order of the words in a sentence.")
    middle = ", ".join(f"{rng.choice(OPS)} {rng.choice(THINGS)}" for _ in range(5))
    label = "Task: " if rng.random() < 0.3 else ""
    return Reply.text(f"{label}{prefix} {middle}.\nThis is a nice task.")


def answer_reply(req: RecordedRequest) -> Reply:
    user = req.body["messages"][-1]["content"]
    fence = "python" if "Python" in user else "javascript"
    rng = random.Random(req.body.get("seed", 0))
    roll = rng.random()
    if roll < 0.1:
        return Reply.text(f"```{fence}\ndef broken(:\n    return (\n```")  # answer_syntax_error
    if roll < 0.18:
        return Reply.text(f"Sure:\n```{fence}\ndef f(x):\n    return [", finish_reason="length")  # answer_truncated
    code = (
        "def solve(items):\n    return sorted(items)"
        if fence == "python"
        else "function solve(items) {\n  return [...items].sort();\n}"
    )
    return Reply.text(f"Here is the code:\n\n```{fence}\n{code}\n```\n\nIt sorts the items.")


def scripted(req: RecordedRequest) -> Reply:
    system = req.body["messages"][0]["content"]
    return task_reply(req) if system.startswith("You write short programming exercises") else answer_reply(req)


def run_args(server: LoopbackServer, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "self-instruct",
        "--teacher",
        "openai",
        "--base-url",
        server.base_url,
        "--model",
        "scripted-teacher",
        "--mode",
        "single",
        "--languages",
        "python,javascript",
        "--num-instructions",
        "24",
        "--requests-per-step",
        "8",
        "--machine-ratio",
        "0.5",
        "--seed",
        "3",
        "--no-progress",
        "--max-retries",
        "2",
        "--timeout",
        "10",
        "--cache-dir",
        str(cache),
        "--output",
        str(out),
        *extra,
    ]


@pytest.fixture()
def server():
    with LoopbackServer(scripted) as srv:
        yield srv


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def manifest_of(out: Path) -> dict:
    return json.loads(Path(f"{out}.manifest.json").read_text())


# ------------------------------------------------------------------ pure parts


def test_single_prompt_names_language_prefix_and_examples():
    seeds = si.load_seed_tasks(SEEDS)
    rng = random.Random(4)
    examples = si.sample_examples(seeds, [], 2, 0.0, rng)
    task = si.pick_single_task(["python", "java"], rng)
    again = random.Random(4)  # seeded: the same draws give the same examples and task
    assert si.sample_examples(seeds, [], 2, 0.0, again) == examples
    assert si.pick_single_task(["python", "java"], again) == task
    prompt = si.build_single_prompt(examples, task)
    assert f'starts with "{task.prefix}"' in prompt
    assert task.prefix.split()[1:] in (["a", "Python", "function", "that"], ["a", "Java", "method", "that"])
    for ex in examples:
        assert f"- {' '.join(ex.instruction.split())}" in prompt
    assert si.answer_prefix(task) == f"```{task.fence}\n"
    assert "one ```" in si.build_answer_system(task)


@pytest.mark.parametrize(
    "reply,finish,expected",
    [
        (
            "Write a Python function that sums a list.\nMore.",
            "stop",
            ("Write a Python function that sums a list.", None),
        ),
        ("Task: Write a Go function that pads a string.", "stop", ("Write a Go function that pads a string.", None)),
        (
            '**New task:** "Write a C function that counts bits."',
            "stop",
            ("Write a C function that counts bits.", None),
        ),
        ("1. Exercise: Create a Rust function that adds.", "stop", ("Create a Rust function that adds.", None)),
        ("Write a Python function that takes a very", "length", (None, "truncated")),
        ("  \n **Task:** ", "stop", (None, "missing_instruction")),
    ],
)
def test_single_instruction_parsing(reply, finish, expected):
    assert si.parse_single_instruction(reply, finish) == expected


def test_a_teacher_that_starts_replies_gets_prefixes_and_stops_at_the_closing_fence():
    def texts(request):
        if request.decoding.max_tokens == 48:  # the task request
            return " doubles every number of a list of integers.\nWrite a Python function that"
        return "def double(xs):\n    return [2 * x for x in xs]\n```\nThat doubles them."

    teacher = ReplyStartingTeacher(texts)
    cfg = SelfInstructConfig(
        seed_tasks=str(SEEDS),
        mode="single",
        languages=("python",),
        num_instructions=1,
        requests_per_step=1,
        instruction_max_tokens=48,
        max_tokens=96,
    )
    source = SelfInstructSource(cfg, teacher)
    [record] = list(source.records(SourceStats()))
    task_request, answer_request = teacher.requests
    assert task_request.reply_prefix.endswith("a Python function that") and task_request.decoding.stop == ("\n",)
    assert answer_request.reply_prefix == "```python\n" and answer_request.decoding.stop == ("```",)
    assert answer_request.messages[-1] == ("user", record.instruction)
    assert record.instruction.endswith("a Python function that doubles every number of a list of integers.")
    assert record.output == "def double(xs):\n    return [2 * x for x in xs]"
    assert record.language == "python" and record.meta["mode"] == "single"
    assert record.meta["finish_reason"] == "stop" and record.meta["instruction_finish_reason"] == "stop"


# ------------------------------------------------------------------ end to end (HTTP teacher)


def test_single_mode_keeps_exactly_n_valid_novel_tasks_with_provenance(server, env_key, tmp_path, caplog):
    out = tmp_path / "si.jsonl"
    caplog.set_level("INFO")
    assert main(run_args(server, out, tmp_path / "cache")) == 0
    rows = read_jsonl(out)
    assert len(rows) == 24
    seeds = [s.instruction for s in si.load_seed_tasks(SEEDS)]
    kept = []
    for r in rows:
        assert r["instruction"].startswith(("Write a", "Implement a", "Create a", "Define a"))
        assert "nice task" not in r["instruction"] and not r["instruction"].startswith("Task:")
        assert r["output"].startswith(("def solve", "function solve")) and "```" not in r["output"]
        assert r["language"] == r["meta"]["language_asked"] in ("python", "javascript")
        assert max(rouge_l(r["instruction"], other) for other in seeds + kept) <= 0.7
        kept.append(r["instruction"])
        meta = r["meta"]
        assert meta["mode"] == "single" and meta["teacher_model"] == "scripted-teacher"
        assert {
            "step",
            "request",
            "finish_reason",
            "instruction_finish_reason",
            "prompt_examples",
            "most_similar_instructions",
            "avg_similarity_score",
            "step_kept",
        } <= set(meta)
        assert len(meta["prompt_examples"]) == 3 and len(meta["most_similar_instructions"]) == 10
    assert any(o.startswith("machine:") for r in rows for o in r["meta"]["prompt_examples"])
    manifest = manifest_of(out)
    assert manifest["status"] == "completed" and manifest["stop_reason"] is None
    assert manifest["config"]["mode"] == "single" and manifest["total_records"] == 24
    rejected = manifest["counts"]["rejected"]
    assert {
        "too_short",
        "blacklisted_word",
        "parse_truncated",
        "similar_to_pool",
        "answer_syntax_error",
        "answer_truncated",
    } <= set(rejected)
    # one INFO line per step with kept and rejects by reason
    steps = [m for m in caplog.messages if m.startswith("self-instruct step ")]
    assert len(steps) == manifest["steps"] and "kept" in steps[0] and "rejected" in steps[0]
    assert any("similar_to_pool" in m for m in steps)


def test_single_mode_rerun_is_identical_and_free_and_a_cut_step_is_redone(server, env_key, tmp_path):
    ref, again, cut = tmp_path / "ref.jsonl", tmp_path / "again.jsonl", tmp_path / "cut.jsonl"
    assert main(run_args(server, ref, tmp_path / "cache")) == 0
    sent = len(server.completion_requests())
    assert main(run_args(server, again, tmp_path / "cache")) == 0
    assert len(server.completion_requests()) == sent, "a re-run must not pay twice"
    assert again.read_bytes() == ref.read_bytes()
    lines = ref.read_bytes().splitlines(keepends=True)
    cut.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])  # the last step lost a record, torn tail
    assert main(run_args(server, cut, tmp_path / "cache")) == 0
    assert cut.read_bytes() == ref.read_bytes()
    assert manifest_of(cut)["resumed_from"] < len(lines)


def test_a_step_boundary_rewrites_the_manifest(env_key, tmp_path):
    """What a `kill -9` would leave: while step k runs, the manifest on disk describes steps 0..k-1."""
    out = tmp_path / "si.jsonl"
    seen: list[tuple[str, int, int]] = []

    def spying(req: RecordedRequest) -> Reply:
        path = Path(f"{out}.manifest.json")
        if path.exists():
            m = json.loads(path.read_text())
            seen.append((m["status"], m["steps"], m["total_records"]))
        return scripted(req)

    with LoopbackServer(spying) as srv:
        assert main(run_args(srv, out, tmp_path / "cache", "--num-instructions", "10")) == 0
    steps = sorted({s for _, s, _ in seen})
    assert steps == list(range(len(steps))) and len(steps) >= 2  # rewritten at the start and after each step
    assert all(status == "running" for status, _, _ in seen)
    by_step = {s: n for _, s, n in seen}
    records = read_jsonl(out)
    for step, total in by_step.items():
        assert total == sum(1 for r in records if r["meta"]["step"] < step)
    assert manifest_of(out)["status"] == "completed"


def test_max_idle_steps_stops_with_the_reason_in_the_manifest(env_key, tmp_path):
    with LoopbackServer(lambda req: Reply.text("Sort it.")) as srv:
        out = tmp_path / "idle.jsonl"
        assert main(run_args(srv, out, tmp_path / "cache", "--max-idle-steps", "2")) == 0
    manifest = manifest_of(out)
    assert manifest["status"] == "stopped" and manifest["stop_reason"].startswith("max_idle_steps: 2 steps")
    assert manifest["steps"] == 2 and manifest["counts"]["rejected"] == {"too_short": 16}
    assert out.read_bytes() == b""


@pytest.mark.parametrize(
    "signum,code,reason",
    [(signal.SIGTERM, 143, "terminated: SIGTERM"), (signal.SIGINT, 130, "interrupted: SIGINT (Ctrl-C)")],
)
def test_sigterm_and_ctrl_c_record_where_the_run_stopped_then_it_resumes(env_key, tmp_path, signum, code, reason):
    def slow(req: RecordedRequest) -> Reply:
        reply = scripted(req)
        return Reply(texts=reply.texts, finish_reason=reply.finish_reason, delay=0.05)

    with LoopbackServer(slow) as srv:
        ref = tmp_path / "ref.jsonl"
        assert main(run_args(srv, ref, tmp_path / "cache-ref")) == 0
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "data_generation", *run_args(srv, out, tmp_path / "cache")]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        manifest = Path(f"{out}.manifest.json")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if manifest.exists() and json.loads(manifest.read_text())["steps"] >= 1:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == code, stderr[-2000:]
        stopped = json.loads(manifest.read_text())
        assert stopped["status"] == "stopped" and stopped["stop_reason"] == reason
        assert 0 < stopped["steps"] and stopped["total_records"] == len(out.read_bytes().splitlines()) < 24
        rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert out.read_bytes() == ref.read_bytes()
    assert json.loads(manifest.read_text())["status"] == "completed"


def test_bad_single_mode_options_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown languages"):
        main(["self-instruct", "--mode", "single", "--languages", "cobol", "--output", str(tmp_path / "x.jsonl")])
