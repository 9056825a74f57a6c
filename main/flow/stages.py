"""Pipeline stages: a command, the files it reads, the files it writes, and a fingerprint of all three.

A stage is done when `OUT/stages/NAME.json` holds its fingerprint and every output still has the
sha256 recorded there. A re-run then:
- skips a done stage whose fingerprint (command, settings, the sha256 of every input) is unchanged;
- redoes a stage whose inputs or settings changed, after removing its old outputs;
- re-runs an unfinished stage (killed, crashed) with the same command: each command resumes by itself
  (source journals, training checkpoints with resume=auto, sampling shards), so a `kill -9` anywhere
  loses nothing already finished.
The marker is written atomically after the command succeeded, so it never claims an unfinished stage.
Each command's output goes to the terminal (progress bars included) and to `OUT/logs/NAME.log`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from data_generation.common.io import atomic_path
from data_generation.common.provenance import file_sha256, fingerprint

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """`command` runs in the pipeline's working folder; `inputs`/`outputs` are files (or folders, hashed
    as their files); `clean` is what to remove before redoing the stage with other settings (default:
    the outputs); `key` is the command as far as it decides the outputs (default: `command`): options
    such as a batch size or a process count, which a resumed command accepts, are left out of it."""

    name: str
    command: list[str]
    key: list[str] | None = None
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    clean: list[Path] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    optional: bool = False  # a failure is reported and the pipeline goes on (a source that cannot be reached)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class StageResult:
    name: str
    status: str  # "done", "skipped" (up to date), "failed"
    seconds: float  # what the command took (for a skipped stage: when it ran)
    fingerprint: str
    outputs: dict[str, str]  # path -> sha256
    error: str = ""


def path_sha256(path: Path) -> str:
    from data_generation.common.provenance import folder_sha256

    return folder_sha256(path) if path.is_dir() else file_sha256(str(path))


def stage_fingerprint(stage: Stage) -> str:
    """sha256 of what decides a stage's outputs: its command (the interpreter as plain `python`, so
    `python3`, another venv or a moved clone still match), settings, and every input's sha256."""
    missing = [str(p) for p in stage.inputs if not p.exists()]
    if missing:
        raise FileNotFoundError(f"stage {stage.name}: missing input {missing[0]}")
    command = stage.key or stage.command
    command = ["python" if i == 0 and arg == sys.executable else arg for i, arg in enumerate(command)]
    return fingerprint(
        {"command": command, "settings": stage.settings, "inputs": {str(p): path_sha256(p) for p in stage.inputs}}
    )


