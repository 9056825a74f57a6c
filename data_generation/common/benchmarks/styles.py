"""Every registered benchmark's prompt styles by their full name (`humaneval-chat`, `mbpp-3shot`): the
names `--prompt-style` and the pipeline config accept. Each style is defined in its benchmark's module."""

from data_generation.common.benchmarks import BENCHMARKS
from data_generation.common.benchmarks.base import PromptStyle

STYLES: dict[str, PromptStyle] = {style.name: style for bench in BENCHMARKS.values() for style in bench.styles}
