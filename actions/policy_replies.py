"""The Postfix policy service's replies, one table: each cause maps to one action, code, text and metric label."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Cause(StrEnum):
    """Why the policy service answers what it answers."""

    NOT_ASKED = "not-asked"  # not an smtpd_access_policy request, or not at RCPT: nothing to check
    NOT_OURS = "not-ours"  # neither a login nor one of our mailboxes: inbound mail, never counted
    ACCEPTED = "accepted"  # counted, under every limit
    SUSPENDED_SENDER = "suspended-sender"  # the login, the mailbox, its domain or its account is suspended
    SUSPENDED_CLIENT = "suspended-client"  # no login, the client IP belongs to a suspended service
    RECIPIENT_LIMIT = "recipient-limit"  # the login's, mailbox's or customer's recipients in the window
    FAILED_OPEN = "failed-open"  # an internal failure, [outbound] fail_open = true
    FAILED_CLOSED = "failed-closed"  # an internal failure, fail_open = false


@dataclass(frozen=True)
class Reply:
    """One row: the action (a Postfix access(5) action or an SMTP code), the enhanced code, the text."""

    action: str
    enhanced: str
    text: str
    metric: str

    def render(self, **fields: object) -> str:
        """The `action=` value, with the row's fields filled in (values are cut at line ends)."""
        clean = {k: " ".join(str(v).split())[:320] for k, v in fields.items()}
        return " ".join(p for p in (self.action, self.enhanced, self.text.format(**clean)) if p)


REPLIES: dict[Cause, Reply] = {
    Cause.NOT_ASKED: Reply("DUNNO", "", "", "not-asked"),
    Cause.NOT_OURS: Reply("DUNNO", "", "", "not-ours"),
    Cause.ACCEPTED: Reply("DUNNO", "", "", "accepted"),
    # An explicit 550: a bare REJECT would answer 554.
    Cause.SUSPENDED_SENDER: Reply("550", "5.7.1", "outgoing mail from {domain} has been suspended", "suspended"),
    Cause.SUSPENDED_CLIENT: Reply("550", "5.7.1", "outgoing mail from {domain} has been suspended", "suspended-ip"),
    Cause.RECIPIENT_LIMIT: Reply(
        "450",
        "4.7.1",
        "{who} has sent to {limit} recipients in the last {minutes} minutes, try again later",
        "deferred",
    ),
    Cause.FAILED_OPEN: Reply("DUNNO", "", "", "error"),
    Cause.FAILED_CLOSED: Reply("DEFER_IF_PERMIT", "4.3.0", "policy service unavailable", "error"),
}


def reply(cause: Cause, **fields: object) -> str:
    """The `action=` value for a cause."""
    return REPLIES[cause].render(**fields)
