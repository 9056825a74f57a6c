"""Self-instruct: a teacher LLM invents code tasks from seed tasks (Stanford Alpaca / CodeAlpaca).

One *step* sends `requests_per_step` batch prompts at once (each: a few in-context tasks sampled
from the seeds and, by `machine_ratio`, from the tasks kept so far; the teacher continues the list
up to `num_tasks`). The replies are parsed, filtered (`data_generation.filters`) and then checked
in order against every instruction kept so far with the exact ROUGE-L filter (F <= threshold
keeps). Kept tasks of a step are appended to the output journal in one fsynced write.

Reproducible and resumable: a step's sampling depends only on (seed, step, request) and the pool,
every request carries its (step, request) tag into the teacher's cache key, and the pool is the
seeds plus the journal's records. So a re-run after `kill -9` reads the journal back, cuts an
incomplete last step, and continues; with the same cache and seed the file ends up byte-identical
to an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from data_generation import self_instruct as si
from data_generation.filters import FilterConfig, instruction_reason
from data_generation.language import guess_language
from data_generation.record import Record
from data_generation.rouge import RougeLFilter
from data_generation.sources.base import SourceStats
from data_generation.teacher import Teacher, add_teacher_arguments, teacher_from_args
from data_generation.teacher.base import Decoding, Request
from main.prompt import load_template

log = logging.getLogger(__name__)
DEFAULT_SEEDS = Path(__file__).resolve().parents[2] / "data" / "seed_tasks.jsonl"


@dataclass(frozen=True)
class SelfInstructConfig:
    seed_tasks: str = str(DEFAULT_SEEDS)
    num_instructions: int = 100  # machine tasks to keep in total (the run stops there exactly)
    num_tasks: int = 20  # tasks per prompt: in-context examples + the ones the teacher writes
    num_prompt_instructions: int = 3  # in-context examples per prompt
    machine_ratio: float = 0.0  # share of in-context examples drawn from the machine pool
    requests_per_step: int = 8
    threshold: float = 0.7  # ROUGE-L F above which a task is a near-duplicate
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 3072
    api: str = "completions"  # or "chat"
    max_idle_steps: int = 10  # stop when this many steps in a row keep nothing

    def __post_init__(self) -> None:
        if self.num_instructions < 1 or self.requests_per_step < 1 or self.max_idle_steps < 1:
            raise ValueError("num_instructions, requests_per_step and max_idle_steps must be >= 1")
        if not 0 < self.num_prompt_instructions < self.num_tasks:
            raise ValueError("need 0 < num_prompt_instructions < num_tasks")
        if not 0.0 <= self.machine_ratio <= 1.0:
            raise ValueError("machine_ratio must be in [0, 1]")
        if self.api not in ("chat", "completions"):
            raise ValueError("api must be 'chat' or 'completions'")


class SelfInstructSource:
    name: ClassVar[str] = "self-instruct"
    resumable: ClassVar[bool] = True

    def __init__(self, config: SelfInstructConfig, teacher: Teacher, filters: FilterConfig = FilterConfig()) -> None:
        self.cfg, self.teacher, self.filters = config, teacher, filters
        self.seeds = si.load_seed_tasks(config.seed_tasks)
        self.pool = RougeLFilter(config.threshold)
        for seed in self.seeds:
            self.pool.add(seed.instruction)
        self.machine: list[si.Example] = []
        self.step = 0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        d = SelfInstructConfig()
        parser.add_argument("--seed-tasks", default=d.seed_tasks, help="seed tasks (.jsonl, Alpaca seed format)")
        parser.add_argument("--num-instructions", type=int, default=d.num_instructions, help="machine tasks to keep")
        parser.add_argument("--num-tasks", type=int, default=d.num_tasks, help="tasks per prompt (examples included)")
        parser.add_argument("--num-prompt-instructions", type=int, default=d.num_prompt_instructions,
                            help="in-context example tasks per prompt")
        parser.add_argument("--machine-ratio", type=float, default=d.machine_ratio,
                            help="share of in-context examples taken from the machine-written pool")
        parser.add_argument("--requests-per-step", type=int, default=d.requests_per_step,
                            help="prompts sent together per step")
        parser.add_argument("--threshold", type=float, default=d.threshold, help="ROUGE-L near-duplicate threshold")
        parser.add_argument("--seed", type=int, default=d.seed, help="sampling seed")
        parser.add_argument("--temperature", type=float, default=d.temperature)
        parser.add_argument("--top-p", type=float, default=d.top_p)
        parser.add_argument("--max-tokens", type=int, default=d.max_tokens)
        parser.add_argument("--api", choices=("completions", "chat"), default=d.api,
                            help="teacher API: the prompt as a text to continue, or as one user message")
        parser.add_argument("--max-idle-steps", type=int, default=d.max_idle_steps,
                            help="give up after this many steps in a row that keep nothing")
        add_teacher_arguments(parser)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SelfInstructSource":
        try:
            cfg = cls._config(args)
        except ValueError as exc:  # an impossible combination of options: say which, no traceback
            raise SystemExit(f"self-instruct: {exc}") from None
        return cls(cfg, teacher_from_args(args))

    @staticmethod
    def _config(args: argparse.Namespace) -> SelfInstructConfig:
        return SelfInstructConfig(
            seed_tasks=args.seed_tasks, num_instructions=args.num_instructions, num_tasks=args.num_tasks,
            num_prompt_instructions=args.num_prompt_instructions, machine_ratio=args.machine_ratio,
            requests_per_step=args.requests_per_step, threshold=args.threshold, seed=args.seed,
            temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, api=args.api,
            max_idle_steps=args.max_idle_steps)

    def config(self) -> dict[str, Any]:
        return {**asdict(self.cfg), "teacher": {"model": self.teacher.model}, "seeds": len(self.seeds)}

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
            raise ValueError("the output file holds records that are not from a self-instruct run; "
                             "choose a new --output (self-instruct appends to it, to resume)")
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
        """One list of kept records per step, until `num_instructions` are kept."""
        idle = 0
        while len(self.machine) < self.cfg.num_instructions:
            kept = self._run_step(stats)
            idle = 0 if kept else idle + 1
            self.step += 1
            if kept:
                yield kept
            elif idle >= self.cfg.max_idle_steps:
                log.warning("stopping: %d steps in a row kept no task (teacher too weak, or filters too strict?); "
                            "%d of %d machine tasks", idle, len(self.machine), self.cfg.num_instructions)
                return

    def _requests(self) -> tuple[list[Request], list[tuple[list[si.Example], int]]]:
        cfg, requests, shown = self.cfg, [], []
        for r in range(cfg.requests_per_step):
            rng = random.Random(f"self-instruct:{cfg.seed}:{self.step}:{r}")
            examples = si.sample_examples(self.seeds, self.machine, cfg.num_prompt_instructions,
                                          cfg.machine_ratio, rng)
            prompt, first = si.build_prompt(examples, cfg.num_tasks)
            decoding = Decoding(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                                stop=si.stop_sequences(cfg.num_tasks), seed=rng.randrange(2**31))
            tag = f"self-instruct:{cfg.seed}:{self.step}:{r}"
            if cfg.api == "chat":
                requests.append(Request.chat(prompt, system=load_template("self_instruct_system"),
                                             decoding=decoding, tag=tag))
            else:
                requests.append(Request(prompt=prompt, decoding=decoding, tag=tag))
            shown.append((examples, first))
        return requests, shown

    def _run_step(self, stats: SourceStats) -> list[Record]:
        requests, shown = self._requests()
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
                    candidates.append((task, r, c, examples, completion, choice.finish_reason))
        return self._keep_novel(candidates, stats)

    def _keep_novel(self, candidates: list[tuple], stats: SourceStats) -> list[Record]:
        room = self.cfg.num_instructions - len(self.machine)
        decisions = self.pool.filter(t.instruction for t, *_ in candidates)
        kept: list[Record] = []
        for (task, r, c, examples, completion, finish), decision in zip(candidates, decisions):
            where = f"step {self.step} request {r} choice {c}"
            if not decision.keep:
                stats.reject("similar_to_pool", where, f"ROUGE-L {decision.max_score:.3f}: {task.instruction[:100]}")
                continue
            if len(kept) == room:  # the filter pooled it, harmlessly: the run ends with this step
                stats.reject("over_target", where, task.instruction[:120])
                continue
            kept.append(self._record(task, r, examples, completion, finish, decision))
        kept = [rec.replace(meta={**rec.meta, "step_kept": len(kept)}) for rec in kept]
        self.machine.extend(si.Example.from_record(rec) for rec in kept)
        stats.emitted += len(kept)
        return kept

    def _record(self, task, request: int, examples: list[si.Example], completion, finish: str, decision) -> Record:
        meta = {
            "teacher_model": completion.model, "step": self.step, "request": request, "task_number": task.index,
            "finish_reason": finish, "prompt_examples": [ex.origin for ex in examples],
            "most_similar_instructions": self.pool.most_similar_instructions(decision),
            "avg_similarity_score": decision.avg_score,
        }
        return Record(instruction=task.instruction, input=task.input, output=task.output, source=self.name,
                      language=guess_language(task.instruction, task.input, task.output), meta=meta)
