"""The semantic decontamination layer against its goal, on the calibration set and the real CodeAlpaca
sample, and inside the merge (drops with both texts, the manifest, the teacher's confirmation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_generation.dataset import behaviour
from data_generation.dataset.decontaminate import load_benchmark_docs
from data_generation.dataset.merge import MergeConfig, merge
from data_generation.dataset.semantic import SemanticConfig, SemanticIndex
from data_generation.teacher.loopback import LoopbackServer
from tests.paths import FIXTURES

PAIRS = FIXTURES / "decontamination" / "calibration_pairs.jsonl"


@pytest.fixture(scope="module")
def index(mbpp_full: Path) -> SemanticIndex:
    return SemanticIndex(load_benchmark_docs(("humaneval", "mbpp"), {"mbpp": str(mbpp_full)}))


def _find(index: SemanticIndex, rows: list[dict]):
    return index.find([r["instruction"] for r in rows], [r.get("input", "") for r in rows], [r["output"] for r in rows])


def test_calibration_set_meets_the_goal(index: SemanticIndex) -> None:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    hits = {h.index: h for h in _find(index, rows).hits}
    rewordings = [i for i, r in enumerate(rows) if r["kind"] != "different_problem"]
    found = [i for i in rewordings if i in hits and hits[i].task_id == rows[i]["task_id"]]
    assert len(found) / len(rewordings) >= 0.9, [rows[i]["task_id"] for i in rewordings if i not in found]
    assert not [rows[i]["instruction"] for i in hits if rows[i]["kind"] == "different_problem"]
    # the three kinds of evidence each carry part of it
    assert {hits[i].method for i in found} >= {"behaviour", "literals"}


def test_real_codealpaca_loses_at_most_one_percent(index: SemanticIndex, code_alpaca_2k: Path) -> None:
    rows = json.loads(code_alpaca_2k.read_text(encoding="utf-8"))
    result = _find(index, rows)
    assert len(result.hits) <= 0.01 * len(rows)
    # everyday tasks (a sort, a palindrome test) are solved by many rows: counted, not evidence
    assert result.everyday and max(result.everyday.values()) > SemanticConfig().max_solvers
    assert result.sandbox_note == ""


def test_a_refused_sandbox_keeps_the_other_evidence(index: SemanticIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise behaviour.SandboxError("namespaces refused (test)")

    monkeypatch.setattr(behaviour, "run_checks", refuse)
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    result = _find(index, rows)
    assert "behaviour check skipped: namespaces refused (test)" in result.sandbox_note
    assert {h.method for h in result.hits} == {"literals"}


def _inputs(tmp_path: Path, code_alpaca_2k: Path) -> Path:
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    rows = json.loads(code_alpaca_2k.read_text(encoding="utf-8"))[:150]
    rows += [{"instruction": p["instruction"], "input": "", "output": p["output"]} for p in pairs[:6]]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_merge_drops_rewordings_with_both_texts(tmp_path: Path, code_alpaca_2k: Path, mbpp_full: Path) -> None:
    out = tmp_path / "out"
    cfg = MergeConfig(inputs=[str(_inputs(tmp_path, code_alpaca_2k))], output_dir=str(out))
    cfg.benchmark_paths = {"mbpp": str(mbpp_full)}
    manifest = merge(cfg)
    drops = [json.loads(line) for line in (out / "drops.jsonl").read_text().splitlines()]
    semantic = [d for d in drops if d.get("layer") == "semantic"]
    assert len(semantic) >= 5 and manifest["semantic"]["dropped"] == len(semantic)
    for d in semantic:
        assert d["reason"] == f"contaminated:{d['benchmark']}" and d["task_id"] and d["evidence"]
        assert d["instruction"] and d["other_text"] and 0 < d["score"] <= 1
    assert manifest["semantic"]["model"].startswith("wordllama/")
    quality = (out / "quality.md").read_text()
    assert "semantic" in quality and semantic[0]["task_id"] in quality


def test_teacher_confirms_or_clears_each_pair(
    tmp_path: Path, code_alpaca_2k: Path, mbpp_full: Path, env_key: None
) -> None:
    def reply(req) -> str:  # says "no" to the pair about HumanEval/0 only
        text = json.dumps(req.body.get("messages"))
        return "No." if "threshold" in text else "Yes"

    out = tmp_path / "out"
    with LoopbackServer(reply) as srv:
        argv = ["merge", "--input", str(_inputs(tmp_path, code_alpaca_2k)), "--output-dir", str(out)]
        argv += ["--mbpp-path", str(mbpp_full), "--semantic-confirm", "--teacher", "openai"]
        argv += ["--base-url", srv.base_url, "--model", "loopback-model", "--no-cache", "--no-progress"]
        proc = subprocess.run([sys.executable, "-m", "data_generation", *argv], capture_output=True, text=True)
        asked = len(srv.completion_requests())
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    cleared = manifest["semantic"]["cleared_by_teacher"]
    assert [c["task_id"] for c in cleared] == ["HumanEval/0"]
    assert asked == manifest["semantic"]["flagged"] == manifest["semantic"]["dropped"] + 1
    drops = [json.loads(line) for line in (out / "drops.jsonl").read_text().splitlines()]
    assert all(d["teacher"]["same"] and d["teacher"]["answer"] == "Yes" for d in drops if d.get("layer") == "semantic")
