"""ROUGE-L near-duplicate filter benchmark: Alpaca's reference vs RougeLFilter, then a 50k pool.

    python -m scripts.bench.bench_rouge [--code-alpaca PATH] [--candidates 2000] [--reference-limit N]
        [--pool 50000] [--workers N] [--verify-sample 20] [--out data/out/bench/rouge.json]

(a) The first 2,000 real CodeAlpaca instructions are the candidates and the file's remaining rows
    the seeds (in the pool first, like Alpaca's 175 seed tasks). The reference is Stanford Alpaca's
    `generate_instruction.py` loop as written: rouge_score's scorer and tokenizer, a fresh
    `multiprocessing.Pool(workers)` per candidate running
    `pool.map(partial(rouge_scorer._score_lcs, new_tokens), all_instruction_tokens)`, then
    `max > 0.7`, the top 10 by np.argsort and np.mean. RougeLFilter runs on the same input in the
    same process; every decision, maximum and mean is asserted equal. `--reference-limit N` times
    the reference on the first N candidates only and labels the full-run figure as extrapolated.
(b) A pool synthesised from the real instructions (case-changed copies, word edits, renamed
    nouns and identifiers, swapped languages, joined clauses) through RougeLFilter, with and
    without Alpaca's statistics; a random sample of its decisions is re-checked with rouge_score.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from rouge_score import rouge_scorer

from data_generation.common.io import atomic_path
from data_generation.common.provenance import package_versions
from data_generation.common.rouge import RougeLFilter

NOUNS = [
    "invoice",
    "sensor",
    "playlist",
    "ticket",
    "shipment",
    "tweet",
    "rectangle",
    "student",
    "order",
    "customer",
    "employee",
    "vector",
    "graph",
    "queue",
    "stack",
    "record",
    "matrix",
    "sentence",
    "word",
    "product",
    "account",
    "transaction",
    "package",
    "message",
    "image",
    "city",
    "book",
    "movie",
    "planet",
    "recipe",
    "device",
    "user",
    "score",
    "grade",
    "price",
    "token",
    "packet",
    "node",
    "edge",
]
ADJECTIVES = ["sorted", "unique", "nested", "empty", "large", "positive", "given", "random", "valid", "new"]
LANGUAGES = [
    "Python",
    "Java",
    "JavaScript",
    "C++",
    "C#",
    "Go",
    "Rust",
    "Ruby",
    "SQL",
    "TypeScript",
    "Swift",
    "Kotlin",
    "PHP",
    "Bash",
    "R",
    "Scala",
    "Haskell",
    "Perl",
]
_LANG_RE = re.compile(r"\b(" + "|".join(re.escape(x) for x in LANGUAGES if x[-1].isalnum()) + r")\b|C\+\+|C#")
_NOUN_RE = re.compile(
    r"\b(strings?|lists?|arrays?|numbers?|integers?|dictionar(?:y|ies)|tables?|"
    r"employees?|customers?|students?|users?|products?|words?|characters?|elements?|items?|"
    r"names?|matri(?:x|ces)|trees?|nodes?|objects?|books?|cars?|persons?|people|values?)\b"
)
_IDENT_RE = re.compile(r"`[^`]+`|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")


def _identifier(rng: random.Random) -> str:
    a, b = rng.sample(NOUNS, 2)
    return f"{a}_{b}" if rng.random() < 0.5 else a + b.capitalize()


def _rename(text: str, rng: random.Random) -> str:
    """New nouns and identifiers, consistently within the text: same task shape, other domain."""
    mapping: dict[str, str] = {}

    def noun(m: re.Match) -> str:
        return mapping.setdefault(m.group(0).lower(), rng.choice(NOUNS) + ("s" if m.group(0).endswith("s") else ""))

    text = _IDENT_RE.sub(lambda m: mapping.setdefault(m.group(0), _identifier(rng)), text)
    return _NOUN_RE.sub(noun, text)


def _swap_language(text: str, rng: random.Random) -> str:
    if _LANG_RE.search(text):
        return _LANG_RE.sub(lambda m: rng.choice([x for x in LANGUAGES if x != m.group(0)]), text)
    if rng.random() < 0.5:
        return f"{text.rstrip('.')} in {rng.choice(LANGUAGES)}."
    return f"Using {rng.choice(LANGUAGES)}, {text[:1].lower()}{text[1:]}"


def _edit(text: str, rng: random.Random) -> str:
    """One or two small word edits: delete, insert an adjective, swap neighbours, change a number."""
    words = text.split()
    for _ in range(rng.randint(1, 2)):
        op, i = rng.randrange(4), rng.randrange(len(words))
        if op == 0 and len(words) > 3:
            del words[i]
        elif op == 1:
            words.insert(i, rng.choice(ADJECTIVES))
        elif op == 2 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            words[i] = re.sub(r"\d+", lambda m: str(int(m.group(0)) + rng.randint(1, 9)), words[i]) or words[i]
    return " ".join(words)


def _case_copy(text: str, rng: random.Random) -> str:
    return rng.choice([text.upper(), text.lower(), text.title(), text.rstrip(".!?") + "!", "  " + text + "\n"])


def _join(a: str, b: str, rng: random.Random) -> str:
    glue = rng.choice([", and then ", ". Also, ", "; afterwards, ", ", then "])
    return a.rstrip(".") + glue + b[:1].lower() + b[1:]


def synthesise(real: list[str], n: int, seed: int = 0) -> list[str]:
    """`n` instructions: the real ones plus variants of them, shuffled (so a copy may precede its original)."""
    rng = random.Random(seed)
    out = list(real[:n])
    while len(out) < n:
        a, kind = rng.choice(real), rng.random()
        if kind < 0.10:
            out.append(_case_copy(a, rng))
        elif kind < 0.25:
            out.append(_edit(a, rng))
        elif kind < 0.45:
            out.append(_rename(a, rng))
        elif kind < 0.55:
            out.append(_swap_language(a, rng))
        elif kind < 0.85:
            out.append(_join(a, _rename(rng.choice(real), rng), rng))
        else:
            out.append(_edit(_join(_rename(a, rng), _rename(rng.choice(real), rng), rng), rng))
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------- (a) reference vs ours


def alpaca_reference(seeds: list[str], candidates: list[str], workers: int, threshold: float) -> list[dict]:
    """Stanford Alpaca's filtering loop (generate_instruction.py), unchanged apart from the threshold name;
    each result also records the pool size met and the seconds spent (for the extrapolation only)."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    all_instructions = list(seeds)
    all_instruction_tokens = [scorer._tokenizer.tokenize(inst) for inst in all_instructions]
    out = []
    for instruction in candidates:
        t0 = time.perf_counter()
        new_instruction_tokens = scorer._tokenizer.tokenize(instruction)
        with Pool(workers) as p:
            rouge_scores = p.map(partial(rouge_scorer._score_lcs, new_instruction_tokens), all_instruction_tokens)
        rouge_scores = [score.fmeasure for score in rouge_scores]
        most_similar_instructions = {all_instructions[i]: rouge_scores[i] for i in np.argsort(rouge_scores)[-10:][::-1]}
        timing = {"pool": len(all_instruction_tokens), "s": time.perf_counter() - t0}
        if max(rouge_scores) > threshold:
            out.append({"keep": False, "max": max(rouge_scores), **timing})
            continue
        out.append(
            {
                "keep": True,
                "max": max(rouge_scores),
                "avg": float(np.mean(rouge_scores)),
                "top": sorted(most_similar_instructions.values(), reverse=True),
                **timing,
            }
        )
        all_instructions.append(instruction)
        all_instruction_tokens.append(new_instruction_tokens)
    return out


