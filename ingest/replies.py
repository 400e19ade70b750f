"""The SMTP replies of the abuse@ listener as one table: each cause maps to one reply and one metric label."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Cause(StrEnum):
    """Why the listener answers what it answers (the value is the metric label of `smtp_reports_total`)."""

    ACCEPTED = "accepted"  # DATA published, persistent, and the broker confirmed it
    RECIPIENT_OK = "recipient-ok"  # RCPT of an abuse address
    NOT_ABUSE_ADDRESS = "rejected-recipient"  # RCPT of anything else: never an open relay
    TOO_MANY_RECIPIENTS = "too-many-recipients"
    TOO_BIG = "too-big"
    TEMPORARY_FAILURE = "tempfail"  # broker down, confirm timeout, unroutable, nack, any bug in a hook
    SHUTTING_DOWN = "shutting-down"


@dataclass(frozen=True)
class Reply:
    """One row: basic code, RFC 3463 enhanced code, text (str.format fields), metric label (None: not counted)."""

    code: int
    enhanced: str
    text: str
    metric: str | None

    def render(self, **fields: object) -> str:
        """The reply line aiosmtpd sends, e.g. `250 2.0.0 queued as 1f2e...`."""
        return f"{self.code} {self.enhanced} {self.text.format(**fields)}"


REPLIES: Final[dict[Cause, Reply]] = {
    Cause.ACCEPTED: Reply(250, "2.0.0", "queued as {report_id}", Cause.ACCEPTED.value),
    Cause.RECIPIENT_OK: Reply(250, "2.1.5", "OK", None),
    Cause.NOT_ABUSE_ADDRESS: Reply(
        550, "5.1.1", "<{address}>: recipient not accepted here (abuse desk only)", Cause.NOT_ABUSE_ADDRESS.value
    ),
    Cause.TOO_MANY_RECIPIENTS: Reply(452, "4.5.3", "too many recipients", Cause.TOO_MANY_RECIPIENTS.value),
    Cause.TOO_BIG: Reply(552, "5.3.4", "message too big (limit {limit} bytes)", Cause.TOO_BIG.value),
    Cause.TEMPORARY_FAILURE: Reply(
        451, "4.3.0", "temporary failure, please retry later", Cause.TEMPORARY_FAILURE.value
    ),
    Cause.SHUTTING_DOWN: Reply(421, "4.3.2", "service shutting down, please retry later", Cause.SHUTTING_DOWN.value),
}


# Replies aiosmtpd writes by itself, answered with our row instead (its size reply has no enhanced code).
AIOSMTPD_OWN: Final[dict[str, Cause]] = {"552 Error": Cause.TOO_BIG}


def reply(cause: Cause, **fields: object) -> str:
    """The reply line for a cause."""
    return REPLIES[cause].render(**fields)


def printable(value: str, limit: int = 200) -> str:
    """A client-supplied value safe to echo in a reply: bytes that were not UTF-8 shown as \\xNN, cut to `limit`."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:limit]
