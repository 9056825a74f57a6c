"""Source adapters, one module each, registered by name in a plain dict."""

from data_generation.sources.base import Source, SourceStats
from data_generation.sources.codealpaca import CodeAlpacaSource
from data_generation.sources.codecontests.source import CodeContestsSource
from data_generation.sources.reverse_instruct.source import ReverseInstructSource
from data_generation.sources.self_instruct.source import SelfInstructSource

SOURCES: dict[str, type[Source]] = {
    CodeAlpacaSource.name: CodeAlpacaSource,
    CodeContestsSource.name: CodeContestsSource,
    ReverseInstructSource.name: ReverseInstructSource,
    SelfInstructSource.name: SelfInstructSource,
}

__all__ = ["SOURCES", "Source", "SourceStats"]
