"""Self-instruct end to end through the real `openai` SDK against the loopback server.

The scripted teacher below answers like a real one: it reads the batch prompt, continues the
numbered list from the first free number up to `num_tasks`, and draws its tasks from the request's
`seed`, so the same request always gets the same reply (as a cached one would). It also writes the
usual garbage: too-short and blacklisted instructions, missing outputs, near-copies of other tasks,
and replies cut off by `finish_reason: length`.
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
from data_generation.common.io import DataError
from data_generation.common.rouge import rouge_l
from data_generation.sources.parsing import parse_numbered_tasks
from data_generation.sources.self_instruct import tasks as si
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import RecordedRequest, Reply
from tests.paths import REPO

VERBS = ["Implement", "Create", "Write", "Build", "Design", "Code", "Develop", "Produce"]
LANGS = ["Python", "Go", "Rust", "Java", "C++", "Ruby", "PHP", "TypeScript", "C#", "Bash"]
THINGS = [
    "linked list",
    "binary heap",
    "trie",
    "ring buffer",
    "LRU cache",
    "interval tree",
    "bloom filter",
    "matrix",
    "CSV parser",
    "rate limiter",
    "URL router",
    "JSON encoder",
    "tokenizer",
    "priority queue",
    "sparse vector",
    "date formatter",
    "event emitter",
    "union find",
    "skip list",
    "bit set",
]
OPS = [
    "merges two",
    "validates a",
    "serialises a",
    "reverses the order of a",
    "deduplicates a",
    "counts items in a",
    "finds the median of a",
    "splits a",
    "compresses a",
    "pretty-prints a",
    "checks invariants of a",
    "rotates a",
    "benchmarks a",
    "clones a deep",
]


def scripted_task(rng: random.Random) -> tuple[str, str, str]:
    roll = rng.random()
    if roll < 0.05:
        return "Sort it.", "", "sorted(xs)"
    if roll < 0.10:
        return "Draw a picture of a robot writing code.", "", "I cannot."
    if roll < 0.14:
        return f"{rng.choice(VERBS)} a {rng.choice(LANGS)} function for a {rng.choice(THINGS)}.", "", ""
    words = f"{rng.choice(VERBS)} a {rng.choice(LANGS)} function that {rng.choice(OPS)} {rng.choice(THINGS)}"
    if rng.random() < 0.5:
        words += f" and returns the {rng.choice(['result', 'size', 'error', 'new state'])} in O(n) time"
    inp = "<noinput>" if rng.random() < 0.6 else f"data = [{rng.randint(1, 9)}, {rng.randint(10, 99)}]"
    return words + ".", inp, f"def solve(data):\n    return sorted(data)[:{rng.randint(1, 5)}]"


def scripted_reply(req: RecordedRequest) -> Reply:
    body = req.body
    prompt = body.get("prompt") or body["messages"][-1]["content"]
    first = int(re.search(r"(\d+)\. Instruction:$", prompt).group(1))
    total = int(re.search(r"List of (\d+) tasks", prompt).group(1))
    rng = random.Random(body.get("seed", 0))
    blocks = []
    for k in range(first, total + 1):
        instruction, inp, out = scripted_task(rng)
        head = f" {instruction}" if k == first else f"{k}. Instruction: {instruction}"
        blocks.append(f"{head}\n{k}. Input:\n{inp}\n{k}. Output:\n{out}\n")
    text = "###\n".join(blocks)
    if rng.random() < 0.2:  # cut off mid-task, as a max_tokens stop does
        return Reply.text(text[: len(text) * 3 // 4], finish_reason="length")
    return Reply.text(text)


def run_args(server: LoopbackServer, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "self-instruct",
        "--teacher",
        "openai",
        "--base-url",
        server.base_url,
        "--model",
        "scripted-teacher",
        "--num-instructions",
        "40",
        "--num-tasks",
        "8",
        "--requests-per-step",
        "3",
        "--machine-ratio",
        "0.34",
        "--seed",
        "7",
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
    with LoopbackServer(scripted_reply) as srv:
        yield srv


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------ pure parts


def test_prompt_has_examples_and_continues_at_the_next_number():
    seeds = si.load_seed_tasks(REPO / "data" / "seed_tasks.jsonl")
    examples = si.sample_examples(seeds, [], 3, 0.0, random.Random(1))
    prompt, first = si.build_prompt(examples, 20)
    assert first == 4 and prompt.endswith("###\n4. Instruction:")
    assert "List of 20 tasks" in prompt
    for i, ex in enumerate(examples, start=1):
        assert f"{i}. Instruction: {ex.instruction}\n{i}. Input:\n{ex.input or '<noinput>'}\n{i}. Output:\n" in prompt
    # the prompt's own examples parse back with the reply parser (same format both ways)
    shown, _ = parse_numbered_tasks(prompt[prompt.index("###") :])
    assert [t.instruction for t in shown] == [ex.instruction for ex in examples]


def test_sampling_mixes_machine_tasks_by_ratio_and_is_seeded():
    seeds = [si.Example(f"seed task {i} here", "", "x", f"seed:{i}") for i in range(10)]
    machine = [si.Example(f"machine task {i} here", "", "y", f"machine:{i}") for i in range(10)]
    picked = si.sample_examples(seeds, machine, 3, 0.34, random.Random(5))
    assert [ex.origin.split(":")[0] for ex in picked] == ["seed", "seed", "machine"]
    assert picked == si.sample_examples(seeds, machine, 3, 0.34, random.Random(5))
    assert len({ex.origin for ex in si.sample_examples(seeds, machine[:0], 3, 1.0, random.Random(5))}) == 3


@pytest.mark.parametrize(
    "reply,prefix_expected",
    [
        (" Merge two sorted lists in Go.\n4. Input:\n<noinput>\n4. Output:\nfunc merge() {}\n", True),
        ("4. Instruction: Merge two sorted lists in Go.\n4. Input:\n<noinput>\n4. Output:\nfunc merge() {}\n", False),
        ("**4. Instruction:** Merge two sorted lists in Go.\n4. Output:\nfunc merge() {}", False),
    ],
)
def test_reply_parses_with_or_without_the_repeated_marker(reply, prefix_expected):
    tasks, rejects = si.parse_reply(reply, 4, "stop")
    assert [(t.index, t.instruction, t.input, t.output) for t in tasks] == [
        (4, "Merge two sorted lists in Go.", "", "func merge() {}")
    ]
    assert rejects == []


def test_bad_seed_file_names_file_and_line(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(
        '{"instruction": "Do a thing well", "instances": [{"input": "", "output": "ok"}]}\n'
        '{"instruction": "Missing instances"}\n'
    )
    with pytest.raises(DataError, match=r"seeds\.jsonl:2: .*instances"):
        si.load_seed_tasks(path)


# ------------------------------------------------------------------ end to end


def test_run_keeps_exactly_n_novel_valid_tasks_with_provenance(server, env_key, tmp_path):
    out = tmp_path / "si.jsonl"
    assert main(run_args(server, out, tmp_path / "cache")) == 0
    rows = read_jsonl(out)
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    seeds = [s.instruction for s in si.load_seed_tasks(REPO / "data" / "seed_tasks.jsonl")]
    kept = []
    for r in rows:
        assert r["source"] == "self-instruct" and r["output"].strip() and len(r["instruction"].split()) >= 3
        assert "Draw a picture" not in r["instruction"]
        # the ROUGE-L guarantee: below the threshold against seeds and every earlier kept task
        assert max(rouge_l(r["instruction"], other) for other in seeds + kept) <= 0.7
        kept.append(r["instruction"])
        meta = r["meta"]
        assert meta["teacher_model"] == "scripted-teacher" and meta["step_kept"] >= 1
        assert len(meta["most_similar_instructions"]) == 10 and 0 < meta["avg_similarity_score"] < 0.7
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["emitted"] == 40
    assert {"too_short", "blacklisted_word", "similar_to_pool"} <= set(counts["rejected"])
    assert any(k.startswith("parse_") for k in counts["rejected"])
    usage = manifest["teacher_usage"]
    assert usage["requests"] == len(server.completion_requests()) > 0
    assert "sk-test-not-a-secret" not in out.read_text() + json.dumps(manifest)
    machine_examples = [o for r in rows for o in r["meta"]["prompt_examples"] if o.startswith("machine:")]
    assert machine_examples, "later steps show machine-written tasks in context"


def test_rerun_with_the_cache_is_identical_and_free(server, env_key, tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(run_args(server, first, tmp_path / "cache")) == 0
    sent = len(server.completion_requests())
    assert main(run_args(server, second, tmp_path / "cache")) == 0
    assert len(server.completion_requests()) == sent, "a re-run must not pay twice"
    assert first.read_bytes() == second.read_bytes()


def test_torn_tail_and_incomplete_step_are_redone_identically(server, env_key, tmp_path):
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    assert main(run_args(server, ref, tmp_path / "cache")) == 0
    lines = ref.read_bytes().splitlines(keepends=True)
    # a crash mid-step: the last step lost its final record, and a torn half line follows
    last_step = json.loads(lines[-1])["meta"]["step"]
    cut = max(i for i, line in enumerate(lines) if json.loads(line)["meta"]["step"] != last_step) + 1
    partial = lines[:cut] + lines[cut:-1] if len(lines) - cut > 1 else lines[:cut]
    out.write_bytes(b"".join(partial) + lines[-1][:17])
    assert main(run_args(server, out, tmp_path / "cache")) == 0
    assert out.read_bytes() == ref.read_bytes()
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["resumed_from"] == cut


def test_kill_9_then_rerun_loses_and_duplicates_nothing(env_key, tmp_path):
    """A real SIGKILL mid-run (slow teacher), then a resume: same file as an uninterrupted run."""

    def slow(req: RecordedRequest) -> Reply:
        reply = scripted_reply(req)
        return Reply(texts=reply.texts, finish_reason=reply.finish_reason, delay=0.15)

    with LoopbackServer(slow) as srv:
        ref = tmp_path / "ref.jsonl"
        assert main(run_args(srv, ref, tmp_path / "cache-ref")) == 0
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "data_generation", *run_args(srv, out, tmp_path / "cache-run")]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.stat().st_size == 0):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = len(out.read_bytes().splitlines())
        assert 0 < partial < 40, "the kill must land mid-run"
        assert json.loads(Path(f"{out}.lock").read_text())["pid"] == proc.pid, "its lock file stays, harmless"
        rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert out.read_bytes() == ref.read_bytes()


def test_teacher_failure_stops_with_progress_kept_and_resumes(server, env_key, tmp_path):
    ref = tmp_path / "ref.jsonl"
    assert main(run_args(server, ref, tmp_path / "cache-ref")) == 0
    full_run = len(server.completion_requests())
    calls = {"n": 0}

    def auth_breaks_after_two_steps(req: RecordedRequest) -> Reply:
        calls["n"] += 1
        return Reply.error(401, "Incorrect API key provided") if calls["n"] > 6 else scripted_reply(req)

    out = tmp_path / "out.jsonl"
    with LoopbackServer(auth_breaks_after_two_steps) as srv:
        assert main(run_args(srv, out, tmp_path / "cache")) == 1
        assert len(srv.completion_requests()) <= 9, "a 401 stops at once: no retries"
    assert 0 < len(out.read_bytes().splitlines()) < 40
    # the manifest describes the finished steps and says why the run stopped
    stopped = json.loads(Path(f"{out}.manifest.json").read_text())
    assert stopped["status"] == "failed" and "401" in stopped["stop_reason"]
    assert stopped["total_records"] == len(out.read_bytes().splitlines()) and stopped["steps"] == 2
    with LoopbackServer(scripted_reply) as srv:
        assert main(run_args(srv, out, tmp_path / "cache")) == 0
        assert len(srv.completion_requests()) == full_run - 6, "the two finished steps came from the cache"
    assert out.read_bytes() == ref.read_bytes()


def test_foreign_output_file_is_refused(server, env_key, tmp_path):
    out = tmp_path / "other.jsonl"
    out.write_text(
        json.dumps({"instruction": "Some other task here", "input": "", "output": "x", "source": "codealpaca"}) + "\n"
    )
    assert main(run_args(server, out, tmp_path / "cache")) == 2


def test_the_script_runs_against_an_openai_compatible_server(server, tmp_path):
    out = tmp_path / "script.jsonl"
    env = dict(
        os.environ,
        TEACHER="openai",
        BASE_URL=server.base_url,
        MODEL="scripted-teacher",
        NUM="6",
        OUTPUT=str(out),
        OPENAI_API_KEY="sk-test-not-a-secret",
    )
    done = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "self_instruct.sh"),
            "--num-tasks",
            "8",
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(read_jsonl(out)) == 6
    assert json.loads(Path(f"{out}.manifest.json").read_text())["config"]["teacher"]["model"] == "scripted-teacher"
