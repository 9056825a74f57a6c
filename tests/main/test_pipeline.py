"""The whole chain as one command, on a tiny random Llama: stages, resume, the report and its provenance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from data_generation.common.command import BUSY
from data_generation.common.output_lock import output_lock
from main.flow.config import PipelineConfigError, load_pipeline_config
from main.pipeline import main
from tests.paths import REPO
from tests.tiny_models import make_tiny_llama

REFUSED = "http://127.0.0.1:9/v1"  # nothing listens on the discard port: a teacher that cannot be reached


def write_config(tmp_path: Path, model: Path, mbpp: Path, **changes) -> Path:
    rows = [
        {
            "instruction": f"Write a Python function that adds {i} to a number.",
            "input": "",
            "output": f"def add_{i}(x):\n    return x + {i}\n",
        }
        for i in range(48)
    ]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    (tmp_path / "no_functions").mkdir(exist_ok=True)
    unreachable = {
        "teacher": "openai",
        "teacher_model": "m",
        "base_url": REFUSED,
        "args": ["--max-retries", "0", "--timeout", "2", "--no-cache"],
    }
    config = {
        "name": "tiny",
        "output_dir": str(tmp_path / "out"),
        "model": str(model),
        "sources": {
            "codealpaca": {"input": [str(tmp_path / "missing.json"), str(tmp_path / "alpaca.json")]},
            "codecontests": {"input": ["data/samples/code_contests_sample.jsonl"], "args": ["--show-tests"]},
            "self_instruct": {**unreachable, "args": [*unreachable["args"], "--num-instructions", "2"]},
            "reverse_instruct": {
                **unreachable,
                "args": [*unreachable["args"], "--paths", str(tmp_path / "no_functions")],
            },
        },
        "merge": {"mbpp_path": [str(mbpp)], "validation_size": 8},
        "train": {
            "max_steps": 2,
            "micro_batch_size": 4,
            "global_batch_size": 8,
            "max_length": 128,
            "lr": 1e-2,
            "precision": "fp32",
            "num_threads": 1,
            "save_every": 1,
            "lora_targets": "llama-qv",
        },
        "evaluate": {
            "benchmarks": ["humaneval", "mbpp"],
            "limit": 2,
            "max_new_tokens": 8,
            "batch_size": 4,
            "threads": 1,
            "workers": 1,
        },
    }
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        config[section][key] = value
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("model") / "tiny", seed=3, context=2048)


def stage_lines(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        if line.startswith("[") and "] " in line and ": " in line:
            name, _, what = line.split("] ", 1)[1].partition(": ")
            found[name] = what
    return found


@pytest.mark.slow
def test_the_chain_runs_resumes_after_kill_and_redoes_only_what_changed(tiny_model, mbpp_full, tmp_path):
    config = write_config(tmp_path, tiny_model, mbpp_full)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "main.pipeline", "--config", str(config)]
    # 1. kill -9 the whole pipeline once training has written its first checkpoint
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 600
    checkpoint = out / "train" / "checkpoints" / "step-00000001"
    while not checkpoint.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.is_dir() and not (out / "report").exists()
    # 2. the same command finishes: what was done is skipped, training resumes from its checkpoint
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stages = stage_lines(done.stdout)
    assert stages["merge"].startswith("up to date") and stages["source:codealpaca"].startswith("up to date")
    assert "resumed from" in (out / "logs" / "train.log").read_text()
    report = (out / "report" / "report.md").read_text()
    assert "| Model | Base checkpoint | pass@1 | pass@10 | pass@100 |" in report
    assert "## pass@k: humaneval: first 2 of 164 tasks (a subset" in report
    assert report.count("| tiny (base) |") == 2 and report.count("| tiny + tiny LoRA |") == 2
    assert "| CodeAlpaca | " in report and "| DeepMind's Code Contests | " in report
    assert "Self-instruct (failed" in report and "Reverse instruction (only instruction generation) (empty)" in report
    provenance = json.loads((out / "report" / "provenance.json").read_text())
    assert all(provenance["checks"].values()), provenance["checks"]
    assert provenance["sources"]["self_instruct"]["status"] == "failed"
    assert provenance["training"]["weights_sha256"] == provenance["evaluations"][1]["adapter_sha256"]
    for name in ("passk.png", "loss.png", "composition.png"):
        assert (out / "report" / name).read_bytes()[:4] == b"\x89PNG"
    # 3. nothing changed: nothing runs but the source that could not be reached, which is tried again
    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    stages = stage_lines(again.stdout)
    assert again.returncode == 0 and stages.pop("source:self_instruct").startswith("FAILED")
    assert all(v.startswith("up to date") for v in stages.values()), stages
    # 4. a sampling setting changed: only sampling and evaluation run again
    changed = subprocess.run(
        [*command, "evaluate.max_new_tokens=6"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert changed.returncode == 0, changed.stderr[-3000:]
    redone = {
        k
        for k, v in stage_lines(changed.stdout).items()
        if not v.startswith("up to date") and k != "source:self_instruct"
    }
    assert redone == {
        f"{s}:{r}:{b}" for s in ("sample", "evaluate") for r in ("base", "tuned") for b in ("humaneval", "mbpp")
    }


@pytest.mark.parametrize(
    "changes, override, message",
    [
        ({"train__max_step": 3}, None, "pipeline.yaml: train.max_step: unknown key (did you mean max_steps?)"),
        (
            {},
            "evaluate.benchmark=[mbpp]",
            "command-line override 'evaluate.benchmark=[mbpp]': evaluate.benchmark: "
            "unknown key (did you mean benchmarks?)",
        ),
        ({"train__train_data": "x.jsonl"}, None, "train.train_data: set by the pipeline"),
        (
            {"merge__mbpp_path": ["/no/such/mbpp.jsonl"]},
            None,
            "merge.mbpp_path: none of ['/no/such/mbpp.jsonl'] exists",
        ),
        ({"train__preset": "scripts/configs/nope.yaml"}, None, "train.preset: no such file"),
        ({}, "sources.self_instruct.teacher=", "sources.self_instruct.teacher: self_instruct needs a teacher"),
        ({}, "sources.self_instruct.teacher=ollama", "'ollama'; choose from local, openai"),
        ({}, "sources.codealpaca.teacher=local", "sources.codealpaca.teacher: codealpaca reads a dataset"),
        ({"train__lr": "fast"}, None, "pipeline.yaml: train.lr: expected float, got 'fast'"),
        ({}, "train.mode=lroa", "'train.mode=lroa': train.mode: mode='lroa' (did you mean lora?); choose one of full"),
        ({}, "train.nproc=two", "train.nproc: expected int, got 'two'"),
        ({}, "train.save_final=false", "train.save_final: set by the pipeline"),
        ({}, "merge.validation_size=0", "merge.validation_size: must be > 0"),
    ],
)
def test_a_bad_config_stops_before_any_stage(tiny_model, mbpp_full, tmp_path, capsys, changes, override, message):
    config = write_config(tmp_path, tiny_model, mbpp_full, **changes)
    assert main(["--config", str(config), *([override] if override else [])]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_busy_run_folder_is_refused_before_any_stage(tiny_model, mbpp_full, tmp_path, capsys):
    """One pipeline per run folder: while another process holds it, a second one exits 75 at once,
    naming the holder, and touches nothing (not even a stage marker or train.yaml)."""
    config = write_config(tmp_path, tiny_model, mbpp_full)
    out = tmp_path / "out"
    (out / "stages").mkdir(parents=True)
    (out / "stages" / "merge.json").write_text('{"fingerprint": "x"}\n')  # what a running pipeline wrote
    with output_lock(out):
        assert main(["--config", str(config)]) == BUSY
    assert f"{out} is in use by process {os.getpid()}" in capsys.readouterr().err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["stages", "stages/merge.json"]
    assert (out / "stages" / "merge.json").read_text() == '{"fingerprint": "x"}\n'


def test_input_candidates_and_overrides(tiny_model, mbpp_full, tmp_path):
    path = write_config(tmp_path, tiny_model, mbpp_full)
    config = load_pipeline_config(path, ["sources.codecontests.enabled=false", "evaluate.limit=0"])
    assert config.sources["codealpaca"].input[0].endswith("missing.json")  # candidates: the first that exists
    assert not config.sources["codecontests"].enabled and config.evaluate.limit == 0
    empty = yaml.safe_load(path.read_text())
    empty["sources"]["codecontests"] = None  # `codecontests:` with no settings: an override still reaches into it
    path.write_text(yaml.safe_dump(empty))
    with pytest.raises(PipelineConfigError, match="sources.codecontests.input: give the dataset"):
        load_pipeline_config(path)
    assert not load_pipeline_config(path, ["sources.codecontests.enabled=false"]).sources["codecontests"].enabled
    with pytest.raises(PipelineConfigError, match="enable at least one of"):
        load_pipeline_config(
            write_config(tmp_path, tiny_model, mbpp_full),
            [f"sources.{s}.enabled=false" for s in ("codealpaca", "codecontests", "self_instruct", "reverse_instruct")],
        )


def test_a_stage_fingerprint_ignores_the_interpreter_path_and_options_outside_its_key(tmp_path):
    from main.flow.stages import Runner, Stage, stage_fingerprint

    out = tmp_path / "out.txt"
    write = f"open({str(out)!r}, 'w').write('x')"

    def stage(batch: int, python: str = sys.executable) -> Stage:
        return Stage(
            "write", [python, "-c", write, "--batch-size", str(batch)], key=[python, "-c", write], outputs=[out]
        )

    assert stage_fingerprint(stage(4)) == stage_fingerprint(stage(4, "python"))  # python3, another venv: same
    runner = Runner(tmp_path / "run", REPO)
    assert runner.run(stage(4), 1, 1).status == "done"
    assert runner.run(stage(8), 1, 1).status == "skipped"  # a batch size does not change what it writes
    out.write_text("changed by hand")
    assert runner.run(stage(8), 1, 1).status == "done"  # an output that changed is made again


def test_killing_the_pipeline_stops_the_stage_it_was_running(tmp_path):
    """kill -9 of the pipeline process alone: its running command must not live on and race a re-run."""
    script = (
        "import sys; from pathlib import Path; from main.flow.stages import Runner, Stage; "
        f"Runner(Path({str(tmp_path)!r}), Path({str(REPO)!r})).run(Stage('sleep', ['sleep', '300']), 1, 1)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    children: list[str] = []
    while not children and time.monotonic() < deadline:
        time.sleep(0.05)
        children = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the stage never started"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    child = int(children[0])
    while (
        time.monotonic() < deadline
        and Path(f"/proc/{child}").exists()
        and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z"
    ):
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
