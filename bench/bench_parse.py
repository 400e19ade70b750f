"""Benchmark parse_report on the corpus against the email.policy.default full-decode baseline.

Usage: .venv/bin/python bench/bench_parse.py [CORPUS_DIR] [--rounds N] [--repeat N]
Single process and CPU time, so the figures are per core; measurements of both parsers are
interleaved and repeated (best and median printed) because shared machines are noisy.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from ingest.parse import parse_report

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def load(corpus: Path) -> list[bytes]:
    skip = {"MANIFEST.md", "expected.jsonl"}
    return [p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file() and p.name not in skip]


def baseline(raw: bytes) -> None:
    """What a naive worker does: full parse with policy.default, decode every leaf part."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for part in msg.walk():
        if not part.is_multipart():
            try:
                part.get_content()
            except (KeyError, LookupError, ValueError, AssertionError):
                part.get_payload(decode=True)


def rate(func: Callable[[bytes], object], files: list[bytes], rounds: int) -> float:
    """Reports per CPU second (CPU time: what one core delivers, whatever else runs on the host)."""
    cpu = time.process_time()
    for _ in range(rounds):
        for raw in files:
            func(raw)
    return rounds * len(files) / (time.process_time() - cpu)


def peak_memory(files: list[bytes]) -> int:
    tracemalloc.start()
    for raw in files:
        parse_report(raw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=10, help="passes over the corpus per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved measurements (best and median shown)")
    args = parser.parse_args()
    files = load(args.corpus)
    size = sum(len(f) for f in files)
    print(f"corpus: {len(files)} files, {size / 1024:.0f} KB; {args.repeat} x {args.rounds} passes, one core")
    for raw in files:  # warm-up (imports, regex compilation, caches)
        parse_report(raw)
        baseline(raw)
    ours: list[float] = []
    base: list[float] = []
    for _ in range(args.repeat):  # interleaved, so both see the same machine conditions
        ours.append(rate(parse_report, files, args.rounds))
        base.append(rate(baseline, files, max(1, args.rounds // 4)))
    best, median = max(ours), statistics.median(ours)
    best_base, median_base = max(base), statistics.median(base)
    print(f"parse_report:                       best {best:6.0f}  median {median:6.0f} reports/s per core")
    print(f"email policy.default + decode all:  best {best_base:6.0f}  median {median_base:6.0f} reports/s per core")
    print(f"ratio (median):                     {median / median_base:6.1f} x")
    print(f"peak memory (tracemalloc, one pass of parse_report): {peak_memory(files) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
