"""tree-sitter's verdict on a piece of code, and the shared parsers used from several threads."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from data_generation.common.treesitter import parse, syntax_error


def test_syntax_error_says_where():
    assert syntax_error("def f(x):\n    return x\n", "python") is None
    assert syntax_error("def broken(:\n    return (\n", "python").startswith("syntax error at line 1")
    assert "missing" in syntax_error("int f() { return 1 }", "c")
    with pytest.raises(ValueError, match="unknown language 'cobol'"):
        syntax_error("x", "cobol")


def test_parsing_from_many_threads_gives_each_its_own_tree():
    codes = [f"def f{i}(x):\n    return x + {i}\n".encode() for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        roots = list(pool.map(lambda code: parse(code, "python").root_node, codes))
    assert [root.text for root in roots] == codes and not any(root.has_error for root in roots)
