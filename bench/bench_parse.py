"""Benchmark parse_report on the corpus against three standard-library baselines, measured in the same run.

Baselines: the lazy ``BytesHeaderParser`` / ``compat32`` path (headers only: the floor of any mail
reader), ``BytesParser`` with ``compat32`` (whole MIME tree, payloads left encoded: the stdlib's
cheapest full split), and ``policy.default`` with every leaf decoded (what a naive worker does).
parse_report does more than any of them (decoding, format detection, indicators, incidents).

Usage: .venv/bin/python bench/bench_parse.py [CORPUS_DIR] [--rounds N] [--repeat N]
Single process and CPU time, so the figures are per core; measurements of all parsers are
interleaved and repeated (best and median printed) because shared machines are noisy.
"""

from __future__ import annotations

import argparse
import email
import email.parser
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


_HEADERS_ONLY = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_TREE = email.parser.BytesParser(policy=email.policy.compat32)


def lazy_headers(raw: bytes) -> None:
    """The stdlib's lazy path: header block only, compat32 (no header objects), plus the Subject."""
    msg = _HEADERS_ONLY.parsebytes(raw)
    msg.get("subject")


def lazy_tree(raw: bytes) -> None:
    """compat32 BytesParser: the whole MIME tree split, payloads left as they are (no decode)."""
    msg = _TREE.parsebytes(raw)
    for part in msg.walk():
        part.get_content_type()


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
    baselines: dict[str, Callable[[bytes], object]] = {
        "stdlib BytesHeaderParser compat32 (headers only)": lazy_headers,
        "stdlib BytesParser compat32 (tree, no decode)": lazy_tree,
        "stdlib policy.default + decode all": baseline,
    }
    for raw in files:  # warm-up (imports, regex compilation, caches)
        parse_report(raw)
        for func in baselines.values():
            func(raw)
    ours: list[float] = []
    base: dict[str, list[float]] = {name: [] for name in baselines}
    for _ in range(args.repeat):  # interleaved, so all see the same machine conditions
        ours.append(rate(parse_report, files, args.rounds))
        for name, func in baselines.items():
            base[name].append(rate(func, files, max(1, args.rounds // 2)))
    median = statistics.median(ours)
    print(f"{'parse_report (abuse-desk)':50s} best {max(ours):6.0f}  median {median:6.0f} reports/s per core")
    for name, values in base.items():
        print(f"{name:50s} best {max(values):6.0f}  median {statistics.median(values):6.0f} reports/s per core")
    for name, values in base.items():
        print(f"ratio parse_report / {name}: {median / statistics.median(values):5.2f} x (median)")
    print(f"peak memory (tracemalloc, one pass of parse_report): {peak_memory(files) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
