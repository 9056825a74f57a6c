"""The machine's own sources as a corpus of functions: `default_corpus` finds source trees already on
this machine (the interpreter's standard library first, then what each toolchain found on PATH says
it ships); `harvest_corpus` harvests them, JDK `src.zip` archives included, with one dedup across all.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sysconfig
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from data_generation.common.treesitter import EXTENSIONS, LANGUAGES
from data_generation.sources.reverse_instruct.harvest import (
    MAX_FILE_BYTES,
    SKIP_DIRS,
    Deduper,
    FilterConfig,
    HarvestStats,
    check_languages,
    harvest_paths,
    harvest_source,
)
from data_generation.sources.reverse_instruct.snippets import Snippet

log = logging.getLogger(__name__)

NODE_DIRS = ("/usr/lib/node_modules", "/usr/local/lib/node_modules", "/usr/share/nodejs")
HEADER_DIRS = ("/usr/include", "/usr/local/include", "/usr/src")
FIRST_ONLY = {"java"}  # two JDKs hold mostly the same classes: $JAVA_HOME, the one on PATH, else any
# what to install when a language has nothing on this machine (shown by describe_corpus)
HINTS = {
    "go": "install Go (its GOROOT/src ships the standard library)",
    "rust": "rustup component add rust-src, or `cargo fetch` a project (~/.cargo/registry/src)",
    "ruby": "install ruby (RbConfig rubylibdir)",
    "php": "apt-get install php-pear or another php-* library (/usr/share/php)",
    "javascript": "npm install -g some packages (/usr/lib/node_modules)",
    "java": "install a JDK with its src.zip (Debian: openjdk-17-source)",
    "c": "apt-get install libc6-dev (/usr/include)",
    "cpp": "install headers with .hpp/.cc files, or point at a C++ tree",
    "csharp": "no C# sources are found in standard places; point the harvest at a C# tree",
}


def _tool(*cmd: str) -> str | None:
    """A toolchain's answer about itself (GOROOT, sysroot), or None when the tool is absent or fails."""
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s failed: %s", cmd, exc)
        return None
    return out.stdout.strip() or None


def _java_homes() -> list[Path]:
    homes = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    for exe in ("javac", "java"):  # /usr/bin/java -> /usr/lib/jvm/X/bin/java: X is the home
        found = shutil.which(exe)
        if found:
            homes.append(Path(os.path.realpath(found)).parents[1])
    return homes + sorted(Path("/usr/lib/jvm").glob("*"), reverse=True)  # then any other JDK


def _node_roots() -> list[Path]:
    """Global packages, plus the dependencies npm bundles in its own node_modules.

    `harvest_paths` skips `node_modules` *below* a root because in a repository it holds vendored
    copies; here those bundled packages are the only JavaScript on a Debian machine, so each
    package's node_modules becomes a root of its own (one listdir per package, no walk).
    """
    roots: list[Path] = []
    for top in map(Path, NODE_DIRS):
        if not top.is_dir():
            continue
        roots.append(top)
        roots.extend(sorted(p for p in top.glob("*/node_modules") if p.is_dir()))
    return roots


def _candidates() -> dict[str, list[Path]]:
    """Where each language's sources usually live; only cheap probes (a tool's answer, a stat)."""
    home = Path.home()
    goroot, sysroot = _tool("go", "env", "GOROOT"), _tool("rustc", "--print", "sysroot")
    ruby = _tool("ruby", "-e", "print RbConfig::CONFIG['rubylibdir'], \"\\n\", Gem.default_dir")
    php = _tool("php", "-r", "echo get_include_path();")
    cargo = Path(os.environ.get("CARGO_HOME", home / ".cargo"))
    return {
        "python": [Path(sysconfig.get_paths()["stdlib"])],
        "go": [Path(goroot, "src")] if goroot else [],
        "rust": ([Path(sysroot, "lib/rustlib/src/rust/library")] if sysroot else []) + [cargo / "registry" / "src"],
        "ruby": [Path(p) / sub for p, sub in zip((ruby or "").splitlines(), ("", "gems")) if p],
        "php": [Path(p) for p in (php or "").split(":") if p not in {"", "."}] + [Path("/usr/share/php")],
        "javascript": _node_roots(),
        "java": [h / "lib" / "src.zip" for h in _java_homes()],
        "c": list(map(Path, HEADER_DIRS)),
        "cpp": list(map(Path, HEADER_DIRS)),
        "csharp": [],
    }


