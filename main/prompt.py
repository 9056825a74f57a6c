"""The Alpaca prompt: one renderer that training and generation both call.

Wording is the seeds' (Stanford Alpaca / CodeAlpaca), kept in `prompts/alpaca_input.txt` and
`prompts/alpaca_no_input.txt`. Each file ends with one newline for editors; it is not part of the
prompt, which ends right after "### Response:" exactly as in the seeds' training code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@lru_cache(maxsize=None)
def load_template(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.txt"
    text = path.read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


def render_prompt(instruction: str, input: str = "") -> str:
    """The prompt a model sees; the response follows it directly."""
    if input.strip():
        return load_template("alpaca_input").format_map({"instruction": instruction, "input": input})
    return load_template("alpaca_no_input").format_map({"instruction": instruction})


def render_example(instruction: str, input: str, output: str) -> tuple[str, str]:
    """(prompt, target) for training: the loss covers only the target (plus EOS, added by the tokenizer step)."""
    return render_prompt(instruction, input), output
