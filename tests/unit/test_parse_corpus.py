"""Scores parse_report on the shared sample corpus (read in place) and asserts the quality bars."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
BARS = {"format": 0.98, "category": 0.90, "source_ips": 0.90, "url_recall": 0.90, "reporter": 0.95}

pytestmark = pytest.mark.corpus


def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_corpus", ROOT / "scripts" / "score_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_scores() -> None:
    if not (CORPUS / "expected.jsonl").is_file():
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"corpus missing at {CORPUS} (required when CI is set)")
        pytest.skip(f"corpus not found at {CORPUS} (../shared/corpus); set it up to run this test")
    result = _scorer().score(CORPUS)
    scores = result["scores"]
    for line in result["mismatches"]:
        print("MISMATCH", line)
    print(f"\ncorpus: {result['files']} files")
    for name, value in scores.items():
        bar = BARS.get(name)
        print(f"  {name:12s} {value * 100:6.1f} %" + (f"  (bar {bar * 100:.0f} %)" if bar else "  (information)"))
    failed = {name: scores[name] for name, bar in BARS.items() if scores[name] < bar}
    assert not failed, f"below the bars: {failed}"
