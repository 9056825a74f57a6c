"""The top-level definitions of a model's Python answer: what an instruct-style answer runs as.

`keep_definitions` keeps the program's imports, functions, classes and constant assignments, without
the example calls, prints, asserts and `if __name__ == "__main__":` demos models append. It keeps
helper functions and imports (CodeCapybara kept only the first function and cut at the first blank
line, which drops helpers and imports and fails correct answers). Parsed with `ast`; code that does
not parse as a whole (prose between functions, a truncated last line) goes through tree-sitter,
whose error recovery still finds the intact top-level definitions, and each is checked with `ast`.
Benchmark modules build their programs from these pieces (`statements`, `is_kept`, `defined_names`).
"""

from __future__ import annotations

import ast
import builtins
import logging
import re
import textwrap

log = logging.getLogger(__name__)

# Lines where code plausibly starts after a prose preamble.
CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BUILTINS = frozenset(dir(builtins))
_TS_TOP = {
    "function_definition",
    "class_definition",
    "decorated_definition",
    "import_statement",
    "import_from_statement",
    "future_import_statement",
    "expression_statement",
    "try_statement",
}


def keep_definitions(code: str) -> str:
    """Imports, functions, classes and constants of `code`, in order; example calls and demos dropped.

    An assignment stays unless it calls a function the code defines (`print(f(3))` and `x = f(3)` run
    the solution on examples: slow at best, an exception or an `input()` hang at worst) or rebinds a
    builtin (a demo's `str = "hello"` would break every test that calls `str`).
    """
    found = statements(textwrap.dedent(code))
    defined = {
        node.name for _, node in found if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    kept = [text for text, node in found if is_kept(node, defined)]
    return "\n\n".join(kept)


def is_kept(node: ast.stmt, defined: set[str]) -> bool:
    """Whether a top-level statement belongs to the program (see `keep_definitions`); `defined`: the
    answer's own functions and classes."""
    if isinstance(node, _KEEP):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(n, ast.Name) and n.id in _BUILTINS for t in targets for n in ast.walk(t)):
            return False
        return not any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in defined for n in ast.walk(node)
        )
    if isinstance(node, ast.Try):  # `try: import numpy` / `except ImportError: ...`
        return all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in node.body)
    return False


def statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Top-level statements of `code` with their source text (decorators included)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        found = _tree_sitter_statements(code)
        return found if found else _prefix_statements(code)
    lines = code.split("\n")
    out = []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        out.append(("\n".join(lines[start - 1 : node.end_lineno]).rstrip(), node))
    return out


def _tree_sitter_statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Intact top-level statements found by tree-sitter's error-tolerant parse, each checked by `ast`."""
    try:
        from data_generation.common.treesitter import parse

        root = parse(code.encode("utf-8"), "python").root_node
    except (ImportError, RuntimeError) as exc:  # grammar wheel missing: fall back to plain ast
        log.debug("tree-sitter unavailable (%s); using the longest parsable prefix", exc)
        return []
    out = []
    for node in root.children:
        if node.type not in _TS_TOP or node.has_error:
            continue
        text = node.text.decode("utf-8")
        try:
            parsed = ast.parse(text).body
        except SyntaxError:
            continue
        if len(parsed) == 1:
            out.append((text.rstrip(), parsed[0]))
    return out if any(isinstance(node, _KEEP[2:]) for _, node in out) else []


def _prefix_statements(code: str) -> list[tuple[str, ast.stmt]]:
    """Last resort: the longest parsable prefix, starting at the top or at the first code-looking line."""
    lines = code.split("\n")
    starts = [0] + [i for i, line in enumerate(lines) if CODE_START.match(line)][:1]
    for start in dict.fromkeys(starts):
        chunk = lines[start:]
        while chunk:
            try:
                ast.parse("\n".join(chunk))
            except SyntaxError as exc:
                bad = exc.lineno or len(chunk)
                chunk = chunk[: min(bad - 1, len(chunk) - 1)]
                continue
            found = statements("\n".join(chunk))
            if any(isinstance(node, _KEEP) for _, node in found):
                return found
            break
    return []


def defined_names(code: str) -> set[str]:
    """Top-level function and class names `code` defines (empty when it does not parse)."""
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return set()
    return {n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
