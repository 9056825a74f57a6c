"""Self-instruct's teacher requests, built from (seed, step, request) and the pool as it stands, so
a step that runs again asks exactly the same (and, with the cache, pays nothing).

Batch mode sends one numbered-list prompt per request; single mode one task request per request
(a language and opening words drawn for it), then one answer request per task still worth keeping.
"""

from __future__ import annotations

import random

from data_generation.common.prompts import load_template
from data_generation.sources.self_instruct import tasks as si
from data_generation.sources.self_instruct.config import SelfInstructConfig
from data_generation.teacher.base import Decoding, Request


def template_names(cfg: SelfInstructConfig) -> tuple[str, ...]:
    """The prompt templates a run's requests read (its manifest keeps their digest: a resume checks it)."""
    if cfg.mode == "single":
        return ("self_instruct_single_system", "self_instruct_single", "self_instruct_answer")
    return ("self_instruct_task", "self_instruct_system") if cfg.api == "chat" else ("self_instruct_task",)


def batch_requests(
    cfg: SelfInstructConfig, seeds: list[si.Example], machine: list[si.Example], step: int
) -> tuple[list[Request], list[tuple[list[si.Example], int]]]:
    """Batch mode's requests of step `step`, and per request the examples shown and the first task
    number the teacher writes."""
    requests: list[Request] = []
    shown: list[tuple[list[si.Example], int]] = []
    for r in range(cfg.requests_per_step):
        rng = random.Random(f"self-instruct:{cfg.seed}:{step}:{r}")
        examples = si.sample_examples(seeds, machine, cfg.num_prompt_instructions, cfg.machine_ratio, rng)
        prompt, first = si.build_prompt(examples, cfg.num_tasks)
        decoding = Decoding(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.max_tokens,
            stop=si.stop_sequences(cfg.num_tasks),
            seed=rng.randrange(2**31),
        )
        tag = f"self-instruct:{cfg.seed}:{step}:{r}"
        if cfg.api == "chat":
            requests.append(
                Request.chat(prompt, system=load_template("self_instruct_system"), decoding=decoding, tag=tag)
            )
        else:
            requests.append(Request(prompt=prompt, decoding=decoding, tag=tag))
        shown.append((examples, first))
    return requests, shown


def single_requests(
    cfg: SelfInstructConfig, seeds: list[si.Example], machine: list[si.Example], step: int
) -> list[tuple[Request, list[si.Example], si.SingleTask]]:
    """Single mode's task requests of step `step`: per request its examples, language and opening
    words, all drawn from (seed, step, request) and the pool as it stands, like batch mode's."""
    out = []
    languages = cfg.languages or si.SINGLE_LANGUAGES
    for r in range(cfg.requests_per_step):
        rng = random.Random(f"self-instruct:{cfg.seed}:{step}:{r}")
        examples = si.sample_examples(seeds, machine, cfg.num_prompt_instructions, cfg.machine_ratio, rng)
        task = si.pick_single_task(languages, rng)
        decoding = Decoding(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.instruction_max_tokens,
            stop=("\n",),
            seed=rng.randrange(2**31),
        )
        request = Request.chat(
            si.build_single_prompt(examples, task),
            system=load_template("self_instruct_single_system"),
            decoding=decoding,
            tag=f"self-instruct:single:{cfg.seed}:{step}:{r}",
            reply_prefix=task.prefix,
        )
        out.append((request, examples, task))
    return out


def answer_request(
    cfg: SelfInstructConfig, step: int, r: int, instruction: str, task: si.SingleTask, *, teacher_starts: bool
) -> Request:
    """Single mode: the plain chat question for the answer to request `r`'s task (`teacher_starts`:
    the teacher opens the code block itself, see `starts_replies`)."""
    tag = f"self-instruct:answer:{cfg.seed}:{step}:{r}"
    # A teacher that opened the code block itself stops where the block closes; any other
    # teacher writes the whole reply and the block is taken out of it.
    stop = ("```",) if teacher_starts else ()
    decoding = Decoding(
        temperature=cfg.answer_temperature,
        top_p=cfg.top_p,
        max_tokens=cfg.max_tokens,
        stop=stop,
        seed=random.Random(tag).randrange(2**31),
    )
    return Request.chat(
        instruction,
        system=si.build_answer_system(task),
        decoding=decoding,
        tag=tag,
        reply_prefix=si.answer_prefix(task),
    )
