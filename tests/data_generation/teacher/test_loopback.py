"""The loopback server speaks plain HTTP/1.1 + the OpenAI JSON shapes (checked without the SDK)."""

from __future__ import annotations

import http.client
import json

import openai
import pytest

from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import Reply


def _post(conn: http.client.HTTPConnection, path: str, body: dict, headers: dict | None = None):
    conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_protocol_shapes_and_keep_alive():
    with LoopbackServer([Reply.text("a", "b"), Reply.error(429, "later", retry_after=3)]) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        status, _, raw = _post(
            conn, "/v1/chat/completions", {"model": "m", "n": 3, "messages": [{"role": "user", "content": "hi there"}]}
        )
        data = json.loads(raw)
        assert status == 200 and data["object"] == "chat.completion"
        assert [c["message"]["content"] for c in data["choices"]] == ["a", "b", "a"]  # texts cycle over n
        assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        status, headers, raw = _post(conn, "/v1/completions", {"model": "m", "prompt": "x"})  # same socket
        assert status == 429 and headers["retry-after"] == "3" and json.loads(raw)["error"]["message"] == "later"
        status, _, raw = _post(conn, "/v1/completions", {"model": "m", "prompt": "x y"})
        data = json.loads(raw)
        assert data["object"] == "text_completion" and data["choices"][0]["text"].startswith("reply ")
        conn.request("GET", "/v1/models")
        assert json.loads(conn.getresponse().read())["data"][0]["id"] == "loopback-model"
        status, _, _ = _post(conn, "/v1/embeddings", {})
        assert status == 404
        conn.close()
        assert [r.path for r in srv.requests] == [
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/completions",
            "/v1/models",
            "/v1/embeddings",
        ]


def test_api_key_ignore_n_and_no_usage():
    with LoopbackServer(api_key="sk-right", ignore_n=True, usage=False) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        status, _, _ = _post(conn, "/v1/completions", {"prompt": "x"}, {"authorization": "Bearer sk-wrong"})
        assert status == 401
        status, _, raw = _post(conn, "/v1/completions", {"prompt": "x", "n": 4}, {"authorization": "Bearer sk-right"})
        data = json.loads(raw)
        assert status == 200 and len(data["choices"]) == 1 and "usage" not in data
        conn.close()


def test_the_real_sdk_talks_to_it():
    with LoopbackServer([Reply.text("pong")]) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
        assert out.choices[0].message.content == "pong" and out.usage.prompt_tokens == 1
        assert [m.id for m in client.models.list()] == ["loopback-model"]
        client.close()


def test_process_mode_with_fixed_latency():
    with LoopbackServer(latency=0.05, mode="process") as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        out = client.completions.create(model="m", prompt="a b", n=2)
        assert len(out.choices) == 2
        client.close()
        assert srv.stats()["served"] == 1
        with pytest.raises(RuntimeError, match="thread"):
            srv.completion_requests()
    with pytest.raises(ValueError, match="thread"):
        LoopbackServer([Reply.text("x")], mode="process").start()