class Runner:
    """Runs stages in order under `root` (markers in root/stages, logs in root/logs)."""

    def __init__(self, root: Path, repo: Path, on_output: Callable[[str], None] | None = None) -> None:
        self.root, self.repo, self.cwd = Path(root), Path(repo), Path.cwd()
        self.on_output = on_output
        (self.root / "stages").mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)

    def marker(self, name: str) -> Path:
        return self.root / "stages" / f"{name.replace(':', '-')}.json"

    def _started(self, name: str) -> Path:
        return self.root / "stages" / f"{name.replace(':', '-')}.started.json"

    def is_done(self, stage: Stage, fp: str) -> dict[str, Any] | None:
        path = self.marker(stage.name)
        if not path.is_file():
            return None
        done = json.loads(path.read_text(encoding="utf-8"))
        if done.get("fingerprint") != fp:
            return None
        for out, digest in done.get("outputs", {}).items():
            if not Path(out).exists() or path_sha256(Path(out)) != digest:
                log.info("%s: %s changed since it was written; redoing the stage", stage.name, out)
                return None
        return done

    def run(self, stage: Stage, index: int, total: int) -> StageResult:
        fp = stage_fingerprint(stage)
        done = self.is_done(stage, fp)
        if done is not None:
            print(f"[{index}/{total}] {stage.name}: up to date (fingerprint {fp[:12]}), skipped", flush=True)
            return StageResult(stage.name, "skipped", float(done.get("seconds", 0.0)), fp, done["outputs"])
        self._prepare(stage, fp)
        print(f"[{index}/{total}] {stage.name}: {shlex.join(stage.command)}", flush=True)
        started = time.monotonic()
        code, tail = self._execute(stage)
        seconds = time.monotonic() - started
        if code != 0:
            error = tail or f"exit code {code}"
            print(f"[{index}/{total}] {stage.name}: FAILED after {seconds:.0f} s: {error}", flush=True)
            return StageResult(stage.name, "failed", seconds, fp, {}, error)
        outputs = {str(p): path_sha256(p) for p in stage.outputs if p.exists()}
        missing = [str(p) for p in stage.outputs if not p.exists()]
        if missing:
            error = f"finished but did not write {missing[0]}"
            print(f"[{index}/{total}] {stage.name}: FAILED: {error}", flush=True)
            return StageResult(stage.name, "failed", seconds, fp, outputs, error)
        record = {
            "stage": stage.name,
            "fingerprint": fp,
            "command": stage.command,
            "settings": stage.settings,
            "inputs": {str(p): path_sha256(p) for p in stage.inputs},
            "outputs": outputs,
            "seconds": round(seconds, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with atomic_path(self.marker(stage.name)) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        self._started(stage.name).unlink(missing_ok=True)
        print(f"[{index}/{total}] {stage.name}: done in {seconds:.0f} s", flush=True)
        return StageResult(stage.name, "done", seconds, fp, outputs)

    def _prepare(self, stage: Stage, fp: str) -> None:
        """Clean a stage that last ran (or started) with other settings; keep an unfinished one with
        the same fingerprint, whose command resumes it."""
        started = self._started(stage.name)
        previous = None
        for path in (started, self.marker(stage.name)):
            if path.is_file():
                previous = json.loads(path.read_text(encoding="utf-8")).get("fingerprint")
                break
        if previous is not None and previous != fp:
            log.info("%s: inputs or settings changed; removing its old outputs", stage.name)
            for path in stage.clean or stage.outputs:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        self.marker(stage.name).unlink(missing_ok=True)
        with atomic_path(started) as tmp:
            tmp.write_text(json.dumps({"fingerprint": fp}) + "\n", encoding="utf-8")

    def _execute(self, stage: Stage) -> tuple[int, str]:
        """Run the command, echoing its output (progress bars too) and keeping it in the stage's log;
        returns the exit code and the last meaningful line of output."""
        # Run where the pipeline runs (its paths are relative to here), with the repo importable.
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **stage.env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.repo), os.environ.get("PYTHONPATH")])),
        }
        log_path = self.root / "logs" / f"{stage.name.replace(':', '-')}.log"
        last = ""
        with open(log_path, "ab") as log_file:
            log_file.write(f"\n$ {shlex.join(stage.command)}\n".encode())
            proc = subprocess.Popen(
                stage.command,
                cwd=self.cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            assert proc.stdout is not None
            try:
                while chunk := proc.stdout.read1(65536):
                    log_file.write(chunk)
                    text = chunk.decode("utf-8", "replace")
                    if self.on_output:
                        self.on_output(text)
                    else:
                        sys.stderr.write(text)
                        sys.stderr.flush()
                    lines = [ln.strip() for ln in text.replace("\r", "\n").split("\n") if ln.strip()]
                    errors = [ln for ln in lines if "error" in ln.lower()]
                    last = (errors or lines or [last])[-1]
                code = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        return code, last if code else ""


def _die_with_parent() -> None:
    """In the child, before it starts: SIGTERM it when the pipeline dies, even by `kill -9`, so a re-run
    never races an orphaned stage on the same files (Linux; elsewhere the child outlives a killed parent)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def torchrun(nproc: int, module: str, *args: str) -> list[str]:
    """`python -m module` for one process, torchrun's standalone launcher for several."""
    if nproc <= 1:
        return python_module(module, *args)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        module,
        *args,
    ]


def describe(results: Sequence[StageResult]) -> list[dict[str, Any]]:
    return [
        {
            "stage": r.name,
            "status": r.status,
            "seconds": round(r.seconds, 1),
            "fingerprint": r.fingerprint,
            **({"error": r.error} if r.error else {}),
        }
        for r in results
    ]
