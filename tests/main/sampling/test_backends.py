import sys
import types

import pytest
import torch

from data_generation.common.sampling import SamplingSettings
from main.sampling.backends import make_backend
from main.sampling.openai_backend import OpenAIBackend
from main.sampling.rows import Row
from main.sampling.transformers_backend import TransformersBackend
from main.sampling.vllm_backend import VLLMBackend
from tests.tiny_models import make_tiny_llama

REPLY = "```python\ndef f():\n    return 1\n```\nIt returns 1.\ndef g(): pass"
PROMPTS = [
    "def add(a, b):\n",
    "Write a Python function that returns the sum of a list",
    "x",
    "SELECT name FROM users WHERE age > 30;\nExplain",
]


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: extra threads only add synchronisation on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def random_llama(tmp_path_factory, one_thread):
    return TransformersBackend(str(make_tiny_llama(tmp_path_factory.mktemp("random"), seed=3)))


@pytest.fixture(scope="module")
def replying_llama(tmp_path_factory, one_thread):
    """A tiny Llama trained to answer every chat prompt with REPLY + EOS."""
    return TransformersBackend(
        str(make_tiny_llama(tmp_path_factory.mktemp("reply"), seed=0, memorize=REPLY, steps=80, hidden_size=64))
    )


def chat(backend, user):
    return backend.tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False
    )


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(max_tokens=10, greedy=True),
        SamplingSettings(max_tokens=10, temperature=1.0, top_p=0.9),
        SamplingSettings(max_tokens=10, temperature=0.7, top_k=5, top_p=0.95),
    ],
)
def test_a_sample_does_not_depend_on_its_batch(random_llama, settings):
    rows = [Row(p, 100 + i) for i, p in enumerate(PROMPTS)] + [Row(PROMPTS[0], 7)]
    together = random_llama.generate(rows, settings)
    alone = [random_llama.generate([row], settings)[0] for row in rows]
    assert together == alone  # left padding, per-row generators: batch 5 == batch 1
    assert all(g.tokens <= 10 and g.finish_reason in ("eos", "length") for g in together)
    if not settings.greedy:  # another seed, another sample (same prompt)
        assert together[0].text != together[4].text
        assert random_llama.generate(rows[:1], settings) == together[:1]  # same seed, same sample


def test_stop_strings_end_generation_on_new_text_only(replying_llama):
    prompt = chat(replying_llama, "Explain recursion.\ndef g(): this stop string is in the prompt")
    full = replying_llama.generate([Row(prompt, 1)], SamplingSettings(greedy=True, max_tokens=60))[0]
    assert full.text == REPLY and full.finish_reason == "eos"
    stopped = replying_llama.generate(
        [Row(prompt, 1)], SamplingSettings(greedy=True, max_tokens=60, stop=("\ndef g",))
    )[0]
    assert stopped.finish_reason == "stop" and stopped.text.startswith(REPLY[: REPLY.index("\ndef g")])
    assert "\ndef g" in stopped.text and stopped.tokens < full.tokens  # stopped inside generate
    fenced = replying_llama.generate(
        [Row(prompt, 1)], SamplingSettings(greedy=True, max_tokens=60, stop_after_fence=True)
    )[0]
    assert fenced.finish_reason == "stop" and fenced.text.startswith("```python\ndef f():\n    return 1\n```")
    assert fenced.tokens < stopped.tokens


def test_rows_of_one_batch_stop_independently(replying_llama):
    settings = SamplingSettings(greedy=True, max_tokens=60, stop=("It returns",))
    rows = [Row(chat(replying_llama, "Hi"), 1), Row("def add(a, b):\n", 2)]  # the second never says it
    first, second = replying_llama.generate(rows, settings)
    assert first.finish_reason == "stop" and first.text.endswith("It returns")
    assert second.finish_reason in ("eos", "length") and "It returns" not in second.text


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("tgi", "m")


