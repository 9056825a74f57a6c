"""Prompt formats: how an (instruction, input) pair becomes the text and the token ids a model sees.

One renderer serves training and generation, so a tuned model is asked exactly what it was taught:
`main.training.data.tokenize_records` and `main.generate` both call `format.render(...)` and then
`encode_prompts(tokenizer, prompts, templated=format.templated)`.

- `alpaca`: the seeds' wording (Stanford Alpaca / CodeAlpaca), kept in `prompts/alpaca_input.txt` and
  `prompts/alpaca_no_input.txt`. Each file ends with one newline for editors; it is not part of the
  prompt, which ends right after "### Response:" exactly as in the seeds' training code. The tokenizer
  adds its own prefix (Llama's BOS).
- `chat`: one user turn rendered by the tokenizer's own chat template with the generation prompt
  (`<|im_start|>assistant\\n` for ChatML models). The template writes its special tokens itself, so
  the text is encoded without the tokenizer's prefix (no second BOS). What instruct models are tuned on.

`auto` (training's default) picks `chat` when the tokenizer has a chat template, `alpaca` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, Sequence

from data_generation.common.paths import PROMPTS_DIR

PROMPT_FORMATS = ("alpaca", "chat")


@lru_cache(maxsize=None)
def load_template(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.txt"
    text = path.read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


def render_prompt(instruction: str, input: str = "") -> str:
    """The Alpaca prompt; the response follows it directly."""
    if input.strip():
        return load_template("alpaca_input").format_map({"instruction": instruction, "input": input})
    return load_template("alpaca_no_input").format_map({"instruction": instruction})


def render_example(instruction: str, input: str, output: str) -> tuple[str, str]:
    """(prompt, target) in the Alpaca format: the loss covers only the target (plus EOS)."""
    return render_prompt(instruction, input), output


def user_message(instruction: str, input: str = "") -> str:
    """The one user turn of the chat format: the instruction, then the input after a blank line."""
    return f"{instruction}\n\n{input}" if input.strip() else instruction


class PromptFormat(Protocol):
    """Turns an instruction (and optional input) into prompt text. `templated`: the text already holds
    the model's special tokens, so it is encoded without the tokenizer's own prefix."""

    name: str
    templated: bool

    def render(self, instruction: str, input: str = "") -> str: ...


@dataclass(frozen=True)
class AlpacaFormat:
    name: str = "alpaca"
    templated: bool = False

    def render(self, instruction: str, input: str = "") -> str:
        return render_prompt(instruction, input)


@dataclass(frozen=True)
class ChatFormat:
    tokenizer: Any
    name: str = "chat"
    templated: bool = True

    def __post_init__(self) -> None:
        if not has_chat_template(self.tokenizer):
            raise ValueError(
                "prompt format 'chat' needs a tokenizer with a chat template; this one has none (use the alpaca format)"
            )

    def render(self, instruction: str, input: str = "") -> str:
        messages = [{"role": "user", "content": user_message(instruction, input)}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def resolve_format_name(name: str, tokenizer: Any) -> str:
    """`alpaca`, `chat`, or for `auto` the one that fits the tokenizer (chat when it has a template)."""
    if name == "auto":
        return "chat" if has_chat_template(tokenizer) else "alpaca"
    if name not in PROMPT_FORMATS:
        raise ValueError(f"prompt format {name!r}; choose one of auto, {', '.join(PROMPT_FORMATS)}")
    return name


def get_format(name: str, tokenizer: Any = None) -> PromptFormat:
    """The format `name` (`auto` resolved against `tokenizer`); chat needs the tokenizer."""
    resolved = resolve_format_name(name, tokenizer)
    return ChatFormat(tokenizer) if resolved == "chat" else AlpacaFormat()


def encode_prompt(tokenizer: Any, prompt: str, *, templated: bool = False) -> list[int]:
    return encode_prompts(tokenizer, [prompt], templated=templated)[0]


def encode_prompts(tokenizer: Any, prompts: Sequence[str], *, templated: bool = False) -> list[list[int]]:
    """Prompt ids exactly as training and generation feed them, never ending in EOS.

    Untemplated text gets the tokenizer's own prefix (Llama's BOS); templated text (a chat template's
    output) already holds it. Prompt and target are encoded separately, so the ids a model is trained
    on after the prompt start at the same token boundary as at generation time."""
    if not prompts:
        return []
    encoded = tokenizer(list(prompts), add_special_tokens=not templated)["input_ids"]
    out = []
    for ids in encoded:
        ids = list(ids)
        while ids and ids[-1] == tokenizer.eos_token_id:  # tokenizers configured with add_eos_token
            ids.pop()
        out.append(ids)
    return out
