"""Versioned message contracts: events (past tense) and commands (imperative), with their envelope."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from core import packing
from core.errors import ContractError
from core.report import AbuseReport, Envelope, Incident
from core.steps import Steps, at_once


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_message_id() -> str:
    """A fresh random message id."""
    return uuid.uuid4().hex


class Message(BaseModel):
    """Envelope fields every message carries (design §6). Consumers ignore unknown fields."""

    model_config = ConfigDict(extra="ignore", ser_json_bytes="base64", val_json_bytes="base64")

    TYPE: ClassVar[str] = ""
    KIND: ClassVar[Literal["event", "command"]] = "event"

    type: str = ""
    schema_version: int = 1
    message_id: str = Field(default_factory=new_message_id)
    occurred_at: datetime = Field(default_factory=utcnow)
    report_id: str | None = None
    case_id: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if not self.type:
            self.type = self.TYPE
        elif self.type != self.TYPE:
            raise ContractError(f"message type {self.type!r} given to {type(self).__name__}")

    def encoding(self) -> Steps[bytes]:
        """The JSON body as published on the broker, in steps (core.steps): one here, a line each for a bulk
        report's (ReportParsed)."""
        yield from ()
        return self.model_dump_json().encode()

    def to_bytes(self) -> bytes:
        """The body as published on the broker: JSON (gzip-packed when another process encoded it so, see
        `ReportParsed.encoded_elsewhere`; the broker packs the others itself)."""
        return at_once(self.encoding())


# --- events ---------------------------------------------------------------------------------------


class ReportReceived(Message):
    """A raw mail accepted by the SMTP listener (the bytes exactly as received)."""

    TYPE: ClassVar[str] = "report.received.v1"
    raw: bytes
    envelope: Envelope
    # The exact bytes of MAIL FROM / EHLO when they were not UTF-8 (the envelope then shows them as \xNN).
    mail_from_bytes: bytes | None = None
    helo_bytes: bytes | None = None


INCIDENTS_PER_LINE = 500  # a bulk report's body: its incidents this many per line (a few ms to read each)
_INCIDENTS = TypeAdapter(list[Incident])


class ReportParsed(Message):
    """A raw report turned into a normalized AbuseReport."""

    TYPE: ClassVar[str] = "report.parsed.v1"
    report: AbuseReport
    incident_lines: int = 0  # on the broker only: lines of incidents that follow this one (see encoding)
    _body: bytes | None = PrivateAttr(default=None)  # encoded by the process that parsed it (see encoded_elsewhere)

    @classmethod
    def encoded_elsewhere(cls, head: bytes, body: bytes) -> ReportParsed:
        """A report another process parsed and encoded (ingest.apart): `head` is this message without its
        incidents, to read here; `body` (packed or not) is what `encoding` gives, as it came, whatever is changed
        on the message afterwards (a copy keeps it too: nothing here changes one)."""
        message = cls.model_validate_json(head)
        message._body = body
        return message

    def head(self) -> ReportParsed:
        """This message without its incidents (nor a body encoded elsewhere): what `encoded_elsewhere` reads."""
        head = self.model_copy(update={"report": self.report.model_copy(update={"incidents": []})})
        head._body = None
        return head

    def encoding(self) -> Steps[bytes]:
        """JSON; a report of more than `INCIDENTS_PER_LINE` incidents as lines, one per step: first this message
        with `incident_lines` set and no incidents, then its incidents `INCIDENTS_PER_LINE` per line (a JSON
        array each). A reader decodes a line per step too, so a 100,000-row report does not hold the event loop
        of the process writing or reading it for the second one whole document takes."""
        if self._body is not None:
            yield from ()
            return self._body
        incidents = self.report.incidents
        if len(incidents) <= INCIDENTS_PER_LINE:
            return (yield from super().encoding())
        count = -(-len(incidents) // INCIDENTS_PER_LINE)
        head = self.head()
        head.incident_lines = count
        lines = [head.model_dump_json().encode()]
        for start in range(0, len(incidents), INCIDENTS_PER_LINE):
            yield
            lines.append(_INCIDENTS.dump_json(incidents[start : start + INCIDENTS_PER_LINE]))
        return b"\n".join(lines)


class ServiceSuspended(Message):
    """Services were suspended by a backend (or already were)."""

    TYPE: ClassVar[str] = "service.suspended.v1"
    customer_id: str | None = None
    service_ids: list[str] = Field(default_factory=list)
    backend: str = ""
    command_id: str = ""


class ServiceLifted(Message):
    """A suspension was lifted by a backend."""

    TYPE: ClassVar[str] = "service.lifted.v1"
    customer_id: str | None = None
    service_ids: list[str] = Field(default_factory=list)  # restored on the platform (no other case held them)
    still_suspended: list[str] = Field(default_factory=list)  # the case let go; another open case still holds them
    backend: str = ""
    command_id: str = ""


class NotificationSent(Message):
    """A notification mail was delivered to the mail-out (Maildir or relay)."""

    TYPE: ClassVar[str] = "notification.sent.v1"
    kind: str
    to: str
    mail_message_id: str
    command_id: str = ""


class ActionFailed(Message):
    """An action could not be carried out; ops must look at the case."""

    TYPE: ClassVar[str] = "action.failed.v1"
    action: str
    reason: str
    command_id: str = ""


class BounceFailure(BaseModel):
    """One recipient a bounce says failed for good (a 5.1.x status: unknown user, domain or address)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    recipient: str
    status: str
    diagnostic: str = ""


class BounceReceived(Message):
    """A copy of a bounce of our customers' outgoing mail (Postfix bounce_notice_recipient), parsed."""

    TYPE: ClassVar[str] = "bounce.received.v1"
    mailbox: str  # the original mail's sender
    failures: list[BounceFailure] = Field(default_factory=list)
    failed_at: datetime = Field(default_factory=utcnow)  # when the desk received the bounce
    reporting_mta: str = ""


# --- commands -------------------------------------------------------------------------------------


class SuspendService(Message):
    """Stop the named services (the account's services, or one mailbox/domain)."""

    TYPE: ClassVar[str] = "service.suspend.v1"
    KIND: ClassVar[Literal["event", "command"]] = "command"
    customer_id: str
    service_ids: list[str]
    scope: Literal["account", "service", "mailbox", "domain"] = "account"
    reason: str = ""
    # Mailboxes / domains whose outgoing mail stops (scope mailbox or domain; with account scope, optional
    # extras). The ledger records one row per target: that is what the Postfix policy service refuses.
    targets: list[str] = Field(default_factory=list)


class LiftSuspension(Message):
    """Restore what a case suspended (support lifted it, with a reason)."""

    TYPE: ClassVar[str] = "service.lift.v1"
    KIND: ClassVar[Literal["event", "command"]] = "command"
    customer_id: str
    service_ids: list[str]
    reason: str = ""


class SendNotification(Message):
    """Write one mail to one person: the kind names the template, context fills it."""

    TYPE: ClassVar[str] = "notification.send.v1"
    KIND: ClassVar[Literal["event", "command"]] = "command"
    kind: str
    to: str
    language: str = "fr"
    in_reply_to: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


Publish = Callable[[Message], Awaitable[None]]  # how every stage hands a message to the broker


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        ReportReceived,
        ReportParsed,
        ServiceSuspended,
        ServiceLifted,
        NotificationSent,
        ActionFailed,
        BounceReceived,
        SuspendService,
        LiftSuspension,
        SendNotification,
    )
}


