"""Same behaviour, same problem: does a record's Python function pass a benchmark task's own tests?

A reworded benchmark problem keeps nothing of the original's words, but its solution still solves the
task: renamed, reformatted, rewritten, it passes the task's tests. That is evidence no cosine can give,
and it is what "the same programming problem" means. The semantic layer (dataset/semantic.py) asks it
of the few benchmark tasks an embedding puts nearest a record.

A record is tried only where it can be: its answer parses as Python and defines a top-level function
whose arity fits the task's entry point. A pass is two passes, each with fresh definitions, so an
answer that returns random values does not pass by luck. All of a record's candidate tasks run in one sandboxed
program (the sandbox is the evaluation's: common/sandbox), each with a fresh copy of the record's
definitions, the task's entry point bound to the record's function, and a CPU alarm of its own. The
program reports passes with a per-run nonce, so nothing the record prints can be taken for a verdict.
"""

from __future__ import annotations

import ast
import json
import logging
import secrets
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

from data_generation.common.benchmarks.base import Problem
from data_generation.common.fences import parse_program_reply
from data_generation.common.sandbox.execution import Executor, Limits
from data_generation.common.sandbox.processes import SandboxError

log = logging.getLogger(__name__)
PER_TASK_SECONDS = 1.0


@dataclass(frozen=True)
class Signature:
    name: str
    required: int  # positional parameters without a default
    positional: int  # all positional parameters
    varargs: bool

    def accepts(self, other: "Signature") -> bool:
        """Can this function be called the way `other` (a task's entry point) is called?"""
        return self.required <= other.positional and (self.varargs or self.positional >= other.required)


@dataclass(frozen=True)
class TaskCheck:
    """A benchmark task as the behaviour check runs it."""

    benchmark: str
    task_id: str
    entry_point: str
    signature: Signature
    tests: str


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Signature:
    args = node.args
    positional = len(args.posonlyargs) + len(args.args)
    return Signature(node.name, positional - len(args.defaults), positional, args.vararg is not None)


def functions(code: str) -> list[Signature]:
    """The top-level (non-async) functions of `code`; none when it does not parse."""
    try:
        with warnings.catch_warnings():  # a record's "\d" in a plain string is its business, not ours
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return []
    return [_signature(n) for n in tree.body if isinstance(n, ast.FunctionDef)]


def python_code(output: str) -> str | None:
    """The Python program of a record's answer (its fenced block, else the whole answer) when it
    defines at least one top-level function."""
    code, _ = parse_program_reply(output, "python")
    return code if code is not None and functions(code) else None


def task_check(benchmark: str, task_id: str, problem: Problem, program: str) -> TaskCheck | None:
    """`program` is the benchmark's reference program (solution + tests): the entry point's signature
    comes from it. None when the task has no entry point the check can bind."""
    entry = problem.entry_point
    found = {s.name: s for s in functions(program)}
    if entry is None or entry not in found or not problem.tests.strip():  # no tests: nothing to pass
        return None
    return TaskCheck(benchmark, task_id, entry, found[entry], problem.tests)


# The program run in the sandbox. The record's output is silenced (it is not a verdict); each task gets
# fresh definitions, so one task's test cannot see what another one left behind.
_RUNNER = """\
import io, json, os, signal, sys
_nonce, _code, _tasks = {nonce!r}, {code!r}, json.loads({tasks!r})
def _alarm(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, _alarm)
_out, _passed = os.dup(1), []
sys.stdout = sys.stderr = io.StringIO()
for _i, (_entry, _names, _tests) in enumerate(_tasks):
    for _name in _names:
        signal.setitimer(signal.ITIMER_REAL, {seconds})
        try:
            for _run in range(2):  # twice, with fresh definitions: a lucky random answer is not a pass
                _env = {{"__name__": "__main__"}}
                exec(compile(_code, "<record>", "exec"), _env)
                _env[_entry] = _env[_name]
                exec(compile(_tests, "<tests>", "exec"), _env)
            _passed.append([_i, _name])
        except BaseException:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout = sys.stderr = io.StringIO()
        if _passed and _passed[-1][0] == _i:
            break
os.write(_out, (_nonce + json.dumps(_passed) + "\\n").encode())
"""


def _program(code: str, tasks: Sequence[tuple[TaskCheck, list[str]]], nonce: str) -> str:
    payload = json.dumps([[t.entry_point, names, t.tests] for t, names in tasks])
    return _RUNNER.format(nonce=nonce, code=code, tasks=payload, seconds=PER_TASK_SECONDS)


def _passes(output: str, nonce: str) -> list[tuple[int, str]]:
    for line in output.splitlines():
        if line.startswith(nonce):
            return [(int(i), str(name)) for i, name in json.loads(line[len(nonce) :])]
    return []


@dataclass(frozen=True)
class Pass:
    record: int
    task: TaskCheck
    function: str


def fitting(code: str, tasks: Sequence[TaskCheck]) -> list[tuple[TaskCheck, list[str]]]:
    """The tasks a record's functions can be called as, each with the functions that fit."""
    own = functions(code)
    out = []
    for task in tasks:
        names = [f.name for f in own if f.accepts(task.signature)]
        if names:
            out.append((task, names))
    return out


def run_checks(
    jobs: Sequence[tuple[int, str, Sequence[TaskCheck]]], *, workers: int = 2, allow_weak: bool = False
) -> Iterator[Pass]:
    """For each (record index, its Python code, its candidate tasks), the tasks its code passes.
    Raises SandboxError when the sandbox cannot start (the caller decides whether to go on without)."""
    work = [(rec, code, fit) for rec, code, tasks in jobs if (fit := fitting(code, tasks))]
    if not work:
        return
    seconds = max(len(names) for _, _, fit in work for _, names in fit) * PER_TASK_SECONDS
    limits = Limits(timeout=2 + seconds * max(len(fit) for _, _, fit in work), memory_mb=1024, output_bytes=65536)
    nonce = secrets.token_hex(8)
    with Executor(n_workers=workers, limits=limits, allow_weak=allow_weak) as executor:
        results = executor.map(_program(code, fit, nonce) for _, code, fit in work)
        for (rec, _, fit), result in zip(work, results):
            for index, name in _passes(result.output, nonce):
                if 0 <= index < len(fit):
                    yield Pass(rec, fit[index][0], name)


__all__ = ["Pass", "SandboxError", "Signature", "TaskCheck", "functions", "python_code", "run_checks", "task_check"]
