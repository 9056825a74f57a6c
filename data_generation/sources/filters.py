"""Quality filters for machine-written instructions: pure functions returning a drop reason or None.

Adapted from Stanford Alpaca's filters for code. Alpaca's keyword blacklist drops "file", "map",
"graph", "plot" and "image", which are ordinary words in programming tasks ("read a CSV file",
"a hash map", "plot a histogram with matplotlib"); the list here keeps only what a text-only model
truly cannot do: produce or perceive media, act in the world, or see live state.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

DEFAULT_BLACKLIST = (
    "draw a picture",
    "draw me",
    "sketch",
    "photograph",
    "take a photo",
    "take a picture",
    "video",
    "audio",
    "music",
    "song",
    "sing",
    "listen to",
    "flowchart",
    "diagram",
    "go to",
    "visit the website",
    "browse",
    "click on",
    "screenshot",
    "record a",
    "call me",
    "email me",
    "current weather",
    "today's date",
    "latest news",
    "stock price today",
)
DEFAULT_BOILERPLATE = ("write a program",)


@dataclass(frozen=True)
class FilterConfig:
    min_words: int = 3
    max_words: int = 150
    blacklist: tuple[str, ...] = DEFAULT_BLACKLIST
    boilerplate_prefixes: tuple[str, ...] = DEFAULT_BOILERPLATE
    max_input_chars: int = 4000
    _pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        words = "|".join(re.escape(w) for w in sorted(self.blacklist, key=len, reverse=True))
        object.__setattr__(self, "_pattern", re.compile(rf"\b({words})\b", re.I) if words else re.compile(r"(?!)"))


def instruction_reason(
    instruction: str, input: str = "", output: str = "", config: FilterConfig = FilterConfig()
) -> str | None:
    """Why this task should be dropped, or None to keep it."""
    text = instruction.strip()
    n_words = len(text.split())
    if n_words < config.min_words:
        return "too_short"
    if n_words > config.max_words:
        return "too_long"
    if text[0] in string.punctuation:
        return "starts_with_punctuation"
    if not text[0].isascii():
        return "non_ascii_start"
    lower = text.lower()
    if any(lower.startswith(p) for p in config.boilerplate_prefixes):
        return "boilerplate"
    if config._pattern.search(text):
        return "blacklisted_word"
    if len(input) > config.max_input_chars:
        return "input_too_long"
    if not output.strip():
        return "empty_output"
    return None
