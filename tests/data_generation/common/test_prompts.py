import pytest

from data_generation.common.prompts import (
    PROMPTS_DIR,
    encode_prompt,
    get_format,
    render_example,
    render_prompt,
)

# The seeds' exact wording (Stanford Alpaca's PROMPT_DICT, reused by CodeAlpaca).
SEED_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
SEED_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


def test_prompts_match_the_seeds_exactly():
    assert render_prompt("Sort {x}", "[3, 1]") == SEED_WITH_INPUT.format(instruction="Sort {x}", input="[3, 1]")
    assert render_prompt("Say hi") == SEED_NO_INPUT.format(instruction="Say hi")
    assert render_prompt("Say hi", "   ") == render_prompt("Say hi")  # blank input counts as none


def test_templates_live_in_prompts_folder():
    assert (PROMPTS_DIR / "alpaca_input.txt").read_text().rstrip("\n") == SEED_WITH_INPUT
    assert (PROMPTS_DIR / "alpaca_no_input.txt").read_text().rstrip("\n") == SEED_NO_INPUT


def test_render_example_splits_prompt_and_target():
    prompt, target = render_example("Add", "1 2", "3")
    assert prompt == render_prompt("Add", "1 2") and target == "3"


# ---- formats: one renderer and one encoder for training and generation


def test_chat_format_is_the_tokenizers_own_template_and_auto_picks_it():
    from tests.tiny_models import make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    chat = get_format("auto", tok)
    assert chat.name == "chat" and chat.templated
    assert chat.render("Add", "1 2") == "<|im_start|>user\nAdd\n\n1 2<|im_end|>\n<|im_start|>assistant\n"
    tok.chat_template = None
    assert get_format("auto", tok).name == "alpaca" and not get_format("alpaca").templated
    with pytest.raises(ValueError, match="chat template"):
        get_format("chat", tok)
    with pytest.raises(ValueError, match="choose one of auto, alpaca, chat"):
        get_format("vicuna", tok)


def test_templated_prompts_get_no_second_bos():
    from tokenizers.processors import TemplateProcessing

    from tests.tiny_models import make_tiny_tokenizer

    tok = make_tiny_tokenizer()  # a Llama-like tokenizer that puts BOS before every text it encodes
    tok._tokenizer.post_processor = TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", tok.bos_token_id)]
    )
    assert encode_prompt(tok, "hi")[0] == tok.bos_token_id
    assert encode_prompt(tok, "<|im_start|>user\nhi", templated=True).count(tok.bos_token_id) == 1


def test_training_and_generation_prompts_are_the_same_tokens(tmp_path):
    """The ids main.train puts before a target are the ids main.generate feeds, in both formats."""
    from data_generation.common.benchmarks import get_benchmark
    from data_generation.common.benchmarks.humaneval import load_humaneval
    from data_generation.common.record import Record
    from main.sampling.transformers_backend import TransformersBackend
    from main.training.data import tokenize_records
    from main.training.modeling import load_tokenizer
    from main.training.packing import IGNORE_INDEX
    from tests.tiny_models import make_tiny_llama

    folder = make_tiny_llama(tmp_path / "model")
    backend = TransformersBackend(str(folder), threads=1)
    training_tokenizer = load_tokenizer(folder)  # what main.train uses (pad policy applied)
    problem = load_humaneval()[7]
    for name in ("alpaca", "chat"):
        style = get_benchmark("humaneval").style(name)
        record = Record(instruction=style.instruction(problem), input="", output="def f(): pass", source="t")
        [example], _ = tokenize_records([record], training_tokenizer, 4096, get_format(name, training_tokenizer))
        trained = [t for t, label in zip(example.input_ids, example.labels) if label == IGNORE_INDEX]
        generated = backend._encode([(style.render(problem, tokenizer=backend.tokenizer), style.templated)])
        assert generated["input_ids"][0].tolist() == trained, name
