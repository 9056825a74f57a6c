"""The loopback server's HTTP/1.1 protocol and request handling (see `loopback.py` for the server).

`Reply` (what to answer, faults included) and `RecordedRequest` (what was received) are the
scripting types; `Engine` holds the server state (scripted replies, recorded requests, counters)
and routes each request to an OpenAI-shaped JSON reply; `_Connection` is a raw asyncio HTTP/1.1
protocol with keep-alive; `serve` runs the listening socket until told to stop. Raw asyncio rather
than a web framework because the throughput benchmark needs the server to cost almost nothing per
request (the client is what is being measured). `LoopbackServer` in `loopback.py` runs `serve` in a
thread or a child process.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Union

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request. `texts` are cycled over the `n` choices."""

    texts: tuple[str, ...] = ("ok",)
    finish_reason: str = "stop"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    raw_body: bytes | None = None  # sent verbatim instead of a generated JSON body
    delay: float = 0.0  # seconds before answering (on top of the server's fixed latency)
    drop: bool = False  # close the socket without any response

    @classmethod
    def text(cls, *texts: str, finish_reason: str = "stop", delay: float = 0.0) -> "Reply":
        return cls(texts=texts or ("",), finish_reason=finish_reason, delay=delay)

    @classmethod
    def error(cls, status: int, message: str = "scripted error", *, retry_after: str | float | None = None) -> "Reply":
        body = json.dumps({"error": {"message": message, "type": "loopback", "code": status}}).encode()
        headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
        return cls(status=status, headers=headers, raw_body=body)

    @classmethod
    def malformed(cls) -> "Reply":
        return cls(raw_body=b'{"id": "cmpl-broken", "choices": [{"text": "unterminated')

    @classmethod
    def dropped(cls) -> "Reply":
        return cls(drop=True)

    @classmethod
    def slow(cls, delay: float, text: str = "too late") -> "Reply":
        return cls(texts=(text,), delay=delay)


@dataclass
class RecordedRequest:
    """One request as the server saw it (headers lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @functools.cached_property
    def body(self) -> dict[str, Any]:
        try:
            return json.loads(self.raw_body) if self.raw_body else {}
        except ValueError:
            return {}


ReplySource = Union[Callable[[RecordedRequest], "Reply | str"], Iterable["Reply | str"], None]


def _word_count(text: str) -> int:
    # The loopback's "tokens" are whitespace words: cheap, deterministic, clearly not tiktoken's.
    return len(text.split())


class Engine:
    """The server state and request handling, shared by thread and process modes."""

    def __init__(
        self, replies: ReplySource, *, latency: float, ignore_n: bool, usage: bool, api_key: str | None, model: str
    ) -> None:
        self.responder = replies if callable(replies) else None
        self.queue: collections.deque = collections.deque([] if callable(replies) or replies is None else list(replies))
        self.latency, self.ignore_n, self.usage = latency, ignore_n, usage
        self.api_key, self.model = api_key, model
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self._seq = itertools.count()

    def pick_reply(self, req: RecordedRequest) -> Reply:
        if self.responder is not None:
            try:
                reply = self.responder(req)
            except Exception as exc:  # a broken script must fail the test loudly, not hang it
                return Reply.error(500, f"loopback reply function raised {exc!r}")
        elif self.queue:
            reply = self.queue.popleft()
        else:
            reply = None
        if reply is None:
            return Reply(texts=(f"reply {next(self._seq)}: {_last_text(req.body)[:60]}",))
        return Reply.text(reply) if isinstance(reply, str) else reply

    def route(self, req: RecordedRequest) -> tuple[Reply, str]:
        """The reply to send and the endpoint kind ('chat', 'completions', 'models', 'stats', '')."""
        path = req.path.split("?", 1)[0].rstrip("/")
        if path == "/_loopback/stats":
            return Reply(raw_body=json.dumps(self.stats()).encode()), "stats"
        self.requests.append(req)
        if self.api_key is not None and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply.error(401, "Incorrect API key provided"), ""
        kinds = {
            ("POST", "/v1/chat/completions"): "chat",
            ("POST", "/v1/completions"): "completions",
            ("GET", "/v1/models"): "models",
        }
        kind = kinds.get((req.method, path), "")
        if not kind:
            return Reply.error(404, f"no route for {req.method} {path}"), ""
        if kind == "models":
            data = [{"id": self.model, "object": "model", "created": 0, "owned_by": "loopback"}]
            return Reply(raw_body=json.dumps({"object": "list", "data": data}).encode()), kind
        return self.pick_reply(req), kind

    def render(self, reply: Reply, kind: str, req: RecordedRequest) -> bytes:
        """The JSON body for a successful chat/completions reply."""
        body = req.body
        n = 1 if self.ignore_n else max(1, int(body.get("n") or 1))
        texts = [reply.texts[i % len(reply.texts)] for i in range(n)]
        if kind == "chat":
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": t},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
                for i, t in enumerate(texts)
            ]
            obj, prefix = "chat.completion", "chatcmpl"
        else:
            choices = [
                {"index": i, "text": t, "finish_reason": reply.finish_reason, "logprobs": None}
                for i, t in enumerate(texts)
            ]
            obj, prefix = "text_completion", "cmpl"
        out: dict[str, Any] = {
            "id": f"{prefix}-{self.served}",
            "object": obj,
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": choices,
        }
        if self.usage:
            p, c = _word_count(_prompt_text(body)), sum(_word_count(t) for t in texts)
            out["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        return json.dumps(out).encode()

    def stats(self) -> dict[str, int]:
        return {
            "requests": len(self.requests),
            "served": self.served,
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
        }


def _last_text(body: dict[str, Any]) -> str:
    msgs = body.get("messages")
    if msgs:
        return str(msgs[-1].get("content", ""))
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


def _prompt_text(body: dict[str, Any]) -> str:
    msgs = body.get("messages")
    if msgs:
        return " ".join(str(m.get("content", "")) for m in msgs)
    return _last_text(body)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests on it are answered one after another."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.closed:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        method, path = (lines[0].split(" ") + ["", ""])[:2]
        self.busy = True
        asyncio.get_running_loop().create_task(self._answer(RecordedRequest(method, path, headers, body)))

    async def _answer(self, req: RecordedRequest) -> None:
        eng = self.engine
        eng.in_flight += 1
        eng.max_in_flight = max(eng.max_in_flight, eng.in_flight)
        try:
            reply, kind = eng.route(req)
            delay = reply.delay + (eng.latency if kind in ("chat", "completions") else 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed:
                return
            if reply.drop:
                self.transport.abort()  # type: ignore[union-attr]
                return
            body = reply.raw_body if reply.raw_body is not None else eng.render(reply, kind, req)
            self._write(reply.status, reply.headers, body, req.headers.get("connection", "") == "close")
            eng.served += 1
        finally:
            eng.in_flight -= 1
        self.busy = False
        self._next()

    def _write(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes, close: bool) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{extra}connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        self.transport.write(head.encode("latin-1") + body)  # type: ignore[union-attr]
        if close:
            self.transport.close()  # type: ignore[union-attr]


async def serve(engine: Engine, ready: Callable[[int], None], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(engine), "127.0.0.1", 0, backlog=1024)
    ready(server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
