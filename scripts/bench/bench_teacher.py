"""Teacher client throughput against the loopback server with a fixed 100 ms latency.

    python -m scripts.bench.bench_teacher [--latency 0.1] [--levels 1,8,64] [--seconds 5]

The server runs in its own process (so it does not share the client's GIL) and answers every
request after exactly `--latency` seconds. With L requests in flight the ideal throughput is
L / latency; we report what `OpenAITeacher.complete_all` reaches, as req/s and % of ideal, with the
client's CPU time per request. Anchors at the highest level, same server, same run: our client on
the SDK's default httpx2 transport, and the plain SDK (`chat.completions.create` under a semaphore,
its default transport) — what a straightforward client would get.
JSON goes to data/out/bench/teacher.json, a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import openai

from data_generation.common.provenance import package_versions
from data_generation.teacher.base import Decoding, Request
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.openai_client import OpenAITeacher
from data_generation.teacher.openai_wire import OpenAIConfig

OUT = Path("data/out/bench/teacher.json")


def _requests(count: int, prefix: str) -> list[Request]:
    # Distinct prompts (no cache, no in-batch dedup), Alpaca-like length.
    return [
        Request.chat(
            f"{prefix} {i}: write a Python function that returns the {i}-th prime number.",
            decoding=Decoding(max_tokens=256),
        )
        for i in range(count)
    ]


def bench_teacher(base_url: str, level: int, count: int, backend: str) -> dict[str, Any]:
    cfg = OpenAIConfig(
        base_url=base_url,
        api_key="sk-bench",
        model="loopback-model",
        concurrency=level,
        progress=False,
        http_backend=backend,
        max_retries=0,
        prices={"loopback-model": {"prompt": 0.0, "completion": 0.0}},
    )
    with OpenAITeacher(cfg) as teacher:
        teacher.complete_all(_requests(level, "warm-up"))  # open the connections first
        cpu, start = time.process_time(), time.perf_counter()
        outs = teacher.complete_all(_requests(count, f"{backend}-{level}"))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert len(outs) == count and teacher.usage()["retries_total"] == 0
    return {
        "client": f"OpenAITeacher ({backend})",
        "in_flight": level,
        "requests": count,
        "seconds": wall,
        "cpu_ms_per_request": 1000 * cpu / count,
        "req_per_s": count / wall,
    }


def bench_plain_sdk(base_url: str, level: int, count: int) -> dict[str, Any]:
    """The anchor: the SDK's typed call under a semaphore, default transport and parsing."""

    async def run() -> tuple[float, float]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        sem = asyncio.Semaphore(level)

        async def one(req: Request) -> str:
            async with sem:
                msgs = [{"role": r, "content": c} for r, c in req.messages or ()]
                out = await client.chat.completions.create(model="loopback-model", messages=msgs, max_tokens=256)
                return out.choices[0].message.content or ""

        await asyncio.gather(*(one(r) for r in _requests(level, "warm-up")))
        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(r) for r in _requests(count, f"sdk-{level}")))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        await client.close()
        return wall, cpu

    wall, cpu = asyncio.run(run())
    return {
        "client": "plain SDK (chat.completions.create, httpx2)",
        "in_flight": level,
        "requests": count,
        "seconds": wall,
        "cpu_ms_per_request": 1000 * cpu / count,
        "req_per_s": count / wall,
    }


def _environment() -> dict[str, Any]:
    pkgs = {p: v for p, v in package_versions(("openai", "httpx2", "aiohttp")).items() if p != "python"}
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m_before": os.getloadavg()[0],
        "packages": pkgs,
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency", type=float, default=0.1, help="server latency per request (s)")
    ap.add_argument("--levels", default="1,8,64", help="requests in flight, comma-separated")
    ap.add_argument("--seconds", type=float, default=5.0, help="ideal duration of each run (sets N)")
    ap.add_argument("--no-anchors", action="store_true", help="skip the httpx2 and plain-SDK anchors")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    env = _environment()
    rows = []
    with LoopbackServer(latency=args.latency, mode="process") as srv:
        for level in levels:
            count = max(level, round(args.seconds * level / args.latency))
            rows.append(bench_teacher(srv.base_url, level, count, "aiohttp"))
        if not args.no_anchors:
            top = max(levels)
            count = max(top, round(args.seconds * top / args.latency))
            rows.append(bench_teacher(srv.base_url, top, count, "httpx2"))
            rows.append(bench_plain_sdk(srv.base_url, top, count))
    for row in rows:
        row["ideal_req_per_s"] = row["in_flight"] / args.latency
        row["pct_of_ideal"] = 100 * row["req_per_s"] / row["ideal_req_per_s"]
    env["load_avg_1m_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"latency_s": args.latency, "environment": env, "runs": rows}, indent=2))
    print(
        f"Server latency {args.latency * 1000:.0f} ms; {env['cpus']} CPUs; load average "
        f"{env['load_avg_1m_before']:.2f} before, {env['load_avg_1m_after']:.2f} after\n"
    )
    print("| client | in flight | requests | req/s | ideal | % of ideal | client CPU ms/req |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['client']} | {r['in_flight']} | {r['requests']} | {r['req_per_s']:.1f} | "
            f"{r['ideal_req_per_s']:.0f} | {r['pct_of_ideal']:.1f} % | {r['cpu_ms_per_request']:.2f} |"
        )
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
