"""Facts about programming languages that every source shares: how to name the ten languages the
LLM-driven sources write and check (`DISPLAY_NAMES`, `FENCE_TAGS`), and guessing the language of an
instruction/answer pair that carries no language field (`guess_language`).

CodeAlpaca rows have no language column. The instruction usually names it ("in Python",
"a SQL query"); otherwise the answer's syntax gives it away. Order matters: the first rule
that fires wins, so the more specific names (JavaScript before Java, C++ before C) come first.
"""

from __future__ import annotations

import re

# The ten languages with a tree-sitter grammar (`treesitter.LANGUAGES`), as a prompt names them.
DISPLAY_NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "java": "Java",
    "go": "Go",
    "ruby": "Ruby",
    "rust": "Rust",
    "php": "PHP",
    "c": "C",
    "cpp": "C++",
    "csharp": "C#",
}
# Info strings a model may put on a code fence, per language; the first is the one we ask for.
FENCE_TAGS = {
    "python": ("python", "py", "python3"),
    "javascript": ("javascript", "js", "node", "mjs", "jsx"),
    "java": ("java",),
    "go": ("go", "golang"),
    "ruby": ("ruby", "rb"),
    "rust": ("rust", "rs"),
    "php": ("php",),
    "c": ("c", "h"),
    "cpp": ("cpp", "c++", "cc", "cxx", "hpp"),
    "csharp": ("csharp", "cs", "c#"),
}

# (language, pattern over the instruction+input, flags). Single-letter and common-word names
# (C, R, Go) are matched case-sensitively and only in "in X"/"X program"-like contexts.
_MENTIONS: list[tuple[str, str, int]] = [
    ("typescript", r"\btypescript\b", re.I),
    ("javascript", r"\b(javascript|node\.?js|jquery|react(\.js)?|js)\b", re.I),
    ("java", r"\bjava\b", re.I),
    ("cpp", r"(\bc\+\+|\bcpp\b)", re.I),
    ("csharp", r"(\bc#|\bc sharp\b|\bcsharp\b|\.net\b)", re.I),
    ("python", r"\bpython\d?\b|\bpandas\b|\bnumpy\b|\bdjango\b|\bflask\b", re.I),
    ("sql", r"\b(sql|mysql|postgresql|sqlite)\b", re.I),
    ("html", r"\bhtml5?\b", re.I),
    ("css", r"\bcss3?\b", re.I),
    ("php", r"\bphp\b", re.I),
    ("ruby", r"\bruby\b|\brails\b", re.I),
    ("rust", r"\brust\b", re.I),
    ("go", r"\bgolang\b|\b(in|using|a) Go\b|\bGo (program|function|code)\b", 0),
    ("swift", r"\bswift\b", re.I),
    ("kotlin", r"\bkotlin\b", re.I),
    ("scala", r"\bscala\b", re.I),
    ("r", r"\b(in|using) R\b|\bR (program|function|code|script)\b", 0),
    ("bash", r"\b(bash|shell script|shell command|linux command)\b", re.I),
    ("c", r"\b(in|using|a) C\b(?![+#])|\bC (program|function|code)\b", 0),
    ("matlab", r"\bmatlab\b", re.I),
    ("perl", r"\bperl\b", re.I),
]

_SYNTAX: list[tuple[str, str]] = [
    ("php", r"<\?php"),
    ("html", r"<(!DOCTYPE|html|div|body|table|form|p|h1|ul|span)\b"),
    ("cpp", r"#include\s*<(iostream|vector|string|bits/|algorithm|map)|\bstd::|\bcout\s*<<"),
    ("c", r"#include\s*<(stdio|stdlib|string)\.h>|\bprintf\s*\("),
    ("java", r"\bpublic\s+(static\s+)?(void|class|int|String)\b|System\.out\.print"),
    ("csharp", r"\bConsole\.Write(Line)?\b|\busing System;"),
    ("rust", r"\bfn\s+\w+\s*\(|\blet\s+mut\b|println!"),
    ("go", r"^package\s+main\b|\bfunc\s+\w+\s*\(|fmt\.Print"),
    ("javascript", r"\bconsole\.log\b|\bfunction\s*\w*\s*\(|=>\s*\{|\b(const|let|var)\s+\w+\s*="),
    ("sql", r"\b(SELECT\s+.+\s+FROM|INSERT\s+INTO|CREATE\s+TABLE|UPDATE\s+\w+\s+SET)\b"),
    ("python", r"^\s*(def|class)\s+\w+.*:\s*$|^\s*import\s+\w+|\bprint\(|^\s*for\s+\w+\s+in\s+.+:\s*$"),
    ("css", r"^\s*[.#]?[\w-]+\s*\{[^}]*:\s*[^}]*;"),
    ("bash", r"^#!/bin/(ba)?sh|^\s*(echo|grep|ls|cd|chmod|sudo)\s"),
]

_MENTION_RE = [(lang, re.compile(pat, flags)) for lang, pat, flags in _MENTIONS]
_SYNTAX_RE = [(lang, re.compile(pat, re.M)) for lang, pat in _SYNTAX]


def guess_language(instruction: str, input: str = "", output: str = "") -> str:
    """Lower-case language name, or "unknown" when neither a mention nor the syntax decides."""
    prompt = f"{instruction}\n{input}"
    for lang, rx in _MENTION_RE:
        if rx.search(prompt):
            return lang
    for lang, rx in _SYNTAX_RE:
        if rx.search(output):
            return lang
    return "unknown"
