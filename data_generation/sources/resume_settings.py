"""A resume continues the run it finds, so it must make records the way that run did.

The manifest beside a resumable source's output holds the `config` of the run that wrote it. Before a
re-run reads or repairs anything, `check_resume_settings` compares it with the new run's config: a
setting that shapes the records (the teacher model, the prompts' text, the seed, the corpus, the
filters) must be the same, or the run stops with exit 2 naming each one that changed and touches
nothing. Settings that only extend or pace the work (a larger `--limit` or `--num-instructions`, the
check workers) are each source's `resume_may_change`: the resume then carries on where the run stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from data_generation.common.io import DataError
from data_generation.common.prompts import load_template
from data_generation.sources.base import ResumableSource

log = logging.getLogger(__name__)


def templates_sha256(names: Iterable[str]) -> str:
    """One digest over the named prompt templates (name and text): an edited prompt changes it."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode("utf-8") + b"\0" + load_template(name).encode("utf-8") + b"\0")
    return h.hexdigest()


def settings_changes(recorded: dict[str, Any], current: dict[str, Any], may_change: frozenset[str]) -> list[str]:
    """`name: X then, Y now` for each setting of `current` that differs from `recorded` and is not in
    `may_change`; nested settings are named with dots (`teacher.model`). A setting the recorded config
    lacks (a manifest written before it existed) cannot be compared and is passed over."""
    changes = []
    for key, now in current.items():
        if key in may_change or key not in recorded:
            continue
        then = recorded[key]
        if isinstance(now, dict) and isinstance(then, dict):
            allowed = frozenset(k.split(".", 1)[1] for k in may_change if k.startswith(f"{key}."))
            changes += [f"{key}.{change}" for change in settings_changes(then, now, allowed)]
        elif then != now:
            changes.append(f"{key}: {json.dumps(then)} then, {json.dumps(now)} now")
    return changes


def _started(source: ResumableSource, output: Path) -> bool:
    """Whether a run left work in the output or its side files (an empty journal made nothing yet)."""
    return any(path.is_file() and path.stat().st_size > 0 for path in (output, *source.side_files()))


def check_resume_settings(source: ResumableSource, output: Path) -> None:
    """Refuse (DataError, exit 2) to resume the run in `output` with settings that would make other
    records; a fresh output, or one whose manifest is gone (nothing to compare), goes ahead."""
    if not _started(source, output):
        return
    manifest_path = Path(f"{output}.manifest.json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning("%s: no manifest beside the output, so the settings of its run cannot be checked", output)
        return
    except ValueError as exc:
        raise DataError(manifest_path, None, f"unreadable manifest ({exc}): fix or move it") from None
    if manifest.get("source") != source.name:
        raise DataError(output, None, f"holds a {manifest.get('source')} run, not {source.name}; choose a new --output")
    current = json.loads(json.dumps(source.config()))  # as the manifest stores it (tuples become lists)
    changes = settings_changes(manifest.get("config") or {}, current, source.resume_may_change)
    if changes:
        raise DataError(
            output,
            None,
            f"cannot resume: the run in it was made with other settings ({'; '.join(changes)}). Resume with "
            f"the run's settings (see {manifest_path.name}) or choose a new --output; nothing was changed",
        )
