"""Tiny Llama models built in a test, for tests that need a real HF model folder but no download.

`make_tiny_llama(folder)` trains a byte-level BPE tokenizer on a few sentences (with a ChatML chat
template, `<|im_end|>` as EOS and a separate `<|pad|>`), builds a randomly initialised Llama with a
few thousand parameters and saves both with `save_pretrained`, exactly like a hub checkpoint. With
`memorize=TEXT` it is first trained for a few dozen steps (under a second on CPU) to answer every
chat prompt with TEXT followed by EOS, so a test can rely on a known reply and a real EOS.

Import it as `from tests.tiny_models import make_tiny_llama`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "Write a Python function that returns the sum of a list of numbers.",
    "def add(a, b):\n    return a + b\n",
    "Explain what a SQL JOIN does, with an example query.",
    "SELECT name FROM users WHERE age > 30;",
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9",
    "Instruction: reverse a string in JavaScript.\nOutput: s.split('').reverse().join('')",
]

# Varied chat prompts, so the memorised reply does not depend on what the user says.
MEMORIZE_PROMPTS = CORPUS + ["Hi", "x", "Explain recursion.", "a b c"]


def make_tiny_tokenizer(corpus: list[str] = CORPUS, vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """A byte-level BPE (every string round-trips exactly) with the chat special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def make_tiny_llama(
    folder: Path,
    *,
    seed: int = 0,
    memorize: str | None = None,
    steps: int = 60,
    hidden_size: int = 32,
    layers: int = 2,
    context: int = 512,
) -> Path:
    """Save a tiny Llama + tokenizer into `folder` (created) and return it."""
    folder = Path(folder)
    tokenizer = make_tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    if memorize is not None:
        _memorize(model, tokenizer, memorize, steps)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _memorize(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, reply: str, steps: int) -> None:
    """Teach the model to answer any user message with `reply` + EOS (loss on the reply only).

    One padded batch of varied prompts per step, on one thread: for tensors this small, extra
    threads only add synchronisation (10x slower on a busy 2-core machine)."""
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
        for text in MEMORIZE_PROMPTS
    ]
    prefixes = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    answer = tokenizer(reply + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    width = max(map(len, prefixes)) + len(answer)
    pads = [width - len(prefix) - len(answer) for prefix in prefixes]
    ids = torch.tensor([p + answer + [tokenizer.pad_token_id] * n for p, n in zip(prefixes, pads)])
    labels = torch.tensor([[-100] * len(p) + answer + [-100] * n for p, n in zip(prefixes, pads)])
    mask = torch.tensor([[1] * (len(p) + len(answer)) + [0] * n for p, n in zip(prefixes, pads)])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(steps):
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    finally:
        torch.set_num_threads(threads)
        model.eval()
