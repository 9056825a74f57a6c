"""The on-disk response cache: layout, round trip, atomic writes, unreadable entries."""

from __future__ import annotations

import json
import logging
import pathlib

import pytest

from data_generation.teacher.base import Choice, Completion, Decoding, Request
from data_generation.teacher.cache import ResponseCache

COMPLETION = Completion((Choice("print(1)", "stop"), Choice("print(2)", "length")), "m", 12, 7, usage_from_server=True)


def test_round_trip_and_fan_out_layout(tmp_path):
    cache = ResponseCache(tmp_path)
    req = Request.chat("q", decoding=Decoding(n=2, seed=3))
    key = req.cache_key("m")
    assert cache.get(key) is None
    path = cache.put(key, req, COMPLETION, model="m")
    assert path == tmp_path / key[:2] / key[2:4] / f"{key}.json"
    got = cache.get(key, n=2)
    assert got is not None and got.cached and got.choices == COMPLETION.choices
    assert (got.prompt_tokens, got.completion_tokens, got.usage_from_server) == (12, 7, True)
    entry = json.loads(path.read_text())
    assert entry["messages"] == [["user", "q"]] and entry["decoding"]["seed"] == 3 and entry["model"] == "m"
    assert len(cache) == 1 and [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


@pytest.mark.parametrize(
    "content",
    [
        '{"key": "torn',
        "",
        "[]",
        '{"key": "KEY", "completion": {}}',
        '{"key": "0000aaaa", "completion": {"choices": []}}',
    ],
)
def test_unreadable_entries_are_misses(tmp_path, caplog, content):
    cache = ResponseCache(tmp_path)
    req = Request(prompt="p")
    key = req.cache_key("m")
    cache.put(key, req, COMPLETION, model="m")
    cache.path(key).write_text(content.replace("KEY", key), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert cache.get(key) is None
    assert cache.corrupt == 1 and "unreadable" in caplog.text


def test_choice_count_mismatch_is_a_miss(tmp_path):
    cache = ResponseCache(tmp_path)
    req = Request(prompt="p")
    key = req.cache_key("m")
    cache.put(key, req, COMPLETION, model="m")
    assert cache.get(key, n=3) is None and cache.get(key, n=2) is not None


def test_a_crash_while_writing_leaves_no_entry(tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path)
    req = Request(prompt="p")
    key = req.cache_key("m")

    real_write = pathlib.Path.write_text

    def explode(self, text, *args, **kwargs):
        real_write(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt  # stands for a kill in the middle of the write

    monkeypatch.setattr(pathlib.Path, "write_text", explode)
    with pytest.raises(KeyboardInterrupt):
        cache.put(key, req, COMPLETION, model="m")
    assert cache.get(key) is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_rejects_non_digest_keys(tmp_path):
    with pytest.raises(ValueError):
        ResponseCache(tmp_path).path("../../etc/passwd")
