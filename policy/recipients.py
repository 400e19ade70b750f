"""May we mail this person, and where (pure): the one receipt rule (RFC 3834, no backscatter), clean subjects.

A receipt goes to the complainant's address when the envelope sender and the header From agree. When they
disagree, either may be a third party's address planted by whoever sent the mail, so the receipt goes to the
envelope sender (RFC 3834 §4) only if the header From is authenticated (aligned DKIM, or SPF for an aligned
envelope domain) and the envelope sender belongs to that organization or passed SPF; otherwise nobody gets
one. Null senders, Auto-Submitted and list mail, feedback loops and other machines never get an answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from core import domains
from core.report import AbuseReport

# Formats only programs send: never answered, whatever the reporter kind says.
MACHINE_FORMATS = frozenset({"arf", "xarf-v0", "xarf-v4", "spamcop", "shadowserver", "dmarc-failure", "outbound-limit"})
# Local parts that take no mail or belong to list and bounce machinery (RFC 3834 §2, RFC 2142).
_NO_REPLY = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|owner-.+|.+-request|"
    r".+-owner|listserv|majordomo|noreply[-+].*|bounce[-+].*)$",
    re.I,
)
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\]+$")
SUBJECT_LIMIT = 120


def _valid(address: str | None) -> bool:
    return bool(address) and len(address or "") <= 320 and bool(_ADDRESS.match(address or ""))


def null_sender(report: AbuseReport) -> bool:
    """The mail came with MAIL FROM:<> (a bounce or another robot). Only known for mail the listener took."""
    return report.envelope.received_at is not None and report.envelope.mail_from.strip() in ("", "<>")


def _from_authenticated(report: AbuseReport) -> bool:
    author = domains.normalize_domain(report.auth.from_domain) if report.auth.checked else ""
    if not author:
        return False
    if report.auth.dkim_aligned and any(domains.aligned(d, author) for d in report.auth.dkim_pass):
        return True
    return report.auth.spf == "pass" and domains.aligned(domains.domain_of(report.envelope.mail_from), author)


def _choose(report: AbuseReport) -> tuple[str | None, str]:
    """(the address a receipt may go to, or None with the reason)."""
    header = (report.reporter or "").strip()
    envelope = report.envelope.mail_from.strip().strip("<>")
    if not header:
        return None, "the mail names no sender"
    if report.envelope.received_at is None and not envelope:
        return header, "the sender (no SMTP envelope: entered or parsed offline)"
    if domains.same_address(header, envelope):
        return header, "the sender (envelope and header From agree)"
    if not _from_authenticated(report):
        return None, (
            "the envelope sender and the header From disagree and the From is not authenticated:"
            " a receipt could be pointed at a third party"
        )
    author = domains.normalize_domain(report.auth.from_domain)
    if domains.aligned(domains.domain_of(envelope), author) or report.auth.spf == "pass":
        return envelope, "the envelope sender of an authenticated mail (RFC 3834)"
    # A forwarded or list-relayed mail: the envelope is not the author's, but the From is proven — it is the author.
    return header, "the authenticated author (the envelope sender is a relay's, not theirs)"


def may_mail(report: AbuseReport | None, own_addresses: Collection[str] = ()) -> tuple[bool, str]:
    """THE rule for mailing a complainant anything automatically: (allowed, why in plain words)."""
    if report is None:
        return False, "no report"
    if report.automated:
        return False, "automated mail (Auto-Submitted, list or bulk mail, null Return-Path): RFC 3834"
    if report.reporter_kind not in ("person", "unknown") or report.format in MACHINE_FORMATS:
        return False, "feedback loops and programs get no answer"
    if null_sender(report):
        return False, "null envelope sender"
    address, why = _choose(report)
    if address is None:
        return False, why
    if not _valid(address):
        return False, "not a usable mail address"
    if _NO_REPLY.match(address.rsplit("@", 1)[0]):
        return False, "an address that takes no answers (RFC 3834 §2)"
    if any(domains.same_address(address, own) for own in own_addresses):
        return False, "one of our own addresses (a mail loop)"
    return True, why


def receipt_address(report: AbuseReport | None, own_addresses: Collection[str] = ()) -> str | None:
    """Where the complainant's receipt (and later answers) may go; None when nobody may be mailed."""
    allowed, _ = may_mail(report, own_addresses)
    if not allowed or report is None:
        return None
    address, _ = _choose(report)
    return address


def clean_subject(text: str | None, limit: int = SUBJECT_LIMIT) -> str:
    """A subject safe to quote: one line, no control or format characters, spaces folded, cut at `limit`."""
    if not text:
        return ""
    kept = "".join(" " if unicodedata.category(c)[0] in ("C", "Z") else c for c in text)
    line = " ".join(kept.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rstrip()
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
