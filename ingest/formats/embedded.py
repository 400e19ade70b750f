"""Reading a reported (embedded or forwarded) message: its source IP, sender domains and identity."""

from __future__ import annotations

import re

from ingest import indicators
from ingest.formats.draft import Draft
from ingest.formats.mime import Part

_FROM_CLAUSE_RE = re.compile(r"^\s*from\s+(.{0,600}?)(?:\s+by\s|\s+with\s|;|$)", re.I | re.S)
_EVIDENCE_HEADERS = (
    "return-path",
    "received",
    "x-originating-ip",
    "authentication-results",
    "message-id",
    "date",
    "from",
    "reply-to",
    "to",
    "subject",
    "list-unsubscribe",
)


def reported_message(root: Part) -> Part | None:
    """The first embedded message (message/rfc822 or header-only part) below ``root``."""
    for part in root.walk():
        if (
            part is not root
            and part.children
            and part.ctype != "multipart/alternative"
            and (part.ctype.startswith("message/") or "rfc822" in part.ctype)
        ):
            return part.children[0]
    return None


def source_ips(msg: Part) -> list[str]:
    """The sending IPs per the reported message: X-Originating-IP plus the client address of the
    top-most Received field that names a non-loopback client (the receiver's view of the sender)."""
    found: list[str] = []
    for value in msg.get_all("x-originating-ip")[:2]:
        found.extend(indicators.find_ips(value.replace("[", " ").replace("]", " "), skip_loopback=True))
    for value in msg.get_all("received")[:30]:
        clause = _FROM_CLAUSE_RE.match(value)
        if not clause:
            continue
        text = clause.group(1).replace("[", " ").replace("]", " ").replace("IPv6:", " ")
        ips = indicators.find_ips(text, skip_loopback=True)
        if ips:
            found.extend(ips)
            break
    return list(dict.fromkeys(found))


def sender_domains(msg: Part) -> list[str]:
    """Domains of the reported message's envelope sender and From/Sender addresses."""
    out: list[str] = []
    for name in ("return-path", "from", "sender"):
        for value in msg.get_all(name)[:2]:
            domain = indicators.email_domain(indicators.extract_address(value))
            if domain:
                out.append(domain)
    return out


def read_into(draft: Draft, msg: Part, *, ips: bool, evidence: bool = True) -> None:
    """Copy what the reported message tells about the offender into the draft."""
    if ips and not draft.source_ips:
        draft.add_ips(source_ips(msg))
        if draft.source_ips:
            draft.warnings.append("source IP taken from the reported message's headers")
    draft.add_domains(list(sender_domains(msg)))
    message_id = (msg.get("message-id") or "").strip()
    if message_id and not draft.reported_message_id:
        draft.reported_message_id = message_id
    if not draft.reported_received:
        draft.reported_received = [v[:2048] for v in msg.get_all("received")[:30]]
    if evidence:
        draft.add_evidence(evidence_headers(msg))


def evidence_headers(msg: Part) -> str:
    """The reported message's tracing and identity fields, as written (folding kept)."""
    out: list[str] = []
    keep = False
    for line in msg.block[:16384].decode("utf-8", "replace").split("\n"):
        if line[:1] in (" ", "\t"):
            if keep:
                out.append(line)
            continue
        keep = line.split(":", 1)[0].strip().lower() in _EVIDENCE_HEADERS
        if keep:
            out.append(line)
    return "\n".join(out)