def extrapolate(refs: list[dict], pools: list[int]) -> float:
    """Reference seconds for candidates meeting pools `pools`, from a least-squares fit of the measured
    ones: seconds = a + b * pool (a: the process pool's start-up, b: rouge_score per pair)."""
    b, a = np.polyfit([r["pool"] for r in refs], [r["s"] for r in refs], 1)
    return float(sum(a + b * n for n in pools))


def ours(seeds: list[str], candidates: list[str], threshold: float, stats: bool = True) -> tuple[list, RougeLFilter]:
    f = RougeLFilter(threshold, stats=stats)
    for s in seeds:
        f.add(s)
    return list(f.filter(candidates)), f


def compare(refs: list[dict], decisions: list, f: RougeLFilter) -> None:
    """Same decision, maximum, mean and top-10 scores (as Alpaca's dict keeps them) for every candidate."""
    for i, (ref, d) in enumerate(zip(refs, decisions)):
        assert (d.keep, d.max_score) == (ref["keep"], ref["max"]), f"candidate {i}: {d} vs {ref}"
        if d.keep:
            top = sorted(f.most_similar_instructions(d).values(), reverse=True)
            assert (d.avg_score, top) == (ref["avg"], ref["top"]), f"candidate {i}: {d} vs {ref}"


def bench_real(real: list[str], seeds: list[str], args: argparse.Namespace) -> dict:
    candidates = real[: args.candidates]
    limit = min(args.reference_limit or len(candidates), len(candidates))
    t0 = time.perf_counter()
    refs = alpaca_reference(seeds, candidates[:limit], args.workers, args.threshold)
    ref_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    decisions, f = ours(seeds, candidates, args.threshold)
    ours_s = time.perf_counter() - t0
    compare(refs, decisions, f)
    result = {
        "seeds": len(seeds),
        "candidates": len(candidates),
        "reference_candidates": limit,
        "reference_workers": args.workers,
        "reference_s": ref_s,
        "ours_s": ours_s,
        "kept": sum(d.keep for d in decisions),
        "dropped": sum(not d.keep for d in decisions),
        "decisions_checked": limit,
    }
    if limit < len(candidates):  # the pools the remaining candidates would meet: seeds + kept before them
        pools = len(seeds) + np.cumsum([0] + [d.keep for d in decisions])[limit:-1]
        result["reference_s_extrapolated"] = ref_s + extrapolate(refs, pools.tolist())
    full = result.get("reference_s_extrapolated", ref_s)
    result["speedup"] = full / ours_s
    return result