def test_openai_backend_sends_one_seeded_request_per_row():
    from data_generation.teacher.loopback import LoopbackServer
    from data_generation.teacher.loopback_http import Reply

    def reply(request):
        prompt = request.body["prompt"]
        return Reply.text("    return 1\ndef", finish_reason="length") if "long" in prompt else f"echo {prompt}"

    settings = SamplingSettings(
        temperature=0.8, top_p=0.9, max_tokens=32, stop=("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    )
    with LoopbackServer(reply) as server:
        backend = OpenAIBackend("served-model", base_url=server.base_url, api_key_env="NO_SUCH_KEY_VAR")
        try:
            out = backend.generate([Row("def a():", 11), Row("long one", 12)], settings)
        finally:
            backend.close()
        bodies = sorted((r.body for r in server.completion_requests()), key=lambda b: b["seed"])
    assert [g.text for g in out] == ["echo def a():", "    return 1\ndef"]
    assert [g.finish_reason for g in out] == ["stop", "length"]
    assert [b["seed"] for b in bodies] == [11, 12] and all(b["n"] == 1 for b in bodies)
    assert bodies[0]["stop"] == list(settings.stop[:4]) and bodies[0]["max_tokens"] == 32
    assert bodies[0]["model"] == "served-model" and bodies[0]["temperature"] == 0.8


def test_vllm_backend_gives_every_row_its_own_seed(monkeypatch, tmp_path):
    """vLLM is not installed here: a stand-in module records what the backend asks of it."""
    made = {}
    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kw: kw

    def out(text, reason, stop_reason):
        ids = [1] * len(text)
        reply = types.SimpleNamespace(text=text, finish_reason=reason, stop_reason=stop_reason, token_ids=ids)
        return types.SimpleNamespace(outputs=[reply])

    class LLM:
        def __init__(self, **kwargs):
            made.update(kwargs)

        def get_tokenizer(self):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(made["model"])

        def generate(self, prompts, params, lora_request=None, use_tqdm=False):
            made["params"], made["prompts"] = params, prompts
            return [out("a", "stop", "\ndef"), out("bb", "stop", None), out("ccc", "length", None)]

    fake.LLM = LLM
    monkeypatch.setitem(sys.modules, "vllm", fake)
    model = make_tiny_llama(tmp_path / "m")
    backend = VLLMBackend(str(model), dtype="bf16")
    settings = SamplingSettings(temperature=0.2, top_p=0.95, max_tokens=64, stop=("\ndef",))
    result = backend.generate([Row("p", 1), Row("q", 2), Row("r", 3, templated=True)], settings)
    assert [p["seed"] for p in made["params"]] == [1, 2, 3] and made["model"] == str(model)
    assert made["dtype"] == "bfloat16"  # vLLM takes torch's names for the precisions
    tokenizer = backend.llm.get_tokenizer()  # token ids go in: the encoder training uses, no second BOS
    assert made["prompts"][2] == {"prompt_token_ids": tokenizer("r", add_special_tokens=False)["input_ids"]}
    assert made["params"][0] == {
        "n": 1,
        "temperature": 0.2,
        "top_p": 0.95,
        "top_k": -1,
        "max_tokens": 64,
        "stop": ["\ndef"],
        "seed": 1,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    assert [(g.text, g.finish_reason) for g in result] == [("a", "stop"), ("bb", "eos"), ("ccc", "length")]
    greedy = backend.sampling_params(Row("p", 5), SamplingSettings(greedy=True))
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == -1


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(max_tokens=8, temperature=1.0, top_p=0.95),
        SamplingSettings(max_tokens=8, greedy=True),
        SamplingSettings(max_tokens=12, temperature=1.0, stop=tuple("aeiou")),  # rows end at different steps
        SamplingSettings(max_tokens=8, temperature=1.0, top_p=0.95, frequency_penalty=0.8, presence_penalty=0.5),
        SamplingSettings(max_tokens=8, greedy=True, frequency_penalty=2.0),
    ],
)
def test_compact_decoding_equals_generate_with_and_without_a_shared_prefill(random_llama, settings):
    rows = [Row(PROMPTS[0], 1), Row(PROMPTS[0], 2), Row(PROMPTS[1], 3), Row(PROMPTS[0], 4), Row(PROMPTS[3], 5)]
    results = {}
    try:
        for mode in ("compact", "shared", "plain"):
            random_llama.decode = mode
            results[mode] = random_llama.generate(rows, settings)
    finally:
        random_llama.decode = "compact"
    assert results["compact"] == results["shared"] == results["plain"]
    if settings.stop:
        assert len({g.tokens for g in results["compact"]}) > 1


def test_lora_adapter_merged_or_not_changes_the_model_the_same_way(tmp_path, one_thread):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = make_tiny_llama(tmp_path / "base", seed=5)
    lora = peft.get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    lora.save_pretrained(tmp_path / "adapter")
    rows, settings = [Row(p, i) for i, p in enumerate(PROMPTS)], SamplingSettings(greedy=True, max_tokens=8)
    plain = TransformersBackend(str(base)).generate(rows, settings)
    merged = TransformersBackend(str(base), adapter=str(tmp_path / "adapter"))
    separate = TransformersBackend(str(base), adapter=str(tmp_path / "adapter"), merge_adapter=False)
    assert merged.describe()["adapter_merged"] and not separate.describe()["adapter_merged"]
    assert merged.generate(rows, settings) == separate.generate(rows, settings) != plain
