"""The listener's reply table: every cause has a row, every row is used, the codes are design.md §4's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ingest.replies import REPLIES, Cause, printable, reply

SMTP_MODULE = Path(__file__).resolve().parents[2] / "ingest" / "smtp.py"

DESIGN_CODES = {
    Cause.ACCEPTED: (250, "2.0.0"),
    Cause.RECIPIENT_OK: (250, "2.1.5"),
    Cause.NOT_ABUSE_ADDRESS: (550, "5.1.1"),
    Cause.TOO_BIG: (552, "5.3.4"),
    Cause.TOO_MANY_RECIPIENTS: (452, "4.5.3"),
    Cause.TEMPORARY_FAILURE: (451, "4.3.0"),
    Cause.SHUTTING_DOWN: (421, "4.3.2"),
}


def _causes_used_by_the_listener() -> set[str]:
    tree = ast.parse(SMTP_MODULE.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Cause"
    }


def test_every_cause_has_a_row() -> None:
    assert set(REPLIES) == set(Cause)


def test_every_row_is_used_by_the_listener() -> None:
    assert _causes_used_by_the_listener() == {c.name for c in REPLIES}


def test_codes_are_the_ones_design_md_names() -> None:
    assert {c: (r.code, r.enhanced) for c, r in REPLIES.items()} == DESIGN_CODES


def test_enhanced_code_class_matches_the_basic_code() -> None:
    for row in REPLIES.values():
        assert row.enhanced[0] == str(row.code)[0]


def test_metric_labels_are_the_causes_own_and_unique() -> None:
    labels = [r.metric for r in REPLIES.values() if r.metric is not None]
    assert len(labels) == len(set(labels))
    assert all(label in {c.value for c in Cause} for label in labels)


def test_the_listener_writes_no_reply_of_its_own() -> None:
    source = SMTP_MODULE.read_text(encoding="utf-8")
    assert not re.search(r"[\"'][245]\d\d[ -]", source)
    assert "on_result(\"" not in source  # metric labels come from the table only


def test_rendered_replies() -> None:
    assert reply(Cause.ACCEPTED, report_id="abc") == "250 2.0.0 queued as abc"
    assert reply(Cause.TOO_BIG, limit=10) == "552 5.3.4 message too big (limit 10 bytes)"


def test_printable_shows_8bit_bytes_and_cuts() -> None:
    value = b"abus\xe9@localhost".decode("utf-8", "surrogateescape")
    assert printable(value) == "abus\\xe9@localhost"
    assert printable("é" * 300, limit=5) == "ééééé"
