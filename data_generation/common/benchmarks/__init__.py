"""The benchmarks, one module each, registered by name in a plain dict (like `data_generation.sources`).

Adding a benchmark is one module (a `Benchmark` subclass: loader, prompt styles, program assembly,
decontamination view) plus one line here; the generate, evaluate and merge commands take every name
registered here.
"""

from data_generation.common.benchmarks.base import Benchmark
from data_generation.common.benchmarks.evalplus import HUMANEVAL_PLUS, MBPP_PLUS
from data_generation.common.benchmarks.humaneval import HUMANEVAL
from data_generation.common.benchmarks.mbpp import MBPP

BENCHMARKS: dict[str, Benchmark] = {
    HUMANEVAL.name: HUMANEVAL,
    MBPP.name: MBPP,
    HUMANEVAL_PLUS.name: HUMANEVAL_PLUS,
    MBPP_PLUS.name: MBPP_PLUS,
}


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark `name`; an unknown name says which exist."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]
