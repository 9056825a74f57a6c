"""Pure text functions shared by merge, dedup and decontamination.

Two different normalisations on purpose:
- `normalise_whitespace` rewrites a field that is *kept*: it must not change code meaning, so it
  keeps indentation and inner spacing and only fixes line endings, trailing spaces, invisible
  characters and blank lines at the ends.
- `dedup_key` / `words` are only for *comparison*: case, all whitespace and punctuation are folded.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None) | {0xA0: " ", 0x202F: " "}
_TRAILING_WS = re.compile(r"[ \t]+$", re.M)
_ANY_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_NON_ALNUM = re.compile(r"[\W_]+")


def normalise_whitespace(text: str) -> str:
    """CRLF/CR -> LF, drop zero-width chars, strip trailing spaces per line and blank lines at both ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = _TRAILING_WS.sub("", text)
    return text.strip("\n")


def dedup_key(*fields: str) -> bytes:
    """Exact-duplicate key: case-folded, all whitespace runs collapsed, fields kept apart."""
    folded = "\x1f".join(_ANY_WS.sub(" ", f).strip().casefold() for f in fields)
    return hashlib.blake2b(folded.encode("utf-8"), digest_size=16).digest()


def words(text: str) -> list[str]:
    """Lower-cased word tokens (\\w+): the unit of shingles and of contamination n-grams."""
    return _WORD.findall(text.lower())


def phrase(text: str) -> str:
    """Text as a space-padded run of lower-case alphanumeric words, for word-bounded substring search."""
    return f" {_NON_ALNUM.sub(' ', text.lower()).strip()} "


class Vocab:
    """Maps word tokens to dense integer ids so n-gram hashing can run in numpy."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def encode(self, text: str) -> np.ndarray:
        ids = self._ids
        return np.fromiter((ids.setdefault(w, len(ids) + 1) for w in words(text)), dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._ids)


_MUL = np.uint64(0x9E3779B97F4A7C15)


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all 64 bits (uint64 arithmetic wraps)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def ngram_hashes(ids: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash every n-token window that stays inside one document of a concatenated id array.

    `ids` holds all documents back to back, document d spanning offsets[d]:offsets[d+1].
    Returns (hashes, start positions) of the valid windows, in position order.
    """
    total = len(ids)
    if total < n:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    width = total - n + 1
    h = np.zeros(width, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _MUL + ids[j : j + width]
        h = mix64(h)
    starts = np.arange(width, dtype=np.int64)
    doc = np.searchsorted(offsets, starts, side="right") - 1
    valid = starts + n <= offsets[doc + 1]
    return h[valid], starts[valid]
