import json
import subprocess
import sys

import pytest

from data_generation.cli import main
from data_generation.common.io import read_records
from data_generation.dataset.merge import MergeConfig, merge


@pytest.fixture(scope="module")
def sources(tmp_path_factory, code_alpaca_2k, repo_root):
    """The real CodeAlpaca sample and the CodeContests fixture, each through its source command."""
    tmp = tmp_path_factory.mktemp("sources")
    ca, cc = tmp / "codealpaca.jsonl", tmp / "codecontests.jsonl"
    assert main(["codealpaca", "--input", str(code_alpaca_2k), "--output", str(ca)]) == 0
    assert (
        main(
            [
                "codecontests",
                "--input",
                str(repo_root / "data/samples/code_contests_sample.jsonl"),
                "--output",
                str(cc),
                "--solutions",
                "all",
                "--max-per-language",
                "2",
            ]
        )
        == 0
    )
    return ca, cc


def _merge(sources, out, mbpp, **kw):
    cfg = MergeConfig(
        inputs=[str(p) for p in sources],
        output_dir=str(out),
        benchmark_paths={"mbpp": str(mbpp)},
        formats=("json", "jsonl", "parquet", "hf"),
        **kw,
    )
    return merge(cfg)


def test_real_codealpaca_plus_codecontests(sources, tmp_path, mbpp_full):
    # Add exact and near duplicates and a contaminated row so every stage has work to do.
    extra = tmp_path / "extra.json"
    ca_rows = [json.loads(line) for line in sources[0].read_text().splitlines()]
    extra.write_text(
        json.dumps(
            [
                {
                    "instruction": ca_rows[5]["instruction"].upper() + "  ",
                    "input": ca_rows[5]["input"],
                    "output": ca_rows[5]["output"],
                },
                {
                    "instruction": "Write a python function to remove first and last occurrence of a given character "
                    "from the string.",
                    "input": "",
                    "output": "def remove_occ(s, ch):\n    return s",
                },
                {"instruction": "bad row without output"},
            ]
        )
    )
    manifest = _merge([*sources, extra], tmp_path / "out", mbpp_full, validation_size=0.1)
    c = manifest["counts"]
    assert c["input"] == c["kept"] + sum(c["dropped"].values())
    for name, s in manifest["per_source"].items():
        assert s["input"] == s["kept"] + sum(s["dropped"].values()), name
    assert manifest["per_source"]["codealpaca"]["input"] == 2015
    assert c["dropped"]["exact_duplicate"] >= 1 and c["dropped"]["invalid_row:missing_output"] == 1
    assert manifest["contaminated_tasks"]["mbpp"]["MBPP/11"] >= 1  # the statement of MBPP task 11
    assert c["splits"]["validation"] == round(0.1 * c["kept"]) and sum(c["splits"].values()) == c["kept"]
    assert manifest["per_source"]["codecontests"]["kept"] > 0
    out = tmp_path / "out"
    train = [r for _, r in read_records(out / "train.jsonl", default_source="?")]
    val = [r for _, r in read_records(out / "validation.jsonl", default_source="?")]
    assert not {r.id for r in train} & {r.id for r in val}
    assert [r.to_alpaca() for r in train] == json.loads((out / "train.json").read_text())
    assert [r for _, r in read_records(out / "train.parquet", default_source="?")] == train
    assert [r for _, r in read_records(out / "hf", default_source="?", split="validation")] == val
    drops = [json.loads(line) for line in (out / "drops.jsonl").read_text().splitlines()]
    assert len(drops) == sum(c["dropped"].values())
    contaminated = [d for d in drops if d["reason"].startswith("contaminated:")]
    assert all(d["task_id"] and d["evidence"] and d["method"] for d in contaminated)
    report = (out / "report.md").read_text()
    assert "| Data source | No. samples |" in report and f"| **Total** | **{c['kept']}** |" in report
    assert manifest["benchmarks"]["humaneval_sha256"] and manifest["versions"]["datasets"]
    assert manifest["inputs"][0]["upstream_manifest"]["source"] == "codealpaca"


def test_same_inputs_and_seed_give_identical_files(sources, tmp_path, mbpp_full):
    a = _merge(sources, tmp_path / "a", mbpp_full, seed=7)
    b = _merge(sources, tmp_path / "b", mbpp_full, seed=7)
    c = _merge(sources, tmp_path / "c", mbpp_full, seed=8)
    assert (tmp_path / "a/train.jsonl").read_bytes() == (tmp_path / "b/train.jsonl").read_bytes()
    assert (tmp_path / "a/train.jsonl").read_bytes() != (tmp_path / "c/train.jsonl").read_bytes()
    assert a["config_fingerprint"] == b["config_fingerprint"] != c["config_fingerprint"]


def test_refuses_to_clobber_and_bad_input_leaves_nothing(sources, tmp_path, mbpp_full):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["merge", "--input", str(sources[0]), "--output-dir", str(out), "--mbpp-path", str(mbpp_full)]
    assert main(args) == 2 and (out / "keep.txt").read_text() == "mine"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a", "output": "b"\n')
    out2 = tmp_path / "out2"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_generation",
            "merge",
            "--input",
            str(sources[0]),
            str(bad),
            "--output-dir",
            str(out2),
            "--mbpp-path",
            str(mbpp_full),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and f"{bad}:2: invalid JSON" in proc.stderr
    assert not out2.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out2")] == []


def test_decontamination_and_near_dup_can_be_switched_off(sources, tmp_path, mbpp_full):
    m = _merge(sources, tmp_path / "o", mbpp_full, decontaminate=(), near_dup=False)
    assert not any(r.startswith(("contaminated", "near")) for r in m["counts"]["dropped"])
    assert m["benchmarks"] == {} and m["config"]["decontaminate"] == []
