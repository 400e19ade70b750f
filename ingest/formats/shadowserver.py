"""Shadowserver reports: mail with a (zipped) CSV attachment, or a bare CSV file; one report, all rows.

``source_ips`` is the set of the ``ip`` column over every row (bounded by ``archive`` limits);
one incident per row (``csvrows``), with the category of its own file's report type;
the category comes from the report name (file name or Subject), else from the columns.
"""

from __future__ import annotations

import re

from ingest.formats import archive, csvrows
from ingest.formats.draft import Draft, MailMeta
from ingest.formats.mime import Part

_FILE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})-([a-z0-9_]+?)(?:-[a-z0-9_]+)*\.csv(?:\.zip)?$", re.I)
_SUBJECT_RE = re.compile(r"Shadowserver (.{1,120}?) Report: \d{4}-\d{2}-\d{2}", re.I)
_MALWARE = ("sinkhole", "drone", "botnet", "cc_", "c2", "malware", "infected", "compromised", "ransomware")
_INTRUSION = ("ddos", "honeypot", "brute", "darknet", "attack", "amplification_ddos", "event")
_MAX_EVIDENCE_ROWS = 10


def is_shadowserver(msg: Part, meta: MailMeta) -> bool:
    if (meta.reporter_domain() or "").endswith("shadowserver.org") or _SUBJECT_RE.search(meta.subject):
        return True
    return any(_FILE_RE.search(p.filename) for p in msg.walk() if p.filename)


def parse(msg: Part, meta: MailMeta) -> Draft | None:
    if not is_shadowserver(msg, meta):
        return None
    draft = Draft(format="shadowserver", automated=True, reporter_kind="machine")
    name = ""
    subject = _SUBJECT_RE.search(meta.subject)
    subject_name = subject.group(1) if subject else ""
    for part in msg.walk():
        if part.children or not part.filename:
            continue
        match = _FILE_RE.search(part.filename)
        part_name = match.group(2) if match else ""
        if match:
            name = name or part_name
            draft.set_observed(match.group(1), "report date")
        for file_name, text in archive.csv_files(part.filename, part.decoded(), draft.warnings):
            match = _FILE_RE.search(file_name)
            file_type = (match.group(2) if match else "") or part_name or subject_name
            name = name or (match.group(2) if match else "")
            read_rows(draft, text, file_type)
    name = name or subject_name
    classify(draft, name)
    if not draft.source_ips:
        draft.warnings.append("no CSV rows with an ip column found")
    return draft


def parse_bare(raw: bytes) -> Draft:
    """A bare Shadowserver CSV file (no mail around it): reporter unknown."""
    draft = Draft(format="shadowserver", automated=True, reporter_kind="machine")
    read_rows(draft, raw[: archive.MAX_UNZIPPED].decode("utf-8-sig", "replace"), "")
    classify(draft, "")
    return draft


def read_rows(draft: Draft, text: str, file_type: str) -> None:
    """Every row of one CSV file: its IP in ``source_ips``, one incident each, the head rows as evidence."""
    header = text[:4096].split("\n", 1)[0].strip()
    if archive.ip_column(header) is None:
        return
    infection = "infection" in header.lower()
    if infection:
        draft.source_label = draft.source_label or "infection"
    csvrows.read(draft, text, tag=file_type or None, category=category_of(file_type, infection))
    head = text[:16384].split("\n", _MAX_EVIDENCE_ROWS + 1)[: _MAX_EVIDENCE_ROWS + 1]
    draft.add_evidence("\n".join(line.rstrip("\r") for line in head))


def category_of(name: str, infection: bool = False) -> str:
    """Category of a report type (scan_* / accessible = vulnerability, sinkhole/drone = malware)."""
    label = name.lower().replace(" ", "_")
    if any(k in label for k in _MALWARE) or (not label and infection):
        return "malware"
    if any(k in label for k in _INTRUSION):
        return "intrusion"
    return "vulnerability"


def classify(draft: Draft, name: str) -> None:
    """The report's category from its name (else from the columns)."""
    label = name.lower().replace(" ", "_")
    infection = draft.source_label == "infection"
    draft.source_label = name or draft.source_label
    draft.category = category_of(name, infection)
    draft.category_confidence = 0.9 if label else 0.6
