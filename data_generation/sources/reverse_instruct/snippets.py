"""The functions of one source file, found with tree-sitter: `extract` turns a file's bytes into
`Snippet`s, each a top-level function or method with its doc comment or docstring.

Which node types are functions, classes and wrappers comes from the registry in
`data_generation.common.treesitter`; this module is the one traversal over it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

import tree_sitter as ts

from data_generation.common.treesitter import LANGUAGES, LangSpec, declarator_name, parse


@dataclass
class Snippet:
    """One harvested function; `body` holds its top-level statements for the triviality filter."""

    language: str
    name: str
    code: str
    path: str
    start_line: int  # 1-based, the first line of the leading comment if any
    end_line: int
    meta: dict[str, str] = field(default_factory=dict)
    has_error: bool = False
    body: tuple[str, ...] = ()


def _function_name(node: ts.Node, spec: LangSpec) -> tuple[str, str | None]:
    """(name, qualifying scope) — C++ `A::f` defined out of class yields ("f", "A")."""
    name = declarator_name(node) if spec.name_field == "declarator" else node.child_by_field_name("name")
    if name is None:
        return "", None
    if name.type == "qualified_identifier":
        scope, leaf = name.child_by_field_name("scope"), name.child_by_field_name("name")
        if scope is not None and leaf is not None:
            return leaf.text.decode(errors="replace"), scope.text.decode(errors="replace")
    return name.text.decode(errors="replace"), None


def _class_name(node: ts.Node) -> str | None:
    target = node.child_by_field_name("name") or node.child_by_field_name("type")
    return target.text.decode(errors="replace") if target is not None else None


def _receiver(node: ts.Node) -> str | None:
    """Go methods name their type in the receiver, e.g. `(s *Stack)` -> "Stack"."""
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    types = re.findall(r"[A-Za-z_]\w*", receiver.text.decode(errors="replace"))
    return types[-1] if types else None


def _start_of_docs(outer: ts.Node, spec: LangSpec, source: bytes) -> ts.Node:
    """The first node of the comment block that directly precedes the function (no blank line)."""
    first, prev = outer, outer.prev_named_sibling
    while prev is not None and ("comment" in prev.type or prev.type in spec.leading):
        line_start = source.rfind(b"\n", 0, prev.start_byte) + 1
        own_line = not source[line_start : prev.start_byte].strip()  # not a trailing `x = 1  # c`
        if not own_line or prev.end_point[0] < first.start_point[0] - 1:
            break
        first, prev = prev, prev.prev_named_sibling
    while first is not outer and "comment" not in first.type:  # attributes without docs stay out
        first = first.next_named_sibling
    return first


def _body_statements(node: ts.Node) -> tuple[str, ...]:
    body = node.child_by_field_name("body")
    if body is None:
        return ()
    if body.type in {"arrow_expression_clause", "expression_statement"} and body.named_child_count:
        return (body.named_children[-1].text.decode(errors="replace"),)
    return tuple(c.text.decode(errors="replace") for c in body.named_children if "comment" not in c.type)


def _snippet(node: ts.Node, spec: LangSpec, language: str, source: bytes, path: str, classes: list[str]) -> Snippet:
    outer = node
    while outer.parent is not None and outer.parent.type in spec.wrappers:
        outer = outer.parent
    first = _start_of_docs(outer, spec, source)
    line_start = source.rfind(b"\n", 0, first.start_byte) + 1
    code = textwrap.dedent(source[line_start : outer.end_byte].decode("utf-8", errors="replace"))
    name, scope = _function_name(node, spec)
    meta = {"node_type": node.type}
    owner = scope or _receiver(node) or (classes[-1] if classes else None)
    if owner:
        meta["class"] = owner
    return Snippet(
        language,
        name,
        code,
        path,
        first.start_point[0] + 1,
        outer.end_point[0] + 1,
        meta,
        outer.has_error,
        _body_statements(node),
    )


def extract(source: bytes, language: str, path: str = "") -> list[Snippet]:
    """Every top-level function and method in `source`; nested functions stay inside their parent."""
    spec = LANGUAGES[language]
    tree = parse(source, language)
    found: list[Snippet] = []
    stack: list[tuple[ts.Node, list[str]]] = [(tree.root_node, [])]
    while stack:
        node, classes = stack.pop()
        if node.type in spec.functions:
            found.append(_snippet(node, spec, language, source, path, classes))
            continue
        if node.type in spec.classes:
            classes = classes + [_class_name(node) or "?"]
        stack.extend((child, classes) for child in reversed(node.children))
    return found
