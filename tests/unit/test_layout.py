"""The house rules: stages import only core; pure modules do no I/O; every module opens with a docstring."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "policy", "actions")
PURE = (
    "policy/decide.py",
    "policy/verify.py",
    "policy/model.py",
    "policy/case.py",
    "policy/incidents.py",
    "policy/sla.py",
    "actions/render.py",
    "actions/findings.py",
    "ingest/parse.py",
)
IO_MODULES = {"socket", "aio_pika", "aiormq", "sqlalchemy", "aiosmtpd", "aiosmtplib", "os", "subprocess", "requests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("stage", STAGES)
def test_stages_import_core_never_each_other(stage: str) -> None:
    others = [s for s in STAGES if s != stage]
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(stage)
        for name in _imports(path)
        if name.split(".")[0] in others
    ]
    assert offenders == []


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    path = ROOT / module
    assert path.exists(), module
    bad = {n for n in _imports(path) if n.split(".")[0] in IO_MODULES or n in ("core.settings_env",)}
    assert bad == set()
    assert "os.environ" not in path.read_text(encoding="utf-8")


def test_core_imports_no_stage() -> None:
    offenders = [
        f"{p.relative_to(ROOT)} imports {n}"
        for p in _modules("core")
        for n in _imports(p)
        if n.split(".")[0] in (*STAGES, "abuse_desk")
    ]
    assert offenders == []


def test_every_module_opens_with_a_docstring() -> None:
    missing = []
    for folder in ("core", "ingest", "policy", "actions", "abuse_desk", "migrations", "tests", "bench", "scripts"):
        for path in _modules(folder):
            if "versions" in path.parts or path.stat().st_size == 0:
                continue
            if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None:
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_only_the_case_store_writes_cases() -> None:
    """Every status change goes through policy/case.py's transition table and policy/cases.py's save()."""
    writes = re.compile(r"update\(\s*cases\s*\)|\bcases\.(insert|update|delete)\(|\bUPDATE\s+cases\b", re.I)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("core", "ingest", "policy", "actions", "abuse_desk", "scripts", "bench")
        for path in _modules(folder)
        if path != ROOT / "policy" / "cases.py" and writes.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
