"""How a CodeContests problem becomes an instruction: the templates file
(`prompts/codecontests_templates.txt`), which template a (problem, language) gets, the example tests
block and the note for problems that read or write named files.
"""

from __future__ import annotations

import hashlib
import string
from pathlib import Path
from typing import Sequence

from data_generation.common.io import DataError
from data_generation.common.paths import PROMPTS_DIR
from data_generation.sources.codecontests.problems import LANGUAGES, Problem

TEMPLATES_PATH = PROMPTS_DIR / "codecontests_templates.txt"


def load_templates(path: str | Path = TEMPLATES_PATH) -> list[str]:
    """Read the instruction templates; a template that could mislabel or crash stops the run."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read templates: {exc}") from None
    templates: list[str] = []
    block: list[str] = []
    start = 1
    for lineno, line in enumerate([*text.splitlines(), "---"], start=1):
        if line.strip() == "---":
            template = "\n".join(block).strip()
            if template:
                _check_template(path, start, template)
                templates.append(template)
            block = []
        elif not line.startswith("#"):
            start = start if block else lineno  # report errors at the block's first line
            block.append(line)
    if not templates:
        raise DataError(path, None, "no templates found")
    return templates


def _check_template(path: Path, lineno: int, template: str) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:  # stray "{" or "}"
        raise DataError(path, lineno, f"bad template: {exc}") from None
    if fields != {"language", "description"}:
        raise DataError(
            path, lineno, f"template placeholders are {sorted(fields)}; need exactly {{language}} and {{description}}"
        )
    named = [lang.display for lang in LANGUAGES.values() if lang.display.split()[0].lower() in template.lower()]
    if named:
        raise DataError(path, lineno, f"template names a language itself ({named[0]}); use {{language}}")


def template_index(problem_name: str, language_key: str, count: int) -> int:
    """Stable choice of template per (problem, language): sha256, not hash(), which is salted per process."""
    digest = hashlib.sha256(f"{problem_name}\0{language_key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def format_tests(tests: Sequence[tuple[str, str]]) -> str:
    """Public sample tests as labelled blocks; numbered only when there is more than one."""
    blocks = []
    for n, (test_in, test_out) in enumerate(tests, start=1):
        label = f" {n}" if len(tests) > 1 else ""
        blocks.append(f"Example input{label}:\n{test_in.rstrip()}\n\nExample output{label}:\n{test_out.rstrip()}")
    return "\n\n".join(blocks)


def io_note(problem: Problem) -> str:
    """What the instruction must add when the problem reads or writes named files."""
    # A few problems read and write named files instead of stdin/stdout, and their solutions do so;
    # an instruction that did not say so would not match its answer.
    parts = [
        f"read the input from the file {problem.input_file}" if problem.input_file else "",
        f"write the output to the file {problem.output_file}" if problem.output_file else "",
    ]
    parts = [p for p in parts if p]
    return f"\n\nYour program must {' and '.join(parts)}." if parts else ""
