"""RFC 3464 delivery status notifications (bounces): who sent the original mail, which recipients failed for good."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

MAX_FAILURES = 1000  # recipients kept from one notification
MAX_ADDRESS = 320
HARD_UNKNOWN = "5.1."  # bad destination mailbox, system, syntax: "unknown recipient" (RFC 3463)


@dataclass(frozen=True)
class DsnFailure:
    """One recipient the report says failed, with its status (5.1.1) and the remote diagnostic."""

    recipient: str
    status: str
    diagnostic: str = ""


@dataclass(frozen=True)
class DsnInfo:
    """A delivery-status report: the original sender mailbox and its hard-failed 5.1.x recipients."""

    sender: str  # "" when the report does not say (the null sender of a bounce, or no headers)
    failures: tuple[DsnFailure, ...]
    reporting_mta: str = ""


def _address(value: str | None) -> str:
    """'rfc822; Alice@Example.org' or '<a@b>' -> 'alice@example.org'; '' when it is not an address."""
    if not value:
        return ""
    text = str(value)
    kind, sep, rest = text.partition(";")
    if sep and "@" not in kind:
        text = rest
    pairs = getaddresses([text.strip()])
    address = pairs[0][1].strip().lower() if pairs else ""
    return address if "@" in address and len(address) <= MAX_ADDRESS else ""


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return []
    parser = HeaderParser(policy=email.policy.compat32)
    chunks = text.replace(b"\r\n", b"\n").split(b"\n\n")
    return [parser.parsestr(c.decode("utf-8", "replace")) for c in chunks if c.strip()]


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return HeaderParser(policy=email.policy.compat32).parsestr(raw.decode("utf-8", "replace"))
    return None


def _status_part(report: Message) -> Message | None:
    for part in report.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def parse_dsn(raw: bytes) -> DsnInfo | None:
    """The delivery-status report in `raw`, or None when it is not one (multipart/report; delivery-status)."""
    try:
        report = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # the stdlib parser is lenient; anything it raises means "not a DSN"
        return None
    if report.get_content_type() != "multipart/report":
        return None
    if str(report.get_param("report-type", "", header="content-type")).lower() != "delivery-status":
        return None
    status = _status_part(report)
    if status is None:
        return None
    blocks = _blocks(status)
    if not blocks:
        return None
    per_message, recipients = blocks[0], blocks[1:]
    failures: dict[str, DsnFailure] = {}
    for block in recipients:
        action = _field(block, "Action").lower()
        code = _field(block, "Status").split(" ")[0]
        recipient = _address(_field(block, "Final-Recipient")) or _address(_field(block, "Original-Recipient"))
        if action == "failed" and code.startswith(HARD_UNKNOWN) and recipient and recipient not in failures:
            failures[recipient] = DsnFailure(recipient, code, _field(block, "Diagnostic-Code")[:500])
            if len(failures) >= MAX_FAILURES:
                break
    sender = _address(_field(per_message, "X-Postfix-Sender"))
    original = _original_headers(report)
    if not sender and original is not None:
        sender = _address(_field(original, "Return-Path")) or _address(_field(original, "From"))
    mta = _field(per_message, "Reporting-MTA").partition(";")[2].strip() or _field(per_message, "Reporting-MTA")
    return DsnInfo(sender=sender, failures=tuple(failures.values()), reporting_mta=mta[:255])
