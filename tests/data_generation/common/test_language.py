import pytest

from data_generation.common.language import guess_language


@pytest.mark.parametrize(
    "instruction, output, expected",
    [
        ("Write a JavaScript function to sum an array", "", "javascript"),
        ("Write a Java method that reverses a string", "", "java"),
        ("Implement quicksort in C++", "", "cpp"),
        ("Write a C# class for a stack", "", "csharp"),
        ("Write a program in C to print primes", "", "c"),
        ("Write a function in Go that adds", "", "go"),
        ("Create a SQL query to find the top 3 salaries", "", "sql"),
        ("Write an R function for the mean", "", "r"),
        ("Write a function for the mean of R values", "", "unknown"),
        ("Compute the mean using R", "", "r"),
        ("Go to the store and buy milk", "", "unknown"),
        ("Reverse the list", "def rev(xs):\n    return xs[::-1]", "python"),
        ("Reverse the list", "function rev(xs) {\n  return xs.reverse();\n}", "javascript"),
        ("Count the rows", "SELECT COUNT(*) FROM users;", "sql"),
        ("Make a page", "<html><body>hi</body></html>", "html"),
        ("Print hello", '#include <iostream>\nint main() { std::cout << "hi"; }', "cpp"),
        ("Print hello", '#include <stdio.h>\nint main() { printf("hi"); }', "c"),
        ("Explain recursion", "Recursion is when a function calls itself.", "unknown"),
    ],
)
def test_guess_language(instruction, output, expected):
    assert guess_language(instruction, "", output) == expected


def test_every_tree_sitter_language_has_a_display_name_and_fence_tags():
    from data_generation.common.language import DISPLAY_NAMES, FENCE_TAGS
    from data_generation.common.treesitter import LANGUAGES

    assert set(DISPLAY_NAMES) == set(FENCE_TAGS) == set(LANGUAGES)