_LINES_HEAD = b'{"type":"report.parsed.v1"'
_TYPE_FIRST = re.compile(rb'\s*\{\s*"type"\s*:\s*"([a-z0-9._-]{1,80})"\s*,')


def decode_message(body: bytes) -> Message:
    """Parse a broker body into its message class; ContractError when it is not one of ours."""
    return at_once(decoding(body))


def _lines(body: bytes) -> Steps[list[bytes]]:
    """The body's lines, unpacked first when it is packed (core.packing): a step per chunk unpacked, and no copy of
    the whole body made on the way for a body of many lines (for a bulk report's 88 MB, three copies were a tenth
    of a second)."""
    if not packing.is_packed(body):
        return body.split(b"\n")
    lines: list[bytes] = []
    pending: list[bytes] = []  # the start of a line that goes on in the next chunk
    for chunk in packing.chunks(body):
        first, *more = chunk.split(b"\n")
        pending.append(first)
        if more:
            lines.append(b"".join(pending))
            lines += more[:-1]
            pending = [more[-1]]
        yield
    lines.append(b"".join(pending))
    return lines


def _is_head(lines: list[bytes]) -> bool:
    """Whether the lines are a body of lines (ReportParsed's for a bulk report), not one JSON document."""
    return len(lines) > 1 and lines[0].lstrip().startswith(_LINES_HEAD) and lines[0].rstrip().endswith(b"}")


def _document(body: bytes, lines: list[bytes]) -> bytes:
    """The body as one JSON document: itself, or its unpacked lines joined again when it came packed."""
    return b"\n".join(lines) if packing.is_packed(body) else body


def head_of(body: bytes) -> dict[str, Any]:
    """A body's JSON object without decoding it into a message (a body of lines: its first line); {} if none."""
    try:
        lines = at_once(_lines(body))
        parsed = json.loads(lines[0] if _is_head(lines) else _document(body, lines))
    except (ContractError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def decoding(body: bytes) -> Steps[Message]:
    """decode_message in steps: a packed body (core.packing) unpacked a chunk per step; a body of lines
    (ReportParsed's for a bulk report) a line per step; any other body (a pretty-printed one included) is one JSON
    document, in one step."""
    lines = yield from _lines(body)
    try:
        if _is_head(lines):
            message = ReportParsed.model_validate_json(lines[0])
            incidents = lines[1:] if message.incident_lines else []
            if len(incidents) != message.incident_lines:
                raise ValueError(f"{message.incident_lines} lines of incidents announced, {len(incidents)} found")
            for line in incidents:
                yield
                message.report.incidents.extend(_INCIDENTS.validate_json(line))
            message.incident_lines = 0
            return message
        whole = _document(body, lines)
        first = _TYPE_FIRST.match(whole)  # ours put the type first: a big report need not be parsed twice
        cls = MESSAGE_TYPES[first.group(1).decode() if first else json.loads(whole)["type"]]
        return cls.model_validate_json(whole)
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError(f"not a valid abuse-desk message: {exc}") from exc
