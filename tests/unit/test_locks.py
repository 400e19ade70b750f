"""`make test` installs pinned versions: every dependency and test extra of pyproject.toml is pinned in a lock file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(name: str) -> set[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return {_norm(line.split("==")[0]) for line in lines if "==" in line and not line.startswith("#")}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ]", name.strip(), maxsplit=1)[0]).lower()


def test_every_dependency_and_test_extra_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime, test = _pins("requirements.lock"), _pins("requirements-test.lock")
    assert [d for d in project["dependencies"] if _norm(d) not in runtime] == []
    assert [d for d in project["optional-dependencies"]["test"] if _norm(d) not in runtime | test] == []
    assert not runtime & test, "a package pinned twice"


def test_make_installs_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet -r requirements.lock" in makefile
    assert "pip install --quiet -r requirements-test.lock" in makefile and "--no-deps -e \".[test]\"" in makefile
