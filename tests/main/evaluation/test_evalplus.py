"""HumanEval+ / MBPP+: the release loader, and verdicts equal to EvalPlus's own evaluator on the same
samples (fixtures in tests/fixtures/evalplus, written in the release schema from the real problems)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import DataChoice
from data_generation.common.io import DataError
from main.evaluation.harness import EvalConfig, evaluate
from scripts.bench.bench_evalplus import theirs as evalplus_verdicts
from tests.paths import FIXTURES

HERE = FIXTURES / "evalplus"
RELEASES = {"humaneval_plus": HERE / "HumanEvalPlus-fixture.jsonl", "mbpp_plus": HERE / "MbppPlus-fixture.jsonl"}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECAPY_CACHE_DIR", str(tmp_path / "cache"))


def test_the_loader_reads_the_release_schema_and_rebuilds_mbpp_types(tmp_path: Path) -> None:
    he = get_benchmark("humaneval_plus").load(DataChoice(source=str(RELEASES["humaneval_plus"])))
    assert [p.task_id for p in he][:2] == ["HumanEval/0", "HumanEval/2"] and he[0].entry_point == "has_close_elements"
    mbpp = {p.task_id: p for p in get_benchmark("mbpp_plus").load(DataChoice(source=str(RELEASES["mbpp_plus"])))}
    assert mbpp[2].meta["base_input"][0] == [(3, 4, 5, 6), (5, 7, 4, 10)]  # tuples, as the functions take them
    assert mbpp[124].meta["plus_input"][0] == (1.0, complex(0, -1))
    assert mbpp[2].prompt == "Write a function to find the similar elements from the given two tuple lists."
    packed = tmp_path / "MbppPlus.jsonl.gz"
    packed.write_bytes(gzip.compress(RELEASES["mbpp_plus"].read_bytes()))
    assert len(get_benchmark("mbpp_plus").load(DataChoice(source=str(packed)))) == 5
    broken = tmp_path / "broken.jsonl"
    rows = RELEASES["mbpp_plus"].read_text().splitlines()
    row = json.loads(rows[1])
    del row["plus_input"]
    broken.write_text("\n".join([rows[0], json.dumps(row)]) + "\n")
    with pytest.raises(DataError, match=r"broken.jsonl:2: not an EvalPlus release row: missing plus_input"):
        get_benchmark("mbpp_plus").load(DataChoice(source=str(broken)))


@pytest.mark.parametrize("name", ["humaneval_plus", "mbpp_plus"])
def test_verdicts_equal_evalplus_sample_for_sample(name: str, tmp_path: Path) -> None:
    bench = get_benchmark(name)
    data = DataChoice(source=str(RELEASES[name]))
    config = EvalConfig(n_workers=2, allow_incomplete=True, ks=(1,))
    samples = HERE / f"{name}_samples.jsonl"
    metrics = evaluate(
        samples, bench.load(data), tmp_path / "out", config, benchmark=name, dataset=bench.describe(data)
    )
    ours = [(row["base_passed"], row["passed"]) for row in map(json.loads, (tmp_path / "out" / "results.jsonl").open())]
    theirs, _ = evalplus_verdicts(name, samples, workers=2)  # evalplus's own trusted_exec + untrusted_check
    tasks = [json.loads(line)["task_id"] for line in samples.read_text().splitlines()]
    # EvalPlus 0.3.1 fails every HumanEval/32 sample, the reference included: its find_zero oracle
    # `continue`s past the progress counter, so untrusted_check sees fewer results than inputs. We
    # judge that task by its oracle (a root within atol); everything else is verdict for verdict.
    odd = [i for i, t in enumerate(tasks) if t == "HumanEval/32"]
    assert [theirs[i] for i in odd] == [(False, False)] * len(odd)
    assert [ours[i] for i in odd] == [(True, True), (True, True), (False, False)][: len(odd)]
    assert [v for i, v in enumerate(ours) if i not in odd] == [v for i, v in enumerate(theirs) if i not in odd]
    # neither side is trivial: some samples pass everything, some only the base tests, some nothing
    assert {v for v in ours} >= {(True, True), (False, False)}
    assert metrics["base_tests"]["pass@1"] >= metrics["pass@1"]
    assert "per input: max(1 s, 4 x" in metrics["harness"]["timeouts"]["policy"]
    assert Path(metrics["harness"]["timeouts"]["cache"]).exists()


def test_the_command_evaluates_mbpp_plus_and_reports_both_test_sets(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    argv = ["--benchmark", "mbpp_plus", "--mbpp_plus-path", str(RELEASES["mbpp_plus"]), "--allow-incomplete"]
    argv += ["--input", str(HERE / "mbpp_plus_samples.jsonl"), "--output-dir", str(out), "--ks", "1"]
    proc = subprocess.run([sys.executable, "-m", "main.evaluate", *argv], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["sha256"] and metrics["base_tests"]["intervals"]["pass@1"]["level"] == 0.95
    report = (out / "report.md").read_text()
    assert "MBPP pass@1" in report and "MBPP+ pass@1" in report


def test_a_reference_that_fails_its_inputs_is_bad_data(tmp_path: Path) -> None:
    broken = tmp_path / "MbppPlus.jsonl"
    row = json.loads(RELEASES["mbpp_plus"].read_text().splitlines()[2])  # Mbpp/17, square_perimeter
    row["plus_input"] = [["not a number", None]]
    broken.write_text(json.dumps(row) + "\n")
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "Mbpp/17", "completion": row["canonical_solution"]}) + "\n")
    argv = ["--benchmark", "mbpp_plus", "--mbpp_plus-path", str(broken), "--input", str(samples)]
    proc = subprocess.run(
        [sys.executable, "-m", "main.evaluate", *argv, "--output-dir", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Mbpp/17: the reference solution fails on its plus inputs" in proc.stderr


def test_new_inputs_are_never_judged_by_cached_outputs_and_each_input_set_has_its_own_limit(tmp_path: Path) -> None:
    from data_generation.common.sandbox.execution import Limits
    from main.evaluation.oracle import TimeoutPolicy, calibrate

    bench = get_benchmark("mbpp_plus")
    first = bench.load(DataChoice(source=str(RELEASES["mbpp_plus"])))
    limits, _ = calibrate(bench, first, Limits(), TimeoutPolicy(), n_workers=2, allow_weak=False)
    p17 = next(p for p in first if p.task_id == 17)
    for part in ("base", "plus"):  # EvalPlus: each input set's process gets the sum of its inputs' limits + 2 s
        assert limits[17, part].wall == min(60, sum(p17.meta["oracle"][part]["limits"])) + 2
    changed = tmp_path / "MbppPlus.jsonl"
    rows = [json.loads(line) for line in RELEASES["mbpp_plus"].read_text().splitlines()]
    rows[2]["plus_input"] = [[7], [11], [13], [17], [19]]  # Mbpp/17 with other inputs, same everything else
    changed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    second = bench.load(DataChoice(source=str(changed)))
    calibrate(bench, second, Limits(), TimeoutPolicy(), n_workers=2, allow_weak=False)
    q17 = next(p for p in second if p.task_id == 17)
    assert len(q17.meta["oracle"]["plus"]["limits"]) == 5
    assert q17.meta["oracle"]["plus"]["expected"] != p17.meta["oracle"]["plus"]["expected"]


def test_a_sample_that_empties_the_input_list_fails(tmp_path: Path) -> None:
    hack = "import sys\nsys._getframe(1).f_globals['_inputs'][:] = []\n\ndef square_perimeter(a):\n    return 0\n"
    samples = tmp_path / "s.jsonl"
    samples.write_text(
        json.dumps({"task_id": "Mbpp/17", "completion": hack, "completion_is_full_program": True}) + "\n"
    )
    bench = get_benchmark("mbpp_plus")
    data = DataChoice(source=str(RELEASES["mbpp_plus"]))
    problems = [p for p in bench.load(data) if p.task_id == 17]
    config = EvalConfig(n_workers=1, ks=(1,))
    evaluate(samples, problems, tmp_path / "o", config, benchmark="mbpp_plus", dataset=bench.describe(data))
    row = json.loads((tmp_path / "o" / "results.jsonl").read_text())
    assert not row["passed"] and not row["base_passed"] and "not every input was checked" in row["base_result"]
