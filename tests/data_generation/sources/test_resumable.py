"""The resumable-source protocol: the LLM-driven sources declare it, the quick converters do not."""

from data_generation.sources import SOURCES
from data_generation.sources.base import ResumableSource
from data_generation.sources.codealpaca import CodeAlpacaSource
from data_generation.sources.codecontests.source import CodeContestsSource


def test_the_llm_driven_sources_are_the_resumable_ones():
    declared = {name for name, cls in SOURCES.items() if ResumableSource in cls.__mro__}
    assert declared == {"self-instruct", "reverse-instruct"}
    # the CLI's check on an instance: a quick converter has no resume/batches, so it is not one
    assert not isinstance(CodeAlpacaSource(), ResumableSource)
    assert not isinstance(CodeContestsSource(), ResumableSource)
