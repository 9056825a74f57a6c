"""One step of reverse instruction over a chunk of harvested functions.

1. round 1 — k functions per request, one numbered problem statement back per function;
2. the statement filters and the exact ROUGE-L near-duplicate filter over every pooled statement;
3. round 2 — one request per statement: a complete program that contains the function;
4. the program checks (`program_check`): tree-sitter, then the toolchain if present, then (Python)
   one import-run in the evaluation sandbox.

Every function of the chunk ends as exactly one record or one reject row. A request's sampling
depends only on (seed, step, request) or (seed, function index), and its tag goes into the teacher's
cache key, so a step that runs again costs nothing with the cache.
"""

from __future__ import annotations

import json
import random
from typing import Any

from data_generation.common.fences import parse_program_reply
from data_generation.common.record import Record
from data_generation.common.rouge import RougeLFilter
from data_generation.common.sandbox.execution import Executor, Limits
from data_generation.sources.base import SourceStats
from data_generation.sources.filters import FilterConfig
from data_generation.sources.parsing import parse_numbered_statements
from data_generation.sources.reverse_instruct import prompts as ri
from data_generation.sources.reverse_instruct.config import ReverseInstructConfig
from data_generation.sources.reverse_instruct.program_check import CheckResult, check_programs
from data_generation.sources.reverse_instruct.snippets import Snippet
from data_generation.teacher import Teacher
from data_generation.teacher.base import Completion, Decoding, Request, starts_replies

IMPORT_RUN_LIMITS = Limits(timeout=5.0, memory_mb=1024)  # definitions only: a program needs far less


