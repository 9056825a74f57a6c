"""OpenAITeacher through the real openai SDK against the loopback server: protocol, faults, retries."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any, Callable, Iterator

import pytest

from data_generation.teacher.accounting import count_chat_tokens, count_tokens
from data_generation.teacher.base import Decoding, Request, TeacherError
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import RecordedRequest, Reply
from data_generation.teacher.openai_client import OpenAITeacher
from data_generation.teacher.openai_wire import OpenAIConfig

SECRET = "sk-test-SECRET-0123456789abcdef"  # must never leave the Authorization header


@pytest.fixture
def server_factory() -> Iterator[Callable[..., LoopbackServer]]:
    servers: list[LoopbackServer] = []

    def make(replies: Any = None, **kwargs: Any) -> LoopbackServer:
        srv = LoopbackServer(replies, **kwargs).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def teacher_factory() -> Iterator[Callable[..., OpenAITeacher]]:
    teachers: list[OpenAITeacher] = []

    def make(server: LoopbackServer, **overrides: Any) -> OpenAITeacher:
        fields: dict[str, Any] = dict(
            base_url=server.base_url,
            api_key=SECRET,
            model="loopback-model",
            timeout=2.0,
            max_retries=3,
            backoff_base=0.001,
            backoff_max=0.01,
            concurrency=8,
            progress=False,
        )
        fields.update(overrides)
        teacher = OpenAITeacher(OpenAIConfig(**fields))
        teachers.append(teacher)
        return teacher

    yield make
    for teacher in teachers:
        teacher.close()


def test_chat_request_body_and_reply(server_factory, teacher_factory):
    srv = server_factory([Reply.text("def f(): pass")])
    teacher = teacher_factory(srv)
    dec = Decoding(temperature=0.2, top_p=0.9, max_tokens=77, stop=("###",), seed=11)
    [out] = teacher.complete_all([Request.chat("write f", system="be brief", decoding=dec)])
    assert [c.text for c in out.choices] == ["def f(): pass"] and out.choices[0].finish_reason == "stop"
    [seen] = srv.requests
    assert seen.method == "POST" and seen.path == "/v1/chat/completions"
    body = seen.body
    assert body["model"] == "loopback-model"
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write f"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"], body["seed"], body["n"]) == (
        0.2,
        0.9,
        77,
        ["###"],
        11,
        1,
    )


def test_completions_api_and_finish_reason_length(server_factory, teacher_factory):
    srv = server_factory([Reply.text("truncated answ", finish_reason="length")])
    teacher = teacher_factory(srv)
    [out] = teacher.complete_all([Request(prompt="### Instruction:\nsum two ints\n### Response:\n")])
    assert srv.requests[0].path == "/v1/completions"
    assert srv.requests[0].body["prompt"].startswith("### Instruction:")
    assert out.choices[0].text == "truncated answ" and out.choices[0].finish_reason == "length"


def test_complete_all_keeps_request_order(server_factory, teacher_factory):
    def echo_slowly(req: RecordedRequest) -> Reply:
        # Random delays so that answers arrive out of order.
        return Reply.text("echo " + req.body["messages"][-1]["content"], delay=random.uniform(0, 0.03))

    srv = server_factory(echo_slowly)
    teacher = teacher_factory(srv, concurrency=16)
    outs = teacher.complete_all([Request.chat(f"q{i}") for i in range(60)])
    assert [o.choices[0].text for o in outs] == [f"echo q{i}" for i in range(60)]
    assert teacher.usage()["requests"] == 60 and teacher.usage()["http_requests"] == 60


def test_empty_batch_and_reuse_after_close(server_factory, teacher_factory):
    srv = server_factory()
    teacher = teacher_factory(srv)
    assert teacher.complete_all([]) == [] and srv.requests == []
    teacher.complete_all([Request.chat("a")])
    teacher.close()
    teacher.close()  # idempotent
    [out] = teacher.complete_all([Request.chat("b")])  # a fresh loop and client
    assert out.choices[0].text.endswith(": b") and teacher.usage()["requests"] == 2


def test_async_complete_from_the_callers_own_loop(server_factory, teacher_factory):
    srv = server_factory()
    teacher = teacher_factory(srv)

    async def main() -> list[str]:
        outs = await asyncio.gather(*(teacher.complete(Request.chat(f"a{i}")) for i in range(5)))
        return [o.choices[0].text for o in outs]

    texts = asyncio.run(main())
    assert [t.split(": ", 1)[1] for t in texts] == [f"a{i}" for i in range(5)]


@pytest.mark.parametrize(
    "fault, reason",
    [
        (Reply.error(500), "http_500"),
        (Reply.error(503), "http_503"),
        (Reply.malformed(), "malformed"),
        (Reply.dropped(), "connection"),
        (Reply.slow(1.5), "timeout"),
    ],
)
@pytest.mark.parametrize("backend", ["aiohttp", "httpx2"])
def test_transient_faults_are_retried(server_factory, teacher_factory, fault, reason, backend):
    srv = server_factory([fault, fault, Reply.text("finally")])
    teacher = teacher_factory(srv, timeout=0.3, http_backend=backend)
    [out] = teacher.complete_all([Request.chat("x")])
    assert out.choices[0].text == "finally"
    usage = teacher.usage()
    assert usage["retries"] == {reason: 2} and usage["http_requests"] == 3
    assert len(srv.requests) == 3


def test_429_honours_retry_after(server_factory, teacher_factory):
    srv = server_factory([Reply.error(429, "slow down", retry_after=0.4), Reply.text("ok")])
    teacher = teacher_factory(srv, backoff_base=0.001)
    [out] = teacher.complete_all([Request.chat("x")])
    first, second = srv.requests
    gap = second.received_at - first.received_at
    assert 0.4 <= gap < 2.0, gap  # the backoff alone would wait ~1 ms
    assert out.choices[0].text == "ok" and teacher.usage()["retries"] == {"http_429": 1}


def test_retries_are_bounded(server_factory, teacher_factory):
    srv = server_factory(lambda req: Reply.error(500, "always broken"))
    teacher = teacher_factory(srv, max_retries=2)
    with pytest.raises(TeacherError) as err:
        teacher.complete_all([Request.chat("x")])
    assert len(srv.requests) == 3  # 1 attempt + 2 retries, then stop
    msg = str(err.value)
    assert srv.base_url in msg and "loopback-model" in msg and "3 attempts" in msg and "http_500" in msg


def test_auth_error_stops_at_once_with_a_clear_message(server_factory, teacher_factory, caplog):
    srv = server_factory(api_key="sk-the-right-key")
    teacher = teacher_factory(srv, concurrency=2)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TeacherError) as err:
        teacher.complete_all([Request.chat(f"q{i}") for i in range(30)])
    # Only the requests already in flight reach the server: no retries, no queue drain.
    assert 1 <= len(srv.requests) <= 2
    msg = str(err.value)
    assert "401" in msg and srv.base_url in msg and "loopback-model" in msg and "OPENAI_API_KEY" in msg
    assert SECRET not in msg and teacher.usage()["retries_total"] == 0


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried(server_factory, teacher_factory, status):
    srv = server_factory([Reply.error(status, "nope")])
    teacher = teacher_factory(srv)
    with pytest.raises(TeacherError, match=f"HTTP {status}"):
        teacher.complete_all([Request.chat("x")])
    assert len(srv.requests) == 1


def test_key_only_in_the_authorization_header(server_factory, teacher_factory, tmp_path, caplog):
    for name in ("", "openai", "httpx2", "httpcore2", "aiohttp", "data_generation"):
        caplog.set_level(logging.DEBUG, logger=name)  # the SDK's own debug logs included
    # The server's error text echoes the key (some proxies do): our error must redact it.
    srv = server_factory([Reply.error(500, f"bad key {SECRET}"), Reply.text("ok"), Reply.error(400, f"key {SECRET}")])
    teacher = teacher_factory(srv, cache_dir=tmp_path / "cache")
    teacher.complete_all([Request.chat("first")])
    with pytest.raises(TeacherError) as err:
        teacher.complete_all([Request.chat("second")])
    assert SECRET not in str(err.value) and "***" in str(err.value)
    for req in srv.requests:
        assert req.headers["authorization"] == f"Bearer {SECRET}"
        others = {k: v for k, v in req.headers.items() if k != "authorization"}
        assert SECRET not in json.dumps(others) and SECRET.encode() not in req.raw_body and SECRET not in req.path
    assert SECRET not in json.dumps(teacher.usage()) and SECRET not in repr(teacher.config)
    assert caplog.records and all(SECRET not in rec.getMessage() for rec in caplog.records)
    assert any(rec.name.startswith("openai") for rec in caplog.records)
    files = list((tmp_path / "cache").rglob("*"))
    assert any(f.suffix == ".json" for f in files)
    assert all(SECRET.encode() not in f.read_bytes() for f in files if f.is_file())


def test_rerun_hits_the_cache_and_pays_nothing(server_factory, teacher_factory, tmp_path):
    srv = server_factory()
    reqs = [Request.chat(f"q{i}", decoding=Decoding(n=2)) for i in range(5)]
    first = teacher_factory(srv, cache_dir=tmp_path, model="gpt-4o-mini").complete_all(reqs)
    assert len(srv.requests) == 5
    again = teacher_factory(srv, cache_dir=tmp_path, model="gpt-4o-mini")
    second = again.complete_all(reqs)
    assert len(srv.requests) == 5  # the server saw nothing new
    assert [c.choices for c in second] == [c.choices for c in first] and all(c.cached for c in second)
    usage = again.usage()
    assert usage["cache_hits"] == 5 and usage["http_requests"] == 0 and usage["cost_usd"] == 0.0
    # A different tag is a different request.
    again.complete_all([Request.chat("q0", decoding=Decoding(n=2), tag="step-2")])
    assert len(srv.requests) == 6


def test_duplicates_in_one_batch_are_sent_once(server_factory, teacher_factory):
    srv = server_factory(lambda req: Reply.text("same", delay=0.05))
    teacher = teacher_factory(srv)
    outs = teacher.complete_all([Request.chat("dup")] * 4)
    assert len(srv.requests) == 1 and [o.choices[0].text for o in outs] == ["same"] * 4
    assert teacher.usage()["cache_hits"] == 3


def test_corrupt_cache_entry_is_a_miss(server_factory, teacher_factory, tmp_path, caplog):
    srv = server_factory()
    req = Request.chat("q")
    teacher = teacher_factory(srv, cache_dir=tmp_path)
    teacher.complete_all([req])
    path = teacher.cache.path(req.cache_key("loopback-model"))
    path.write_text('{"key": "torn', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        [out] = teacher_factory(srv, cache_dir=tmp_path).complete_all([req])
    assert not out.cached and len(srv.requests) == 2
    assert any("unreadable" in rec.getMessage() for rec in caplog.records)
    assert json.loads(path.read_text())["completion"]["choices"][0]["text"] == out.choices[0].text


def test_n_fallback_when_the_server_ignores_n(server_factory, teacher_factory):
    srv = server_factory(ignore_n=True)
    teacher = teacher_factory(srv)
    [out] = teacher.complete_all([Request.chat("q", decoding=Decoding(n=3, seed=5))])
    assert len(out.choices) == 3 and len({c.text for c in out.choices}) == 3
    assert [(r.body["n"], r.body["seed"]) for r in srv.requests] == [(3, 5), (1, 6), (1, 7)]
    assert teacher.usage()["server_ignores_n"] is True
    # Remembered: the next n=2 request goes straight to two n=1 requests.
    teacher.complete_all([Request.chat("r", decoding=Decoding(n=2, seed=40))])
    assert sorted((r.body["n"], r.body["seed"]) for r in srv.requests[3:]) == [(1, 40), (1, 41)]
    assert out.prompt_tokens == 3  # the prompt is paid once per HTTP request (1 loopback "token" each)


def test_n_is_sent_once_when_the_server_honours_it(server_factory, teacher_factory):
    srv = server_factory()
    teacher = teacher_factory(srv)
    [out] = teacher.complete_all([Request(prompt="p", decoding=Decoding(n=4))])
    assert len(out.choices) == 4 and len(srv.requests) == 1 and not teacher.usage()["server_ignores_n"]


def test_concurrency_bound_is_never_exceeded(server_factory, teacher_factory):
    srv = server_factory(latency=0.03)
    teacher = teacher_factory(srv, concurrency=5)
    teacher.complete_all([Request.chat(f"q{i}") for i in range(40)])
    assert srv.stats()["max_in_flight"] == 5


def test_requests_per_minute_limit(server_factory, teacher_factory):
    srv = server_factory()
    teacher = teacher_factory(srv, requests_per_minute=1200, concurrency=32)  # 20/s, burst of 20
    start = time.monotonic()
    teacher.complete_all([Request.chat(f"q{i}") for i in range(30)])
    elapsed = time.monotonic() - start
    assert elapsed >= 0.45  # the 10 requests past the burst need 0.5 s at 20/s
    times = sorted(r.received_at for r in srv.requests)
    assert times[-1] - times[20] >= 0.4  # after the burst: 9 gaps of 50 ms


def test_tokens_per_minute_limit_counts_prompt_and_max_tokens(server_factory, teacher_factory):
    srv = server_factory()
    teacher = teacher_factory(srv, tokens_per_minute=60_000)  # 1000 tokens/s, burst of 1000
    # 1 prompt token + 399 max_tokens = 400 tokens each; distinct tags so none is a duplicate.
    reqs = [Request(prompt="x", decoding=Decoding(max_tokens=399), tag=str(i)) for i in range(4)]
    start = time.monotonic()
    teacher.complete_all(reqs)
    elapsed = time.monotonic() - start
    assert 0.55 <= elapsed < 3.0  # 1600 tokens, 1000 at once, 600 more at 1000/s
    assert teacher.usage()["rate_limit_wait_s"] >= 0.55


def test_token_accounting_prefers_server_usage(server_factory, teacher_factory):
    srv = server_factory([Reply.text("one two three")])  # loopback usage = whitespace words
    [out] = teacher_factory(srv).complete_all([Request(prompt="a b c d")])
    assert (out.prompt_tokens, out.completion_tokens, out.usage_from_server) == (4, 3, True)


def test_token_accounting_with_tiktoken_when_usage_is_missing(server_factory, teacher_factory):
    text = "def add(a, b):\n    return a + b"
    srv = server_factory([Reply.text(text), Reply.text(text)], usage=False)
    teacher = teacher_factory(srv)
    chat = Request.chat("Add two numbers in Python.", system="You write code.")
    out_chat, out_prompt = teacher.complete_all([chat, Request(prompt="Add two numbers")])
    assert out_chat.prompt_tokens == count_chat_tokens(chat.messages) and not out_chat.usage_from_server
    assert out_chat.completion_tokens == count_tokens(text) == 11
    assert out_prompt.prompt_tokens == count_tokens("Add two numbers") == 3
    usage = teacher.usage()
    assert usage["responses_counted_with_tiktoken"] == 2
    assert usage["prompt_tokens"] == out_chat.prompt_tokens + 3


def test_cost_from_the_price_table_and_overrides(server_factory, teacher_factory, caplog):
    srv = server_factory(lambda req: Reply.text("w " * 1000))  # 1000 completion "tokens"
    priced = teacher_factory(srv, model="gpt-4o-mini")
    priced.complete_all([Request(prompt="x " * 2000)])
    assert priced.usage()["cost_usd"] == pytest.approx((2000 * 0.15 + 1000 * 0.60) / 1e6)
    custom = teacher_factory(srv, model="my-model", prices={"my-model": {"prompt": 1.0, "completion": 2.0}})
    custom.complete_all([Request(prompt="x " * 2000)])
    assert custom.usage()["cost_usd"] == pytest.approx((2000 * 1.0 + 1000 * 2.0) / 1e6)
    unknown = teacher_factory(srv, model="mystery-model")
    with caplog.at_level(logging.WARNING):
        unknown.complete_all([Request(prompt=f"p{i}") for i in range(3)])
    assert unknown.usage()["cost_usd"] == 0.0
    assert sum("mystery-model" in rec.getMessage() for rec in caplog.records) == 1


def test_progress_bar_shows_requests_tokens_and_dollars(server_factory, teacher_factory, capsys):
    srv = server_factory()
    teacher_factory(srv, progress=True, model="gpt-4o").complete_all([Request.chat("q")])
    err = capsys.readouterr().err
    assert "sent=1" in err and "tok=" in err and "$" in err


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "qwen-coder")
    monkeypatch.setenv("MY_KEY", SECRET)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = OpenAIConfig.from_env(api_key_env="MY_KEY", concurrency=None, timeout=5.0)
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.concurrency, cfg.timeout) == (
        "http://127.0.0.1:9/v1",
        "qwen-coder",
        SECRET,
        16,
        5.0,
    )
    assert SECRET not in repr(cfg)
    assert OpenAIConfig.from_env().api_key == ""  # local servers need none: a placeholder is sent
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    with pytest.raises(TeacherError, match="OPENAI_API_KEY"):
        OpenAITeacher(OpenAIConfig.from_env())
