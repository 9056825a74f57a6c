"""A content-addressed on-disk cache of teacher responses: a re-run or a resumed run never pays twice.

The key is `Request.cache_key(model)` (sha256 over model, API, prompt, every decoding setting and
the tag; never the API key). Each entry is one JSON file `ROOT/ab/cd/abcd....json` — a two-level
fan-out keeps folders small at millions of entries — holding the request (for auditing) and the
completion. Entries are written to a temporary sibling and `os.replace`d into place, so a killed
run leaves either the whole entry or none; an unreadable entry (torn by a foreign writer, edited by
hand) is logged and treated as a miss, then overwritten by the fresh answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from data_generation.common.io import write_text_atomic
from data_generation.teacher.base import Completion, Request

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ResponseCache:
    """One folder of cached completions, shared safely by concurrent writers (last write wins)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.corrupt = 0  # entries found unreadable this run

    def path(self, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"cache keys are lower-case hex digests, got {key!r}")
        return self.root / key[:2] / key[2:4] / f"{key}.json"

    def get(self, key: str, *, n: int | None = None) -> Completion | None:
        """The cached completion for `key` (with `n` choices if given), or None when absent or unreadable."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            entry = json.loads(raw)
            if entry.get("key") != key:
                raise ValueError(f"entry is for key {entry.get('key')!r}")
            completion = Completion.from_json(entry["completion"], cached=True)
            if n is not None and len(completion.choices) != n:
                raise ValueError(f"entry has {len(completion.choices)} choices, the request asks for {n}")
            return completion
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.corrupt += 1
            log.warning("cache entry %s is unreadable (%s): treated as a miss and re-requested", path, exc)
            return None

    def put(self, key: str, request: Request, completion: Completion, *, model: str) -> Path:
        """Write the entry atomically (temporary sibling + os.replace)."""
        entry: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "key": key,
            "model": model,
            "api": request.api,
            "messages": request.messages,
            "prompt": request.prompt,
            "decoding": asdict(request.decoding),
            "tag": request.tag,
            "completion": completion.to_json(),
        }
        path = self.path(key)
        write_text_atomic(path, json.dumps(entry, ensure_ascii=False))
        return path

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/??/*.json"))
