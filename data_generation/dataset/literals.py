"""The concrete values a problem is stated with: its examples and test inputs, as evidence of a copy.

A rewording changes the words, and a translation into JavaScript changes the code, but writers keep
the examples: `same_chars('eabcdzzzz', 'dddzzzzzzzddeddabc')` survives both. The literals of a text
are its quoted strings (3+ characters), its bracketed number sequences (3+ numbers, written without
spacing or trailing zeros: "[1.0, 2.0,3]" and "(1, 2.0, 3)" are both "1,2,3") and its numbers of 3+
digits. Two texts share a literal only when it is distinctive: consecutive integers ("1, 2, 3, 4")
are not, and the caller drops literals that many benchmark tasks or many records use ("hello world").

What counts as distinctive (each rule removed a class of everyday values that matched benchmark
tests in the real CodeAlpaca sample): a sequence needs 5+ numbers or a number beyond 9, and is not
an arithmetic or geometric progression ("4, 3, 2, 1", "0, 0, 0, 0", "1, 3, 5, 7, 9") nor the first
primes; a string of letters alone needs 8+ characters and must not be a word the prose around it
uses ("science", "password"); other strings need 3+ ("010").
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

_STRING = re.compile(r"""(['"])((?:(?!\1).){3,80}?)\1""")
_SEQUENCE = re.compile(r"[\[({]\s*(-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?){2,})\s*,?\s*[\])}]")
_NUMBER = re.compile(r"(?<![\w.])-?\d{3,}(?:\.\d+)?(?![\w.])")


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)


def _everyday_sequence(numbers: list[float]) -> bool:
    if len(numbers) < 5 and max(abs(x) for x in numbers) < 10:
        return True
    steps = {round(b - a, 9) for a, b in zip(numbers, numbers[1:])}
    if len(steps) == 1:
        return True
    ratios = {round(b / a, 9) for a, b in zip(numbers, numbers[1:]) if a} if all(numbers[:-1]) else set()
    return len(ratios) == 1 or tuple(numbers) == _PRIMES[: len(numbers)]


def literals(text: str) -> set[str]:
    """The distinctive-looking literals of `text`, each tagged by kind (s: string, q: sequence, n: number)."""
    out = set()
    for m in _STRING.finditer(text):
        value = m.group(2).strip().lower()
        if len(value) >= 8 or (len(value) >= 3 and not value.isalpha()):
            out.add("s:" + value)
    for m in _SEQUENCE.finditer(text):
        parts = re.split(r"\s*,\s*", m.group(1))
        if not _everyday_sequence([float(x) for x in parts]):
            out.add("q:" + ",".join(_number(x) for x in parts))
    for m in _NUMBER.finditer(_STRING.sub(" ", text)):  # a number inside a quoted string is that string
        out.add("n:" + _number(m.group(0)))
    return out


def prose_words(texts: Iterable[str]) -> set[str]:
    """Words used outside quotes: a quoted single word among them is an everyday value."""
    return {w for t in texts for w in re.findall(r"[a-z]{8,}", _STRING.sub(" ", t.lower()))}


def drop_words(lits: set[str], words: set[str]) -> set[str]:
    return {lit for lit in lits if not (lit.startswith("s:") and lit[2:] in words)}


def strong(shared: Iterable[str]) -> bool:
    """Enough shared literals to call two texts one problem: two of them, or one sequence of 4+
    numbers. One example string alone can be a coincidence ("geeksforgeeks", a pangram)."""
    shared = list(shared)
    return len(shared) >= 2 or any(lit.startswith("q:") and lit.count(",") >= 3 for lit in shared)


def rare(literal_sets: Iterable[set[str]], max_count: int) -> set[str]:
    """The literals found in at most `max_count` of the sets."""
    counts = Counter(lit for lits in literal_sets for lit in lits)
    return {lit for lit, c in counts.items() if c <= max_count}
