"""Sentence embeddings for the semantic decontamination layer: WordLlama, offline, on CPU.

WordLlama (MIT, `pip install wordllama`) is a static embedding: token vectors distilled from an LLM's
embedding table, averaged. It embeds 50,000 short texts in about 3 s on two cores, where a
transformer encoder (all-MiniLM-L6-v2) takes minutes, and its wheel carries its weights, so nothing is
downloaded. It is the retrieval half of the layer: which benchmark tasks a record is nearest; the
evidence that a record *is* one of them comes from dataset/behaviour.py.

Identical texts are embedded once (keyed by content hash within a call); the benchmark side is
embedded once per merge.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MODEL = "wordllama/l2_supercat"
DIM = 256


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    try:
        import wordllama
    except ImportError as exc:  # the layer is on by default: say how to get it or turn it off
        raise RuntimeError(
            "the semantic decontamination layer needs wordllama (pip install -r requirements.txt); "
            "or pass --no-semantic"
        ) from exc
    # The wheel ships its weights and tokenizer config; looked up from the package folder, nothing is
    # fetched (the default cache_dir would look under ~/.cache first and download what it misses).
    return wordllama.WordLlama.load(
        config="l2_supercat", cache_dir=Path(wordllama.__file__).parent, dim=DIM, disable_download=True
    )


def version() -> str:
    return f"{MODEL}@{importlib.metadata.version('wordllama')} dim={DIM}"


def embed(texts: Sequence[str], batch_size: int = 512) -> np.ndarray:
    """Unit-norm float32 rows, one per text (zeros for a text with no known token)."""
    keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
    first: dict[bytes, int] = {}
    unique: list[str] = []
    for key, text in zip(keys, texts):
        if key not in first:
            first[key] = len(unique)
            unique.append(text)
    out = np.zeros((len(unique), DIM), dtype=np.float32)
    if unique:
        vecs = np.asarray(_model().embed(unique, norm=False, batch_size=batch_size), dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        np.divide(vecs, norms, out=out, where=norms > 0)
    return out[[first[k] for k in keys]] if texts else out
