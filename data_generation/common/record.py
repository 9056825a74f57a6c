"""The one record type every source emits, and the checks that guard it.

A record is an Alpaca triple (`instruction`, `input`, `output`) plus provenance:
`source` (which adapter made it), `id` (a stable content hash), `language`
(programming language of the answer, lower-case, "unknown" when not known) and
`meta` (source-specific details that later steps may use, e.g. public tests).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

ALPACA_FIELDS = ("instruction", "input", "output")
PROVENANCE_FIELDS = ("source", "id", "language", "meta")


def content_id(instruction: str, input: str, output: str) -> str:
    """Stable id: sha256 over the three fields, unambiguously framed, first 16 hex digits.

    JSON framing (rather than plain concatenation) keeps ("ab", "c") and ("a", "bc") apart.
    """
    framed = json.dumps([instruction, input, output], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(framed.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Record:
    instruction: str
    input: str
    output: str
    source: str
    language: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        # The id is derived, never trusted from outside: recompute it so it always
        # matches the content (frozen dataclass, hence object.__setattr__).
        object.__setattr__(self, "id", content_id(self.instruction, self.input, self.output))

    def to_alpaca(self) -> dict[str, str]:
        """The seeds' published form: exactly instruction, input, output."""
        return {"instruction": self.instruction, "input": self.input, "output": self.output}

    def to_dict(self) -> dict[str, Any]:
        """Full form with provenance (JSONL and HF dataset rows)."""
        row = asdict(self)
        return {k: row[k] for k in (*ALPACA_FIELDS, *PROVENANCE_FIELDS)}

    def replace(self, **changes: Any) -> "Record":
        fields = {k: v for k, v in self.to_dict().items() if k != "id"}
        fields.update(changes)
        return Record(**fields)


class RowError(ValueError):
    """A single row is unusable; `reason` is a short machine-readable drop reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _text_field(row: Mapping[str, Any], name: str, *, required: bool) -> str:
    value = row.get(name)
    if value is None:
        if required:
            raise RowError(f"missing_{name}")
        return ""
    if not isinstance(value, str):
        raise RowError(f"bad_type_{name}", f"{name} is {type(value).__name__}, expected str")
    if required and not value.strip():
        raise RowError(f"empty_{name}")
    return value


def record_from_row(row: Any, *, default_source: str, default_language: str = "unknown") -> Record:
    """Validate one mapping (Alpaca or full form) and turn it into a Record.

    Raises RowError with a drop reason when the row cannot be used.
    """
    if not isinstance(row, Mapping):
        raise RowError("not_an_object", f"row is {type(row).__name__}")
    instruction = _text_field(row, "instruction", required=True)
    input_ = _text_field(row, "input", required=False)
    output = _text_field(row, "output", required=True)
    meta = row.get("meta") or {}
    if isinstance(meta, str):  # parquet/HF rows store meta as a JSON string
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as exc:
            raise RowError("bad_meta", str(exc)) from exc
    if not isinstance(meta, dict):
        raise RowError("bad_type_meta", f"meta is {type(meta).__name__}, expected object")
    return Record(
        instruction=instruction,
        input=input_,
        output=output,
        source=str(row.get("source") or default_source),
        language=str(row.get("language") or default_language),
        meta=meta,
    )
