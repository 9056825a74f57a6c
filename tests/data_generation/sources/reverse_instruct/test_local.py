"""scripts/reverse_instruct.sh offline with the embedded SmolLM2 teacher: from a directory of sources
in several languages and from the default corpus (the running Python's standard library)."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.paths import REPO

FIXTURES = REPO / "tests" / "fixtures" / "harvest"


def run_script(out: Path, model: Path, cache: Path, **env: str) -> dict:
    command = [
        "bash",
        "scripts/reverse_instruct.sh",
        "--model",
        str(model),
        "--cache-dir",
        str(cache),
        "--statement-max-tokens",
        "64",
        "--program-max-tokens",
        "160",
        "--no-progress",
    ]
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "OUTPUT": str(out), **env}, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(Path(f"{out}.manifest.json").read_text())


def check_accounting(out: Path, manifest: dict, functions: int) -> list[dict]:
    """Every function sent is one record or one reject; records carry passed checks."""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    rejects = [json.loads(line) for line in out.with_suffix(".rejects.jsonl").read_text().splitlines()]
    reject_rows = [r for r in rejects if "step_done" not in r]
    indices = sorted([r["meta"]["index"] for r in records] + [r["index"] for r in reject_rows])
    assert indices == list(range(functions))
    assert sum(v["functions"] for v in manifest["languages"].values()) == functions
    assert manifest["teacher_usage"]["requests"] >= functions  # round 1, and round 2 for what got that far
    for record in records:
        assert all(check["status"] in ("passed", "skipped") for check in record["meta"]["checks"])
        assert record["meta"]["function"]["name"] in record["instruction"]
    for row in reject_rows:
        assert row["reason"] and row["function"]["name"]
    return records


def test_embedded_teacher_from_a_directory_and_from_the_stdlib(smollm2: Path, tmp_path: Path) -> None:
    out = tmp_path / "dir.jsonl"
    manifest = run_script(out, smollm2, tmp_path / "cache", PATHS=str(FIXTURES), LANGUAGES="c,python", LIMIT="2")
    check_accounting(out, manifest, 2)
    assert set(manifest["languages"]) == {"c", "python"}  # round-robin: one function of each
    assert manifest["config"]["snippets_per_request"] == 1  # the script's setting for the local teacher
    assert manifest["config"]["teacher"]["model"]

    out = tmp_path / "stdlib.jsonl"
    manifest = run_script(out, smollm2, tmp_path / "cache", LANGUAGES="python", LIMIT="1")
    check_accounting(out, manifest, 1)
    assert manifest["corpus"]["python"] == [sysconfig.get_paths()["stdlib"]]
    rows = out.read_text().splitlines() or out.with_suffix(".rejects.jsonl").read_text().splitlines()
    row = json.loads(rows[0])
    assert (row["meta"] if "meta" in row else row)["function"]["path"].startswith(sysconfig.get_paths()["stdlib"])


@pytest.mark.slow
def test_embedded_teacher_on_the_bundled_sample_keeps_checked_programs(smollm2: Path, tmp_path: Path) -> None:
    """The bundled sample (data/samples/functions) with the script's local settings: a tiny run keeps
    checked programs, and the manifest says the run completed."""
    out = tmp_path / "samples.jsonl"
    manifest = run_script(
        out, smollm2, tmp_path / "cache", PATHS="data/samples/functions", STDLIB="1", LANGUAGES="python,ruby", LIMIT="4"
    )
    records = check_accounting(out, manifest, 4)
    assert manifest["status"] == "completed" and manifest["config"]["compact_prompts"]
    assert records, "no function of the sample became a record"
