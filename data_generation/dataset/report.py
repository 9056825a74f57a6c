"""The merge report: a short markdown page in the seeds' "Data source | No. samples" layout."""

from __future__ import annotations

from pathlib import Path


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_report(manifest: dict) -> str:
    c = manifest["counts"]
    per_source = manifest["per_source"]
    lines = [
        "# Merged dataset",
        "",
        f"Config fingerprint `{manifest['config_fingerprint'][:16]}`; "
        f"splits: " + ", ".join(f"{k} {v}" for k, v in c["splits"].items()) + ".",
        "",
    ]
    rows = [(s, v["kept"]) for s, v in per_source.items()]
    lines += _table(("Data source", "No. samples"), rows + [("**Total**", f"**{c['kept']}**")])
    inputs = manifest.get("inputs") or []
    if inputs:
        lines += ["", "## Inputs", ""]
        lines += _table(
            ("Input", "Rows", "Note"),
            [(f"`{i['path']}`", i["rows"], "empty: nothing merged from it" if i["rows"] == 0 else "") for i in inputs],
        )
    lines += ["", "## Where every input row went", ""]
    reasons = sorted(c["dropped"])
    rows = [(s, v["input"], v["kept"], *(v["dropped"].get(r, 0) for r in reasons)) for s, v in per_source.items()]
    rows.append(("**Total**", c["input"], c["kept"], *(c["dropped"][r] for r in reasons)))
    lines += _table(("Source", "Input", "Kept", *reasons), rows)
    tasks = manifest.get("contaminated_tasks") or {}
    lines += ["", "## Benchmark overlap removed", ""]
    if tasks:
        rows = [
            (bench, sum(t.values()), len(t), ", ".join(list(t)[:8]) + (" ..." if len(t) > 8 else ""))
            for bench, t in tasks.items()
        ]
        lines += _table(("Benchmark", "Records removed", "Tasks matched", "Tasks"), rows)
    else:
        lines.append("None found." if manifest["config"]["decontaminate"] else "Decontamination was off.")
    lines += ["", "## Languages kept", ""]
    lines += _table(("Language", "No. samples"), list(manifest["per_language"].items()))
    return "\n".join(lines) + "\n"


def write_report(manifest: dict, path: str | Path) -> None:
    Path(path).write_text(render_report(manifest), encoding="utf-8")