class StepRun:
    """Step `step` of a run: `run(chunk, stats)` sends its requests and decides each function. The
    statements it keeps go into `pool`, the run's ROUGE-L filter, which outlives the step."""

    def __init__(
        self,
        name: str,
        cfg: ReverseInstructConfig,
        teacher: Teacher,
        filters: FilterConfig,
        pool: RougeLFilter,
        step: int,
    ) -> None:
        self.name, self.cfg, self.teacher, self.filters, self.pool, self.step = name, cfg, teacher, filters, pool, step

    def _decoding(self, tag: str, *, temperature: float, max_tokens: int, stop: tuple[str, ...] = ()) -> Decoding:
        return Decoding(
            temperature=temperature,
            top_p=self.cfg.top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=random.Random(tag).randrange(2**31),
        )

    def run(self, chunk: list[tuple[int, Snippet]], stats: SourceStats) -> tuple[list[Record], list[dict]]:
        """The step's records (each with `meta.step_kept`) and its reject rows, one per function."""
        stats.read += len(chunk)
        rejects: list[dict] = []
        statements = self._round_one(chunk, rejects)
        novel = self._novel(chunk, statements, rejects)
        programs = self._round_two(novel, rejects)
        results = check_programs(
            [(prog, s.language, s.name) for (_, s), _, prog, _ in programs],
            workers=self.cfg.check_workers,
            timeout=self.cfg.check_timeout,
        )
        results = self._import_run(programs, results)
        records = []
        for ((index, snippet), statement, program, meta), result in zip(programs, results):
            if not result.ok:
                reason = result.reason if result.reason.startswith("check_") else f"check_{result.reason}"
                rejects.append(
                    self._reject(
                        index,
                        snippet,
                        reason,
                        statement=statement,
                        program=program,
                        detail=json.dumps(list(result.checks))[:500],
                    )
                )
                continue
            meta = {**meta, "checks": list(result.checks)}
            records.append(
                Record(
                    instruction=statement,
                    input="",
                    output=program,
                    source=self.name,
                    language=snippet.language,
                    meta=meta,
                )
            )
        for row in rejects:
            stats.reject(row["reason"], f"step {self.step} function {row['index']}", row["detail"][:120])
        records = [r.replace(meta={**r.meta, "step_kept": len(records)}) for r in records]
        stats.emitted += len(records)
        return records, rejects

    def _import_run(self, programs: list, results: list[CheckResult]) -> list[CheckResult]:
        """Python programs that passed the checks also run once, top level only (imports,
        definitions), in the evaluation sandbox: no network, CPU, memory and process limits."""
        todo = [i for i, (((_, s), *_), r) in enumerate(zip(programs, results)) if r.ok and s.language == "python"]
        if not todo:
            return results
        with Executor(min(self.cfg.check_workers, len(todo)), IMPORT_RUN_LIMITS) as executor:
            runs = list(executor.map(programs[i][2] for i in todo))
        results = list(results)
        for i, run in zip(todo, runs):
            check = {"check": "sandbox import-run", "status": "passed" if run.passed else "failed"}
            if not run.passed:
                check["detail"] = f"{run.result}: {run.output[-300:]}".strip()
            results[i] = CheckResult(run.passed, None if run.passed else "import_failed", (*results[i].checks, check))
        return results

    def _round_one(self, chunk: list[tuple[int, Snippet]], rejects: list[dict]) -> dict[int, tuple[str, Completion]]:
        """Statements by function index; functions without a usable one become rejects."""
        k = self.cfg.snippets_per_request
        groups = [chunk[i : i + k] for i in range(0, len(chunk), k)]
        requests = []
        for r, group in enumerate(groups):
            tag = f"reverse-instruct:r1:{self.cfg.seed}:{self.step}:{r}"
            prompt = ri.build_statement_prompt(
                [s for _, s in group],
                min_words=self.cfg.min_words,
                max_words=self.cfg.max_words,
                compact=self.cfg.compact_prompts,
            )
            stop: tuple[str, ...] = (f"\n{len(group) + 1}.",)
            if len(group) == 1 and starts_replies(self.teacher):
                # the reply began with "1. Write the ...": its statement is the first paragraph
                stop += ("\n\n", "\n```")
            decoding = self._decoding(
                tag, temperature=self.cfg.temperature, max_tokens=self.cfg.statement_max_tokens, stop=stop
            )
            requests.append(
                Request.chat(prompt, tag=tag, decoding=decoding, reply_prefix=ri.statement_prefix(group[0][1]))
            )
        out = {}
        for group, completion in zip(groups, self.teacher.complete_all(requests)):
            choice = completion.choices[0]
            found = parse_numbered_statements(choice.text, len(group), finish_reason=choice.finish_reason)
            for number, (index, snippet) in enumerate(group, start=1):
                statement = ri.first_paragraph(found[number]) if number in found else None
                reason = "missing" if statement is None else ri.statement_reason(statement, snippet, self.filters)
                if reason:
                    rejects.append(
                        self._reject(
                            index,
                            snippet,
                            f"statement_{reason}",
                            statement=statement or "",
                            detail=choice.text[:300] if statement is None else "",
                        )
                    )
                else:
                    out[index] = (statement, completion)
        return out

    def _novel(self, chunk, statements, rejects) -> list[tuple[tuple[int, Snippet], str, Completion]]:
        """Statements that pass the ROUGE-L filter, in function order (each one kept is pooled)."""
        todo = [(item, *statements[item[0]]) for item in chunk if item[0] in statements]
        decisions = self.pool.filter(statement for _, statement, _ in todo)
        novel = []
        for (item, statement, completion), decision in zip(todo, decisions):
            if decision.keep:
                novel.append((item, statement, completion))
            else:
                rejects.append(
                    self._reject(
                        item[0],
                        item[1],
                        "similar_to_pool",
                        statement=statement,
                        detail=f"ROUGE-L {decision.max_score:.3f}",
                    )
                )
        return novel

    def _round_two(self, novel, rejects: list[dict]) -> list[tuple[tuple[int, Snippet], str, str, dict]]:
        requests = []
        for (index, snippet), statement, _ in novel:
            tag = f"reverse-instruct:r2:{self.cfg.seed}:{index}"
            # the local teacher opened the code block itself (reply_prefix): the program ends where it closes
            decoding = self._decoding(
                tag,
                temperature=self.cfg.program_temperature,
                max_tokens=self.cfg.program_max_tokens,
                stop=("```",) if starts_replies(self.teacher) else (),
            )
            prompt = ri.build_program_prompt(snippet, statement, compact=self.cfg.compact_prompts)
            requests.append(
                Request.chat(prompt, tag=tag, decoding=decoding, reply_prefix=ri.program_prefix(snippet.language))
            )
        programs = []
        for ((index, snippet), statement, first), completion in zip(novel, self.teacher.complete_all(requests)):
            choice = completion.choices[0]
            program, reason = parse_program_reply(choice.text, snippet.language, choice.finish_reason)
            if program is None:
                rejects.append(
                    self._reject(
                        index, snippet, f"program_{reason}", statement=statement, program=choice.text, pooled=True
                    )
                )
                continue
            meta = {
                "index": index,
                "step": self.step,
                "function": function_provenance(snippet),
                "teacher_model": completion.model,
                "statement_finish_reason": first.choices[0].finish_reason,
                "program_finish_reason": choice.finish_reason,
            }
            programs.append(((index, snippet), statement, program, meta))
        return programs

    def _reject(
        self,
        index: int,
        snippet: Snippet,
        reason: str,
        *,
        statement: str = "",
        program: str = "",
        detail: str = "",
        pooled: bool | None = None,
    ) -> dict:
        if pooled is None:  # past the similarity filter, the statement is in the pool
            pooled = reason.startswith(("program_", "check_"))
        return {
            "step": self.step,
            "index": index,
            "language": snippet.language,
            "reason": reason,
            "function": function_provenance(snippet),
            "statement": statement,
            "program": program,
            "detail": detail,
            "pooled": pooled,
        }


def function_provenance(snippet: Snippet) -> dict[str, Any]:
    """Where a function came from, as records and rejects keep it (a resume checks the corpus by it)."""
    return {
        "name": snippet.name,
        "path": snippet.path,
        "start_line": snippet.start_line,
        "end_line": snippet.end_line,
        **snippet.meta,
    }
