"""Function harvesting throughput over the running interpreter's whole standard library.

    python -m scripts.bench.bench_harvest [--root DIR] [--repeat 3] [--segment-files 100]
        [--out data/out/bench/harvest.json]

Three extractors run on the same files (`harvest.iter_source_files` over the stdlib: site-packages,
hidden and build folders skipped) in the same process, best of `--repeat` runs each, after one
read of every file so the page cache is warm for all of them:

- anchor: Python's own `ast` (`ast.parse`, every FunctionDef/AsyncFunctionDef from `ast.walk`,
  the text that `ast.get_source_segment` returns for it), the way CodeSearchNet-style pipelines
  extract Python; it finds nested functions too (counted separately below the table);
- tree-sitter `extract` alone (top-level functions and methods with their doc comments);
- `harvest_paths`: extract plus every filter, dedup and the per-language counts, as the
  reverse-instruction step runs it.

functions/s is functions *found* per CPU second (the process is single-threaded; wall seconds
are printed too); the ratio is against the anchor's functions/s.

`ast.get_source_segment` itself re-splits the whole file, character by character in Python, on
every call (CPython 3.11), which makes it quadratic in a file's function count: the anchor cuts
the same text from one split per file (the helper below, same newline rules), and the run checks
on the first `--segment-files` files that every segment equals `get_source_segment`'s, timing
both there, so the table is not a race against that one slow helper.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from data_generation.common.io import atomic_path
from data_generation.common.provenance import package_versions
from data_generation.sources.reverse_instruct.harvest import HarvestStats, harvest_paths, iter_source_files
from data_generation.sources.reverse_instruct.snippets import extract

FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|\Z)")  # ast's own newline rules (not \f, \v)


def source_segment(lines: list[str], node: ast.AST) -> str:
    """What `ast.get_source_segment(source, node)` returns, from lines split once per file."""
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return "".join([head, *lines[first + 1 : last], tail])


def _parse(path: Path) -> tuple[str, ast.AST] | None:
    try:
        source = path.read_bytes().decode("utf-8")
        return source, ast.parse(source, filename=str(path))
    except (UnicodeDecodeError, SyntaxError, ValueError):
        return None  # lib2to3/test data in Python 2 syntax, non-UTF-8 test files


def ast_anchor(files: list[Path], use_get_source_segment: bool = False) -> dict:
    """Every function's source text via the standard library's ast; unparsable files are counted."""
    found, failed, segments = 0, 0, []
    for path in files:
        parsed = _parse(path)
        if parsed is None:
            failed += 1
            continue
        source, tree = parsed
        lines = None if use_get_source_segment else [x for x in _LINE.findall(source) if x]
        for node in ast.walk(tree):
            if isinstance(node, FUNCTION_NODES):
                segments.append(ast.get_source_segment(source, node) if lines is None else source_segment(lines, node))
                found += 1
    return {"found": found, "unparsed_files": failed, "segments": segments}


def tree_sitter_extract(files: list[Path]) -> dict[str, int]:
    return {"found": sum(len(extract(p.read_bytes(), "python", str(p))) for p in files)}


def harvest(root: Path) -> dict[str, int]:
    stats = HarvestStats()
    kept = sum(1 for _ in harvest_paths([root], languages=["python"], stats=stats))
    return {
        "found": stats.found["python"],
        "kept": kept,
        "files": stats.files["python"],
        "rejected": dict(stats.rejected["python"]),
        "skipped_files": dict(stats.skipped_files),
    }


def nested_functions(files: list[Path]) -> int:
    """Functions defined inside another function: the anchor counts them, our harvester keeps
    them inside their parent's snippet (untimed)."""
    nested = 0
    for path in files:
        try:
            tree = ast.parse(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, FUNCTION_NODES):
                nested += sum(isinstance(n, FUNCTION_NODES) for n in ast.walk(node)) - 1
    return nested


def best_of(repeat: int, fn: Callable[[], dict]) -> dict:
    """The run with the least CPU time; wall time is kept too. The CPU time of this one-thread
    process is the steadier figure on a box shared with other jobs (wall = CPU on a quiet one)."""
    best: dict | None = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        result["seconds"], result["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
        if best is None or result["cpu_seconds"] < best["cpu_seconds"]:
            best = result
    assert best is not None
    return best


def segment_check(files: list[Path]) -> dict:
    """`ast.get_source_segment` as written vs the anchor's one split per file, on the same files."""
    literal = best_of(1, lambda: ast_anchor(files, use_get_source_segment=True))
    sliced = best_of(1, lambda: ast_anchor(files))
    assert literal["segments"] == sliced["segments"], "anchor segments differ from get_source_segment"
    return {
        "files": len(files),
        "functions": literal["found"],
        "get_source_segment_cpu_s": literal["cpu_seconds"],
        "sliced_cpu_s": sliced["cpu_seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=sysconfig.get_paths()["stdlib"], help="default: this Python's stdlib")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--segment-files", type=int, default=100, help="files for the get_source_segment check")
    ap.add_argument("--out", default="data/out/bench/harvest.json")
    args = ap.parse_args()
    root = Path(args.root)
    files = [p for p, _ in iter_source_files([root], {"python"})]
    for p in files:  # warm the page cache so no extractor pays the disk
        p.read_bytes()
    runs = {
        "anchor": best_of(args.repeat, lambda: ast_anchor(files)),
        "extract": best_of(args.repeat, lambda: tree_sitter_extract(files)),
        "harvest": best_of(args.repeat, lambda: harvest(root)),
    }
    runs["anchor"].pop("segments")
    check = segment_check(files[: args.segment_files])
    _report(root, len(files), runs, nested_functions(files), check, args.repeat)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "root": str(root),
        "files": len(files),
        "repeat": args.repeat,
        **runs,
        "segment_check": check,
        "versions": package_versions(("tree-sitter", "tree-sitter-python")),
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _report(root: Path, files: int, runs: dict[str, dict], nested: int, check: dict, repeat: int) -> None:
    anchor_rate = runs["anchor"]["found"] / runs["anchor"]["cpu_seconds"]
    labels = {
        "anchor": "`ast.parse` + `ast.walk`, `get_source_segment` text (anchor)",
        "extract": "tree-sitter `extract` only",
        "harvest": "`harvest_paths` (extract + filters + dedup)",
    }
    print(f"Python {platform.python_version()}, {root}, best of {repeat}; functions/s = found / CPU s\n")
    print("| extractor | files | functions found | kept | CPU s | wall s | functions/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in runs.items():
        rate = r["found"] / r["cpu_seconds"]
        kept = f"{r['kept']:,}" if "kept" in r else "-"
        print(
            f"| {labels[name]} | {files:,} | {r['found']:,} | {kept} | {r['cpu_seconds']:.2f} | "
            f"{r['seconds']:.2f} | {rate:,.0f} | {rate / anchor_rate:.2f}x |"
        )
    print(
        f"\nanchor: {runs['anchor']['unparsed_files']} files ast cannot parse; {nested:,} of its functions "
        "are nested in another function (tree-sitter keeps those inside their parent's snippet)"
    )
    print(
        f"get_source_segment as written, first {check['files']} files ({check['functions']:,} functions, "
        f"every segment equal to the anchor's): {check['get_source_segment_cpu_s']:.2f} CPU s vs "
        f"{check['sliced_cpu_s']:.2f} CPU s with one split per file"
    )


if __name__ == "__main__":
    main()
