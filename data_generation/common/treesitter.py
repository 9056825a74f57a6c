"""Tree-sitter for the ten languages the sources harvest and check: the per-language registry,
thread-safe parsing, and tree-sitter's verdict on a piece of code.

Each registry entry says which grammar wheel to load and which syntax-tree node types are functions,
wrappers (decorators, `export`, `template<>`) and enclosing classes. Keeping this data apart from
the traversal (`sources.reverse_instruct.harvest`) means adding a language is one table row, not new
code. The parsers are cached, one per language, and shared: `parse` serialises their use, so the
program checks' threads (and anything else) can parse at the same time.
"""

from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass

import tree_sitter as ts


@dataclass(frozen=True)
class LangSpec:
    """How to find functions in one language's syntax tree."""

    module: str  # the official grammar wheel, e.g. "tree_sitter_python"
    loader: str  # its language function ("language", or "language_php")
    functions: frozenset[str]  # node types that are a function or method
    classes: frozenset[str] = frozenset()  # enclosing node types whose name goes into meta["class"]
    wrappers: frozenset[str] = frozenset()  # parents that belong to the function's source
    name_field: str = "name"  # field holding the name (C/C++ use the declarator chain)
    leading: frozenset[str] = frozenset()  # non-comment siblings allowed between doc comment and function


LANGUAGES: dict[str, LangSpec] = {
    "python": LangSpec(
        "tree_sitter_python",
        "language",
        frozenset({"function_definition"}),
        frozenset({"class_definition"}),
        frozenset({"decorated_definition"}),
    ),
    "javascript": LangSpec(
        "tree_sitter_javascript",
        "language",
        frozenset({"function_declaration", "generator_function_declaration", "method_definition"}),
        frozenset({"class_declaration", "class"}),
        frozenset({"export_statement"}),
    ),
    "java": LangSpec(
        "tree_sitter_java",
        "language",
        frozenset({"method_declaration", "constructor_declaration"}),
        frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
    ),
    "go": LangSpec("tree_sitter_go", "language", frozenset({"function_declaration", "method_declaration"})),
    "ruby": LangSpec(
        "tree_sitter_ruby", "language", frozenset({"method", "singleton_method"}), frozenset({"class", "module"})
    ),
    "rust": LangSpec(
        "tree_sitter_rust",
        "language",
        frozenset({"function_item"}),
        frozenset({"impl_item", "trait_item"}),
        leading=frozenset({"attribute_item"}),
    ),
    "php": LangSpec(
        "tree_sitter_php",
        "language_php",
        frozenset({"function_definition", "method_declaration"}),
        frozenset({"class_declaration", "trait_declaration", "interface_declaration"}),
    ),
    "c": LangSpec("tree_sitter_c", "language", frozenset({"function_definition"}), name_field="declarator"),
    "cpp": LangSpec(
        "tree_sitter_cpp",
        "language",
        frozenset({"function_definition"}),
        frozenset({"class_specifier", "struct_specifier"}),
        frozenset({"template_declaration"}),
        name_field="declarator",
    ),
    "csharp": LangSpec(
        "tree_sitter_c_sharp",
        "language",
        frozenset({"method_declaration", "constructor_declaration", "local_function_statement"}),
        frozenset({"class_declaration", "struct_declaration", "interface_declaration", "record_declaration"}),
    ),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".java": "java",
    ".go": "go",
    ".rb": "ruby",
    ".rs": "rust",
    ".php": "php",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".cs": "csharp",
}


_PARSE_LOCK = threading.Lock()  # parser_for() hands out one shared Parser per language


@functools.lru_cache(maxsize=None)
def parser_for(language: str) -> ts.Parser:
    """A cached parser; a missing wheel names the package to install."""
    try:
        spec = LANGUAGES[language]
    except KeyError:
        raise ValueError(f"unknown language {language!r}; choose from {sorted(LANGUAGES)}") from None
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        wheel = spec.module.replace("_", "-")
        raise RuntimeError(f"grammar for {language} missing: pip install {wheel}") from exc
    return ts.Parser(ts.Language(getattr(module, spec.loader)()))


def declarator_name(node: ts.Node) -> ts.Node | None:
    """The name node of a C/C++ function: follow pointer/reference declarators to the function one."""
    current: ts.Node | None = node.child_by_field_name("declarator")
    while current is not None and current.type != "function_declarator":
        inner = current.child_by_field_name("declarator")
        current = inner if inner is not None else (current.named_children[-1] if current.named_children else None)
    return current.child_by_field_name("declarator") if current is not None else None


def parse(source: bytes, language: str) -> ts.Tree:
    """`source` parsed with the language's shared parser, safe to call from several threads (the tree
    it returns is the caller's own)."""
    with _PARSE_LOCK:
        return parser_for(language).parse(source)


def first_error(root: ts.Node) -> ts.Node | None:
    """The first ERROR or MISSING node under `root`, in document order (None when there is none)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return None


def describe_error(node: ts.Node | None) -> str:
    """Where and what a syntax error is, for a reject's detail."""
    if node is None:
        return "syntax error"
    line, column = node.start_point[0] + 1, node.start_point[1] + 1
    if node.is_missing:
        return f"missing {node.type!r} at line {line}, column {column}"
    text = node.text.decode(errors="replace")[:60] if node.text else ""
    return f"syntax error at line {line}, column {column}: {text!r}"


def syntax_error(code: str, language: str) -> str | None:
    """tree-sitter's verdict alone: None when `code` parses without an ERROR or MISSING node, else
    where it fails (for code that is not a whole program with a known function, e.g. an answer)."""
    root = parse(code.encode("utf-8", errors="replace"), language).root_node
    return describe_error(first_error(root)) if root.has_error else None
