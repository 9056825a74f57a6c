"""Merge benchmark: 50,000 records synthesised from real CodeAlpaca rows, full pipeline, timed.

    python -m scripts.bench.bench_merge [--rows 50000] [--code-alpaca PATH] [--mbpp PATH]

The synthetic set mixes, from the 2,017 real rows: exact copies with case/whitespace changes
(exact duplicates), copies with a few words changed (near duplicates), new records built by
renaming identifiers and joining two real rows (novel), and MBPP test problems (contaminated).
The anchor, run on the same records in the same process, is datasketch's MinHash + MinHashLSH
(the usual tool for this step) for the near-duplicate stage; we report the ratio and how many
near-duplicate decisions the two agree on.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

from data_generation.common.benchmarks.base import Problem
from data_generation.common.benchmarks.mbpp import load_mbpp
from data_generation.dataset.merge import MergeConfig, merge
from data_generation.dataset.normalise import words

NAMES = ["alpha", "total", "items", "result", "buffer", "node", "count", "index", "values", "cache", "queue", "score"]


def _rename(text: str, rng: random.Random) -> str:
    """Rename every identifier-like word consistently (a new 'program' with the same shape)."""
    mapping: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        w = m.group(0)
        if w not in mapping:
            mapping[w] = f"{rng.choice(NAMES)}_{rng.randrange(10**6)}"
        return mapping[w]

    return re.sub(r"\b[a-z_][a-z0-9_]{2,}\b", sub, text)


def _perturb(text: str, rng: random.Random) -> str:
    """Change one word: a near duplicate of a real row (when the row is long enough to have shingles)."""
    toks = text.split(" ")
    toks[rng.randrange(len(toks))] = rng.choice(NAMES)
    return " ".join(toks)


def synthesise(rows: list[dict], mbpp: list[Problem], n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r, kind = rows[i % len(rows)], rng.random()
        if kind < 0.005:
            p = rng.choice(mbpp)
            rec = {"instruction": p.prompt, "input": "", "output": p.reference}
        elif kind < 0.10:
            rec = {**r, "instruction": "  " + r["instruction"].upper() + "\n"}
        elif kind < 0.25:
            rec = {**r, "output": _perturb(r["output"], rng)}
        else:
            other = rows[rng.randrange(len(rows))]
            rec = {
                "instruction": f"{r['instruction']} Then: {other['instruction']}",
                "input": r["input"],
                "output": _rename(f"{r['output']}\n\n{other['output']}", rng),
            }
        out.append({**rec, "source": f"synthetic_{i % 2}"})
    return out


def datasketch_near_dups(texts: list[str], threshold: float, num_perm: int, shingle: int) -> tuple[set[int], int]:
    """datasketch's decisions (LSH candidates taken as duplicates, its usual use), and how many of
    them an exact Jaccard check confirms (computed after the timed loop)."""
    from datasketch import MinHash, MinHashLSH

    lsh, dups, sets, found = MinHashLSH(threshold=threshold, num_perm=num_perm), set(), [], {}
    for i, text in enumerate(texts):
        ws = words(text)
        sets.append({" ".join(ws[j : j + shingle]) for j in range(max(1, len(ws) - shingle + 1))})
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([g.encode() for g in sets[-1]])
        hits = lsh.query(m)
        if hits:
            dups.add(i)
            found[i] = hits
        else:
            lsh.insert(str(i), m)
    confirmed = sum(
        any(len(sets[i] & sets[int(j)]) / len(sets[i] | sets[int(j)]) >= threshold for j in hits)
        for i, hits in found.items()
    )
    return dups, confirmed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--code-alpaca", default="../shared/data/code_alpaca/code_alpaca_2k.json")
    ap.add_argument("--mbpp", default="../shared/data/mbpp/mbpp.jsonl")
    ap.add_argument("--no-anchor", action="store_true", help="skip the datasketch comparison")
    args = ap.parse_args()
    rows = [r for r in json.loads(Path(args.code_alpaca).read_text()) if r["output"].strip()]
    data = synthesise(rows, load_mbpp(args.mbpp), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        halves = [Path(tmp, f"part{k}.jsonl") for k in range(2)]
        for k, path in enumerate(halves):
            path.write_text("".join(json.dumps(r) + "\n" for r in data[k::2]))
        cfg = MergeConfig(
            inputs=[str(p) for p in halves],
            output_dir=f"{tmp}/out",
            benchmark_paths={"mbpp": args.mbpp},
            formats=("json", "jsonl"),
        )
        t0 = time.perf_counter()
        manifest = merge(cfg)
        ours = time.perf_counter() - t0
        drops = [json.loads(line) for line in Path(tmp, "out", "drops.jsonl").read_text().splitlines()]
    print(f"| rows | {args.rows} |\n|---|---|")
    print(f"| merge total (read, dedup, near-dup, decontam, write) | {ours:.1f} s |")
    for stage, secs in manifest["timings_s"].items():
        print(f"| {stage} | {secs:.2f} s |")
    print(f"| kept | {manifest['counts']['kept']} |")
    for reason, count in manifest["counts"]["dropped"].items():
        print(f"| dropped: {reason} | {count} |")
    if not args.no_anchor:
        _anchor(cfg, data, drops, manifest["timings_s"]["near_dedup"])


def _anchor(cfg: MergeConfig, data: list[dict], drops: list[dict], ours_near: float) -> None:
    """Run datasketch on the records that reached the near-dup stage, in the same order."""
    exact = {d["id"] for d in drops if d["reason"] == "exact_duplicate"}
    near = {d["id"] for d in drops if d["reason"] == "near_duplicate"}
    from data_generation.common.record import Record
    from data_generation.dataset.normalise import normalise_whitespace as nw

    recs = [
        Record(nw(r["instruction"]), nw(r["input"]), nw(r["output"]), r["source"]) for r in [*data[0::2], *data[1::2]]
    ]
    recs = [r for r in recs if r.id not in exact]
    seen, ordered = set(), []
    for r in recs:
        if r.id not in seen:
            seen.add(r.id)
            ordered.append(r)
    t0 = time.perf_counter()
    theirs, confirmed = datasketch_near_dups(
        [f"{r.instruction}\n{r.input}\n{r.output}" for r in ordered], cfg.near_dup_threshold, cfg.num_perm, cfg.shingle
    )
    secs = time.perf_counter() - t0
    theirs_ids = {ordered[i].id for i in theirs}
    agree = len(theirs_ids & near) / max(1, len(theirs_ids | near))
    print(f"| near-dup stage, datasketch MinHashLSH (anchor) | {secs:.1f} s |")
    print(f"| near-dup stage, ours | {ours_near:.1f} s ({secs / ours_near:.1f}x faster) |")
    print(
        f"| near-dup drops: ours (all exact-Jaccard verified) / datasketch / agreement | "
        f"{len(near)} / {len(theirs_ids)} / {agree:.3f} |"
    )
    print(f"| datasketch drops whose exact Jaccard reaches the threshold | {confirmed} of {len(theirs_ids)} |")


if __name__ == "__main__":
    main()
