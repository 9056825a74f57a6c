"""Shared fixtures: paths to the real data beside the repo (../shared/data) and the repo's fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CODECAPY_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = REPO / "tests" / "fixtures"


def _shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        # In CI the data must be there: a missing file is a failure, not a silent skip.
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing; CI expects ../shared/data beside the clone")
        pytest.skip(f"{path} not found (set CODECAPY_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def code_alpaca_2k() -> Path:
    return _shared("code_alpaca/code_alpaca_2k.json")


@pytest.fixture(scope="session")
def mbpp_full() -> Path:
    return _shared("mbpp/mbpp.jsonl")


@pytest.fixture(scope="session")
def mbpp_sanitized() -> Path:
    return _shared("mbpp/sanitized-mbpp.json")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