# ---------------------------------------------------------------- (b) a large synthetic pool


def verify_sample(texts: list[str], decisions: list, k: int, seed: int = 0) -> int:
    """Re-score `k` random candidates with rouge_score against the pool they met; return how many."""
    kept = [i for i, d in enumerate(decisions) if d.keep]
    tok = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)._tokenizer.tokenize
    for i in random.Random(seed).sample(range(len(texts)), min(k, len(texts))):
        target = tok(texts[i])
        scores = [rouge_scorer._score_lcs(target, tok(texts[j])).fmeasure for j in kept if j < i]
        assert decisions[i].max_score == max(scores, default=0.0), f"candidate {i}"
    return min(k, len(texts))


def bench_pool(real: list[str], args: argparse.Namespace) -> dict:
    texts = synthesise(real, args.pool)
    timings = {}
    for stats in (True, False):
        t0 = time.perf_counter()
        decisions, _ = ours([], texts, args.threshold, stats=stats)
        timings["with_stats_s" if stats else "decisions_only_s"] = time.perf_counter() - t0
    kept = sum(d.keep for d in decisions)
    return {
        "instructions": len(texts),
        **timings,
        "kept": kept,
        "dropped": len(texts) - kept,
        "verified_sample": verify_sample(texts, decisions, args.verify_sample),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code-alpaca", default="../shared/data/code_alpaca/code_alpaca_2k.json")
    ap.add_argument("--candidates", type=int, default=2000)
    ap.add_argument("--reference-limit", type=int, default=0, help="time the reference on the first N only")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="reference Pool size (Alpaca: num_cpus)")
    ap.add_argument("--pool", type=int, default=50_000)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--verify-sample", type=int, default=20)
    ap.add_argument("--out", default="data/out/bench/rouge.json")
    args = ap.parse_args()
    real = [r["instruction"] for r in json.loads(Path(args.code_alpaca).read_text(encoding="utf-8"))]
    a = bench_real(real, real[args.candidates :] or real[:1], args)
    b = bench_pool(real, args)
    _report(a, b)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "real": a,
        "pool": b,
        "versions": package_versions(("numpy", "rouge-score", "nltk", "absl-py")),
    }
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _report(a: dict, b: dict) -> None:
    ref = f"{a['reference_s']:.1f} s"
    if "reference_s_extrapolated" in a:
        ref = (
            f"{a['reference_s']:.1f} s for the first {a['reference_candidates']}; EXTRAPOLATED to all "
            f"{a['candidates']}: {a['reference_s_extrapolated']:.0f} s"
        )
    print("| measure | result |\n|---|---|")
    print(
        f"| (a) {a['candidates']} real CodeAlpaca instructions, {a['seeds']} seeds: Alpaca reference "
        f"(rouge_score, Pool({a['reference_workers']}) per candidate) | {ref} |"
    )
    print(f"| (a) RougeLFilter, same input | {a['ours_s']:.2f} s ({a['speedup']:.0f}x faster) |")
    print(
        f"| (a) kept / dropped; decisions, maxima, means, top-10 equal | {a['kept']} / {a['dropped']}; "
        f"all {a['decisions_checked']} checked |"
    )
    print(
        f"| (b) {b['instructions']:,} synthetic instructions, RougeLFilter with Alpaca's statistics | "
        f"{b['with_stats_s']:.1f} s |"
    )
    print(f"| (b) same, decisions only (stats=False) | {b['decisions_only_s']:.1f} s |")
    print(
        f"| (b) kept / dropped; sample re-checked with rouge_score | {b['kept']:,} / {b['dropped']:,}; "
        f"{b['verified_sample']} |"
    )


if __name__ == "__main__":
    main()
