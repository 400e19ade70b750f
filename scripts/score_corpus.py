"""Score parse_report against the shared corpus ground truth (expected.jsonl); print mismatches and scores.

Usage: .venv/bin/python scripts/score_corpus.py [CORPUS_DIR]   (default: ../shared/corpus)
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

from ingest.parse import parse_report

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def score(corpus_dir: Path | str = DEFAULT_CORPUS, *, verbose: bool = False) -> dict[str, Any]:
    """Parse every file listed in expected.jsonl; return the scores (fractions 0..1) and mismatches."""
    corpus = Path(corpus_dir)
    rows = [json.loads(line) for line in (corpus / "expected.jsonl").read_text().splitlines() if line.strip()]
    counts = {"format": 0, "category": 0, "source_ips": 0, "reporter": 0, "domains": 0}
    url_total = url_found = 0
    mismatches: list[str] = []
    for row in rows:
        report = parse_report((corpus / row["file"]).read_bytes())
        checks = {
            "format": (report.format, row["format"]),
            "category": (report.category, row["category"]),
            "source_ips": ({_ip(i) for i in report.source_ips}, {_ip(i) for i in row["source_ips"]}),
            "reporter": ((report.reporter or "").lower() or None, (row["reporter"] or "").lower() or None),
            "domains": ({d.lower() for d in report.domains}, {d.lower() for d in row["domains"]}),
        }
        for name, (got, want) in checks.items():
            if got == want:
                counts[name] += 1
            else:
                mismatches.append(
                    f"{row['file']}: {name} got {sorted(got) if isinstance(got, set) else got!r}"
                    f" want {sorted(want) if isinstance(want, set) else want!r}"
                )
        got_urls = set(report.urls)
        for url in row["urls"]:
            url_total += 1
            if url in got_urls:
                url_found += 1
            else:
                mismatches.append(f"{row['file']}: url missing {url!r}")
    total = len(rows)
    scores = {name: value / total for name, value in counts.items()}
    scores["url_recall"] = url_found / url_total if url_total else 1.0
    return {"files": total, "scores": scores, "mismatches": mismatches}


def main(argv: list[str]) -> int:
    corpus = Path(argv[1]) if len(argv) > 1 else DEFAULT_CORPUS
    result = score(corpus)
    for line in result["mismatches"]:
        print("MISMATCH", line)
    print(f"files: {result['files']}")
    for name, value in result["scores"].items():
        print(f"{name:12s} {value * 100:6.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