def _usable(path: Path) -> bool:
    if path.is_file():
        return zipfile.is_zipfile(path)
    return path.is_dir() and next(os.scandir(path), None) is not None


def default_corpus() -> dict[str, list[Path]]:
    """language -> existing source roots on this machine (directories, or zip archives of sources)."""
    corpus: dict[str, list[Path]] = {}
    for lang, paths in _candidates().items():
        seen: dict[str, Path] = {}
        for p in paths:  # two names of one JDK (java-17 and java-1.17.0 link) count once
            if _usable(p):
                seen.setdefault(os.path.realpath(p), p)
        corpus[lang] = list(seen.values())[:1] if lang in FIRST_ONLY else list(seen.values())
    return corpus


def describe_corpus(corpus: dict[str, list[Path]], stats: HarvestStats | None = None) -> str:
    """One line per supported language: its roots (and counts once harvested), or what to install."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lines = []
    for lang in sorted(LANGUAGES):
        roots = corpus.get(lang) or []
        if not roots:
            lines.append(f"{lang}: none found ({HINTS.get(lang, 'point the harvest at a tree')})")
            continue
        text = ", ".join(f"{r} (stdlib)" if r == stdlib else str(r) for r in roots)
        if stats is not None:
            rejected = sum(stats.rejected[lang].values()) if lang in stats.rejected else 0
            text += (
                f" -- {stats.files[lang]:,} files, {stats.found[lang]:,} functions found, "
                f"{stats.kept[lang]:,} kept, {rejected:,} rejected"
            )
        lines.append(f"{lang}: {text}")
    return "\n".join(lines)


def iter_zip_sources(archive: Path, language: str) -> Iterator[tuple[str, int, zipfile.ZipFile, zipfile.ZipInfo]]:
    """(member path, size, zip, entry) of `language` files, sorted, skipping the harvest's skip dirs."""
    with zipfile.ZipFile(archive) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            parts = info.filename.split("/")
            if info.is_dir() or EXTENSIONS.get(os.path.splitext(parts[-1])[1].lower()) != language:
                continue
            if any(p.startswith(".") or p in SKIP_DIRS for p in parts[:-1]):
                continue
            yield f"{archive}!/{info.filename}", info.file_size, zf, info


def harvest_corpus(
    corpus: dict[str, list[Path]],
    languages: Iterable[str] | None = None,
    quota: int | None = None,
    stats: HarvestStats | None = None,
    cfg: FilterConfig = FilterConfig(),
) -> Iterator[Snippet]:
    """Harvest every root of `corpus` for its language, with one dedup and one quota across all."""
    wanted = check_languages(languages)
    stats = stats if stats is not None else HarvestStats()
    dedup = Deduper()
    for lang, roots in corpus.items():
        if wanted is not None and lang not in wanted:
            continue
        trees = [r for r in roots if not r.is_file()]
        if trees:
            yield from harvest_paths(trees, [lang], quota, stats, cfg, dedup)
        for archive in (r for r in roots if r.is_file()):
            for name, size, zf, info in iter_zip_sources(archive, lang):
                if quota is not None and stats.kept[lang] >= quota:
                    break
                if size > MAX_FILE_BYTES:
                    stats.files[lang] += 1
                    stats.skipped_files["too_large"] += 1
                    continue
                yield from harvest_source(zf.read(info), lang, name, dedup, stats, quota, cfg)
