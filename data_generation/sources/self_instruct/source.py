"""Self-instruct: a teacher LLM invents code tasks from seed tasks (Stanford Alpaca / CodeAlpaca).

One *step* sends `requests_per_step` batch prompts at once (each: a few in-context tasks sampled
from the seeds and, by `machine_ratio`, from the tasks kept so far; the teacher continues the list
up to `num_tasks`). The replies are parsed, filtered (`data_generation.sources.filters`) and then checked
in order against every instruction kept so far with the exact ROUGE-L filter (F <= threshold
keeps). Kept tasks of a step are appended to the output journal in one fsynced write.

`--mode single` (for small models, e.g. the embedded SmolLM2-135M): each request asks for ONE new
task in a language drawn per request, one sentence that starts "Write a <Language> function that"
(a teacher that starts replies is given those words); the step's instructions are filtered and
checked against the pool *before* their answers are asked for, one plain chat question each; an
answer is its one code block, which must be complete (not cut by the token limit) and parse
(tree-sitter). Then the instruction filters and the ROUGE-L filter decide as in batch mode.

Each step logs what it kept and rejected (by reason); the CLI rewrites the manifest after it.

Reproducible and resumable: a step's sampling depends only on (seed, step, request) and the pool,
every request carries its (step, request) tag into the teacher's cache key, and the pool is the
seeds plus the journal's records. So a re-run after `kill -9` reads the journal back, cuts an
incomplete last step, and continues; with the same cache and seed the file ends up byte-identical
to an uninterrupted run's. A re-run may raise `--num-instructions` (it goes on to the new target) or
`--max-idle-steps`; any other change that would make other tasks (the teacher model, the seed tasks'
content, the prompts, the seed, ...) is refused before anything is touched (`resume_settings`).
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from data_generation.common.fences import parse_program_reply
from data_generation.common.language import guess_language
from data_generation.common.provenance import file_sha256
from data_generation.common.record import Record
from data_generation.common.rouge import RougeLFilter
from data_generation.common.treesitter import syntax_error
from data_generation.sources.base import ResumableSource, SourceStats, log_step
from data_generation.sources.filters import FilterConfig, instruction_reason
from data_generation.sources.parsing import ParsedTask
from data_generation.sources.resume_settings import templates_sha256
from data_generation.sources.self_instruct import config as options
from data_generation.sources.self_instruct import tasks as si
from data_generation.sources.self_instruct.config import SelfInstructConfig
from data_generation.sources.self_instruct.teacher_requests import (
    answer_request,
    batch_requests,
    single_requests,
    template_names,
)
from data_generation.teacher import Teacher, add_teacher_arguments, teacher_from_args
from data_generation.teacher.base import Completion, starts_replies

log = logging.getLogger(__name__)
# single mode answers at most this many tasks per task still wanted (some answers fail their checks);
# the rest of a step's novel tasks are left out as over_target, as batch mode's past the target are
ANSWER_SLACK = 2


class SelfInstructSource(ResumableSource):
    name: ClassVar[str] = "self-instruct"
    # a larger target only asks for more tasks, the idle limit only says when to give up; the seed
    # file may move (its content is compared, as seed_tasks_sha256)
    resume_may_change: ClassVar[frozenset[str]] = frozenset({"num_instructions", "max_idle_steps", "seed_tasks"})

    def __init__(self, config: SelfInstructConfig, teacher: Teacher, filters: FilterConfig = FilterConfig()) -> None:
        self.cfg, self.teacher, self.filters = config, teacher, filters
        self.seeds = si.load_seed_tasks(config.seed_tasks)
        self.seeds_sha256 = file_sha256(config.seed_tasks)
        self.pool = RougeLFilter(config.threshold)
        for seed in self.seeds:
            self.pool.add(seed.instruction)
        self.machine: list[si.Example] = []
        self.step = 0
        self.stop_reason: str | None = None  # why the run ended before num_instructions, if it did
        self.on_step: Callable[[], None] | None = None  # called after each finished step (the CLI's manifest)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        options.add_arguments(parser)
        add_teacher_arguments(parser)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SelfInstructSource":
        try:
            cfg = options.config_from_args(args)
        except ValueError as exc:  # an impossible combination of options: say which, no traceback
            raise SystemExit(f"self-instruct: {exc}") from None
        return cls(cfg, teacher_from_args(args))

    def config(self) -> dict[str, Any]:
        return {
            **asdict(self.cfg),
            "teacher": {"model": self.teacher.model},
            "seeds": len(self.seeds),
            "seed_tasks_sha256": self.seeds_sha256,
            "prompts_sha256": templates_sha256(template_names(self.cfg)),
        }

    def side_files(self) -> list[Path]:
        return []  # the journal and its manifest only, both under the output's lock

    def summary(self) -> dict[str, Any]:
        """Extra manifest fields: teacher usage (requests, tokens, cost) and where the run ended."""
        return {"teacher_usage": self.teacher.usage(), "steps": self.step, "machine_tasks": len(self.machine)}

    def close(self) -> None:
        self.teacher.close()

    # ------------------------------------------------------------ resuming

    def resume(self, done: list[Record]) -> int:
        """Take the journal's records as the machine pool; return how many of them to keep.

        Records of a step are written together with `meta.step_kept` = their count, so a last step
        with fewer records than that was cut by a crash: it is dropped and generated again.
        """
        keep = len(done)
        if any(not isinstance(r.meta.get("step"), int) or r.source != self.name for r in done):
            raise ValueError(
                "the output file holds records that are not from a self-instruct run; "
                "choose a new --output (self-instruct appends to it, to resume)"
            )
        if done:
            last = done[-1].meta.get("step")
            tail = [r for r in done if r.meta.get("step") == last]
            if len(tail) != tail[0].meta.get("step_kept"):
                keep -= len(tail)
                log.warning("dropping %d records of incomplete step %s; it is generated again", len(tail), last)
        for rec in done[:keep]:
            self._admit(rec)
        self.step = (done[keep - 1].meta["step"] + 1) if keep else 0
        if keep:
            log.info("resuming after %d machine tasks, at step %d", keep, self.step)
        return keep

    def _admit(self, rec: Record) -> None:
        self.pool.add(rec.instruction)
        self.machine.append(si.Example.from_record(rec))

    # ------------------------------------------------------------ generating

    def records(self, stats: SourceStats) -> Iterator[Record]:
        for batch in self.batches(stats):
            yield from batch

    def batches(self, stats: SourceStats) -> Iterator[list[Record]]:
        """One list of kept records per step, until `num_instructions` are kept (or `max_idle_steps`
        steps in a row kept nothing: then `stop_reason` says so). `on_step` runs after each step,
        once the caller has stored the step's records."""
        idle = 0
        self.stop_reason = None
        while len(self.machine) < self.cfg.num_instructions:
            before = Counter(stats.rejected)
            kept = self._run_step_single(stats) if self.cfg.mode == "single" else self._run_step(stats)
            idle = 0 if kept else idle + 1
            step, self.step = self.step, self.step + 1
            if kept:
                yield kept
            log_step(
                log,
                self.name,
                step,
                len(kept),
                stats.rejected - before,
                f"{len(self.machine)} of {self.cfg.num_instructions} machine tasks",
            )
            if self.on_step is not None:
                self.on_step()
            if idle >= self.cfg.max_idle_steps:
                self.stop_reason = (
                    f"max_idle_steps: {idle} steps in a row kept no task; "
                    f"{len(self.machine)} of {self.cfg.num_instructions} machine tasks"
                )
                log.warning(
                    "stopping: %d steps in a row kept no task (teacher too weak, or filters too strict?); "
                    "%d of %d machine tasks",
                    idle,
                    len(self.machine),
                    self.cfg.num_instructions,
                )
                return

    def _run_step(self, stats: SourceStats) -> list[Record]:
        requests, shown = batch_requests(self.cfg, self.seeds, self.machine, self.step)
        completions = self.teacher.complete_all(requests)
        candidates = []
        for r, (completion, (examples, first)) in enumerate(zip(completions, shown)):
            for c, choice in enumerate(completion.choices):
                tasks, rejects = si.parse_reply(choice.text, first, choice.finish_reason)
                where = f"step {self.step} request {r} choice {c}"
                for rej in rejects:
                    stats.read += 1
                    stats.reject(f"parse_{rej.reason}", where, f"task {rej.index}")
                for task in tasks:
                    stats.read += 1
                    reason = instruction_reason(task.instruction, task.input, task.output, self.filters)
                    if reason:
                        stats.reject(reason, where, task.instruction[:120])
                        continue
                    candidates.append((task, r, c, examples, completion, choice.finish_reason, None))
        return self._keep_novel(candidates, stats)

    # ------------------------------------------------------------ single mode

    def _run_step_single(self, stats: SourceStats) -> list[Record]:
        """Tasks first (filters, then the ROUGE-L filter as a probe that pools nothing), answers only
        for the tasks that can still be kept, then the same decision as batch mode's."""
        asked = single_requests(self.cfg, self.seeds, self.machine, self.step)
        completions = self.teacher.complete_all([request for request, _, _ in asked])
        tasks = []
        for r, (completion, (_, examples, task)) in enumerate(zip(completions, asked)):
            choice, where = completion.choices[0], f"step {self.step} request {r}"
            stats.read += 1
            instruction, reason = si.parse_single_instruction(choice.text, choice.finish_reason)
            if instruction is None:
                stats.reject(f"parse_{reason}", where, choice.text[:120])
                continue
            reason = instruction_reason(instruction, "", "(answer not asked yet)", self.filters)
            if reason:
                stats.reject(reason, where, instruction[:120])
                continue
            tasks.append((r, instruction, examples, task, completion))
        probe = self.pool.decide([instruction for _, instruction, *_ in tasks])
        novel = []
        room = self.cfg.num_instructions - len(self.machine)
        for item, decision in zip(tasks, probe):
            where = f"step {self.step} request {item[0]}"
            if not decision.keep:
                stats.reject("similar_to_pool", where, f"ROUGE-L {decision.max_score:.3f}: {item[1][:100]}")
            elif len(novel) == ANSWER_SLACK * room:  # near the target: answers past this are not worth paying for
                stats.reject("over_target", where, item[1][:120])
            else:
                novel.append(item)
        return self._keep_novel(self._answered(novel, stats), stats)

    def _answered(self, novel: list[tuple], stats: SourceStats) -> list[tuple]:
        """Single mode's candidates: the novel tasks whose answer is one complete code block that
        passes the instruction filters and parses (tree-sitter)."""
        starts = starts_replies(self.teacher)
        answers = self.teacher.complete_all(
            [
                answer_request(self.cfg, self.step, r, instruction, task, teacher_starts=starts)
                for r, instruction, _, task, _ in novel
            ]
        )
        candidates = []
        for (r, instruction, examples, task, asked_completion), answer in zip(novel, answers):
            choice, where = answer.choices[0], f"step {self.step} request {r}"
            code, reason = parse_program_reply(choice.text, task.language, choice.finish_reason)
            if code is None:
                stats.reject(f"answer_{reason}", where, instruction[:120])
                continue
            code = code.strip("\n")
            reason = instruction_reason(instruction, "", code, self.filters)
            if reason:
                stats.reject(reason, where, instruction[:120])
                continue
            error = syntax_error(code, task.language)
            if error:
                stats.reject("answer_syntax_error", where, f"{error}: {instruction[:80]}")
                continue
            parsed = ParsedTask(1, instruction, "", code)
            meta = {
                "mode": "single",
                "language_asked": task.language,
                "instruction_finish_reason": asked_completion.choices[0].finish_reason,
            }
            candidates.append((parsed, r, 0, examples, answer, choice.finish_reason, meta))
        return candidates

    # ------------------------------------------------------------ both modes

    def _keep_novel(self, candidates: list[tuple], stats: SourceStats) -> list[Record]:
        room = self.cfg.num_instructions - len(self.machine)
        decisions = self.pool.filter(t.instruction for t, *_ in candidates)
        kept: list[Record] = []
        for (task, r, c, examples, completion, finish, extra), decision in zip(candidates, decisions):
            where = f"step {self.step} request {r} choice {c}"
            if not decision.keep:
                stats.reject("similar_to_pool", where, f"ROUGE-L {decision.max_score:.3f}: {task.instruction[:100]}")
                continue
            if len(kept) == room:  # the filter pooled it, harmlessly: the run ends with this step
                stats.reject("over_target", where, task.instruction[:120])
                continue
            kept.append(self._record(task, r, examples, completion, finish, decision, extra))
        kept = [rec.replace(meta={**rec.meta, "step_kept": len(kept)}) for rec in kept]
        self.machine.extend(si.Example.from_record(rec) for rec in kept)
        stats.emitted += len(kept)
        return kept

    def _record(
        self,
        task: ParsedTask,
        request: int,
        examples: list[si.Example],
        completion: Completion,
        finish: str,
        decision,
        extra: dict[str, Any] | None = None,
    ) -> Record:
        """A kept task. `extra` (single mode): the mode, the language asked for and the task request's
        finish reason; `finish_reason` is then the answer's, and there is no task number."""
        meta = {"teacher_model": completion.model, "step": self.step, "request": request}
        if extra is None:
            meta["task_number"] = task.index
        meta.update(
            {
                "finish_reason": finish,
                **(extra or {}),
                "prompt_examples": [ex.origin for ex in examples],
                "most_similar_instructions": self.pool.most_similar_instructions(decision),
                "avg_similarity_score": decision.avg_score,
            }
        )
        language = extra["language_asked"] if extra else guess_language(task.instruction, task.input, task.output)
        return Record(
            instruction=task.instruction,
            input=task.input,
            output=task.output,
            source=self.name,
            language=language,
            meta=meta,
        )
