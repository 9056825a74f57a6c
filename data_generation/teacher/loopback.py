"""A loopback OpenAI-compatible HTTP server for tests and benchmarks (127.0.0.1, random port).

It speaks enough of the real protocol for the `openai` SDK — `POST /v1/chat/completions`,
`POST /v1/completions`, `GET /v1/models` — over a raw asyncio HTTP/1.1 implementation with
keep-alive (in `loopback_http.py`, with `Reply` and `RecordedRequest`, which scripts import from there).
Raw asyncio rather than a web framework because the throughput benchmark needs the server to cost
almost nothing per request (the client is what is being measured).

Replies are scripted: a callable `RecordedRequest -> Reply | str`, or a queue of `Reply`/str
consumed in order (then the default echo reply). A `Reply` can inject faults: an HTTP error with
`Retry-After`, a malformed JSON body, a dropped connection, a delay past the client's timeout,
`finish_reason: "length"`. Server-wide switches: fixed latency, ignoring `n` (as llama.cpp does),
reporting `usage` or not, and requiring an API key (401 otherwise).

`mode="thread"` runs the server loop in a daemon thread of this process (tests: the recorded
requests are plain Python objects); `mode="process"` runs it in a child process so that it does not
compete with the client for the GIL (benchmarks); counters then come over `GET /_loopback/stats`.
This module holds `LoopbackServer` and the `python -m data_generation.teacher.loopback` command
that process mode runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import urllib.request

from data_generation.common.paths import REPO_ROOT
from data_generation.teacher.loopback_http import (
    Engine,
    RecordedRequest,
    Reply,
    ReplySource,
    serve,
)


def main(argv: list[str] | None = None) -> None:
    """`python -m data_generation.teacher.loopback`: serve default replies until stdin closes or Ctrl-C.

    Prints the port on the first line of stdout. The API key to require, if any, comes from the
    environment variable LOOPBACK_API_KEY (never the command line, which `ps` shows).
    """
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every completion reply")
    p.add_argument("--ignore-n", action="store_true", help="answer one choice whatever n asks (like llama.cpp)")
    p.add_argument("--no-usage", action="store_true", help="omit the usage object")
    p.add_argument("--model", default="loopback-model")
    p.add_argument("--until-stdin-closes", action="store_true", help="stop when stdin reaches EOF")
    args = p.parse_args(argv)
    engine = Engine(
        None,
        latency=args.latency,
        ignore_n=args.ignore_n,
        usage=not args.no_usage,
        api_key=os.environ.get("LOOPBACK_API_KEY") or None,
        model=args.model,
    )

    def ready(port: int) -> None:
        print(port, flush=True)
        if not args.until_stdin_closes:  # run by hand: say where
            print(f"loopback OpenAI-compatible server on http://127.0.0.1:{port}/v1", file=sys.stderr, flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        if args.until_stdin_closes:
            asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
        await serve(engine, ready, stop)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


class LoopbackServer:
    """Context manager: `with LoopbackServer(replies) as srv: OpenAI(base_url=srv.base_url)`.

    `replies`: a callable `RecordedRequest -> Reply | str | None` (None = default echo reply), or
    an iterable of `Reply | str` answered in order (then the default). `latency` is added to every
    completion reply (the benchmark's fixed latency). `ignore_n` answers one choice whatever `n`
    asks. `usage` includes a `usage` object (whitespace-word counts). `api_key`: if set, any request
    whose `Authorization` is not `Bearer <api_key>` gets a 401.
    """

    def __init__(
        self,
        replies: ReplySource = None,
        *,
        latency: float = 0.0,
        ignore_n: bool = False,
        usage: bool = True,
        api_key: str | None = None,
        model: str = "loopback-model",
        mode: str = "thread",
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', not {mode!r}")
        self._kwargs = dict(
            replies=replies, latency=latency, ignore_n=ignore_n, usage=usage, api_key=api_key, model=model
        )
        self.mode = mode
        self.port = 0
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LoopbackServer":
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        return self

    def _start_thread(self) -> None:
        self._engine = Engine(**self._kwargs)
        ready = threading.Event()

        def ready_cb(port: int) -> None:
            self.port = port
            ready.set()

        def run() -> None:
            async def main() -> None:
                self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
                await serve(self._engine, ready_cb, self._stop)  # type: ignore[arg-type]

            asyncio.run(main())

        self._thread = threading.Thread(target=run, name="loopback-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback server did not start within 10 s")

    def _start_process(self) -> None:
        kw = self._kwargs
        if kw["replies"] is not None:
            raise ValueError("mode='process' serves the default replies only; script replies in mode='thread'")
        cmd = [
            sys.executable,
            "-m",
            "data_generation.teacher.loopback",
            "--until-stdin-closes",
            "--latency",
            str(kw["latency"]),
            "--model",
            str(kw["model"]),
        ]
        cmd += ["--ignore-n"] * bool(kw["ignore_n"]) + ["--no-usage"] * (not kw["usage"])
        env = dict(os.environ, LOOPBACK_API_KEY=kw["api_key"] or "")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=REPO_ROOT)
        line = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"loopback server process did not report its port (got {line!r})")
        self.port = int(line)

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._thread = None
        if self._proc is not None:
            self._proc.stdin.close()  # the child stops when its stdin closes
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                self._proc.wait(5)
            self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the server saw -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (thread mode only: process mode keeps them in the child)."""
        if self._engine is None:
            raise RuntimeError("recorded requests are only available in mode='thread'; use stats()")
        return list(self._engine.requests)

    def completion_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("completions")]

    def push(self, *replies: Reply | str) -> None:
        """Queue more scripted replies (thread mode; deque appends are thread-safe)."""
        if self._engine is None:
            raise RuntimeError("push() needs mode='thread'")
        self._engine.queue.extend(replies)

    def stats(self) -> dict[str, int]:
        """requests received, served, max concurrent requests in flight."""
        if self._engine is not None:
            return self._engine.stats()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_loopback/stats", timeout=10) as resp:
            return json.loads(resp.read())


if __name__ == "__main__":
    main()
