"""Bounce copies addressed to the desk's bounce-notice address: recognised before parsing, sent on to be counted."""

from __future__ import annotations

from collections.abc import Collection

from core.messages import BounceFailure, BounceReceived, ReportReceived
from ingest.formats.dsn import parse_dsn


def as_bounce(message: ReportReceived, address: str, peers: Collection[str]) -> BounceReceived | None:
    """The bounce event when the mail is a DSN to `address` handed over by one of `peers` (our own Postfix).

    None otherwise: the mail goes the way of every report. Only a trusted peer's mail is counted, so nobody
    can get a mailbox reported by sending the desk forged bounces.
    """
    address = address.strip().lower()
    if not address or address not in {r.strip().lower() for r in message.envelope.rcpt_tos}:
        return None
    if message.envelope.peer not in peers:
        return None
    info = parse_dsn(message.raw)
    if info is None:
        return None
    return BounceReceived(
        report_id=message.report_id,
        mailbox=info.sender,
        failures=[
            BounceFailure(recipient=f.recipient, status=f.status, diagnostic=f.diagnostic) for f in info.failures
        ],
        failed_at=message.envelope.received_at or message.occurred_at,
        reporting_mta=info.reporting_mta,
    )
