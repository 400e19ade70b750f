"""Render notification mails from Jinja2 templates (fr, en) into EmailMessage objects. Pure: no I/O but templates."""

from __future__ import annotations

import email.policy
import functools
import json
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound

from actions import findings, wording
from core.errors import PermanentError
from core.messages import SendNotification

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("fr", "en")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _localtime(value: str | None, tz: str = "Europe/Paris") -> str:
    if not value:
        return ""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Europe/Paris")
    when = datetime.fromisoformat(value).astimezone(zone)
    return when.strftime("%Y-%m-%d %H:%M ") + (when.tzname() or tz)


_env = Environment(
    loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_env.filters["localtime"] = _localtime
_env.filters["category_name"] = wording.category_name  # {{ category | category_name(language) }}
_env.filters["duration"] = wording.duration  # {{ deadline_hours | duration(language) }}
_env.filters["rule_facts"] = wording.rule_facts  # {{ rule_names | rule_facts(language) }}
_env.filters["status_name"] = wording.status_name  # {{ status | status_name(language) }}
_env.filters["finding"] = findings.explain  # {{ tag | finding(language) }} -> what, why, how to fix
_env.filters["ground"] = wording.ground  # {{ text | ground(category, "legal", language) }}


@functools.cache
def _templates(language: str, kind: str) -> tuple[Template, Template]:
    """The template's first line (the subject) and the rest (the body), compiled apart: a value holding a line
    break cannot move text from the subject into the headers or the body."""
    try:
        source, _, _ = _env.loader.get_source(_env, f"{language}/{kind}.txt.j2")  # type: ignore[union-attr]
    except TemplateNotFound as exc:
        raise PermanentError(f"no template {kind!r} in {language}") from exc
    first, _, rest = source.partition("\n")
    return _env.from_string(first), _env.from_string(rest)


def header_safe(text: str, limit: int = 200) -> str:
    """A value fit for a header: control characters (CR, LF, ...) removed, length capped."""
    return _CONTROL.sub(" ", text)[:limit].strip()


def mail_message_id(command_id: str, domain: str) -> str:
    """A stable Message-ID: the same command always yields the same id."""
    return f"<{command_id}@{domain}>"


def render(command: SendNotification, *, sender: str, default_language: str, now: datetime) -> EmailMessage:
    """Build the mail for a notification command; PermanentError if it cannot be built (bad address...)."""
    language = command.language if command.language in LANGUAGES else default_language
    subject_template, body_template = _templates(language, command.kind)
    context = _defaults(command.context) | {"language": language}
    subject = subject_template.render(**context)  # a value with CR/LF stays on this line (header_safe below)
    body = body_template.render(**context)
    # An internationalized address (RFC 6531) is written as UTF-8: the mailer sends it with SMTPUTF8.
    msg = EmailMessage(policy=email.policy.SMTPUTF8) if not command.to.isascii() else EmailMessage()
    try:
        domain = sender.rpartition("@")[2]
        msg["From"] = Address(addr_spec=sender)
        to = header_safe(command.to, 320)
        if to.isascii():
            msg["To"] = Address(addr_spec=to)
        elif to.count("@") == 1 and not any(c.isspace() or c in "<>,;\"" for c in to):
            msg["To"] = to  # Address() refuses a UTF-8 local part; the SMTPUTF8 policy writes it as it is
        else:
            raise ValueError("not a mail address")
    except (ValueError, IndexError) as exc:
        raise PermanentError(f"cannot address a mail to {command.to!r}: {exc}") from exc
    msg["Subject"] = header_safe(subject, 250)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = mail_message_id(command.message_id, domain or "localhost")
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Abuse-Desk-Case"] = header_safe(command.case_id or "", 64)
    msg["X-Abuse-Desk-Kind"] = header_safe(command.kind, 64)  # which of the desk's mails (filters, audits)
    if command.in_reply_to:
        ref = header_safe(command.in_reply_to, 500)
        if ref.startswith("<") and ref.endswith(">"):
            msg["In-Reply-To"] = ref
            msg["References"] = ref
    msg.set_content(body.lstrip("\n"), charset="utf-8", cte="quoted-printable")
    if isinstance(context.get("statement"), dict):  # the machine-readable statement of reasons (Art. 17 DSA)
        data = json.dumps(context["statement"], ensure_ascii=False, indent=2, sort_keys=True).encode()
        msg.add_attachment(data, maintype="application", subtype="json", filename="statement-of-reasons.json")
    if context.get("incidents_csv"):  # the customer's own incidents, all of them, when the mail quotes only some
        msg.add_attachment(str(context["incidents_csv"]), subtype="csv", charset="utf-8", filename="incidents.csv")
    return msg


def wire_bytes(msg: EmailMessage) -> bytes:
    """The exact bytes sent (and DKIM-signed): CRLF line ends, long lines folded by the email package."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _defaults(context: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "organisation": "",
        "support_url": "",
        "customer_name": "",
        "customer_timezone": "Europe/Paris",
        "service_ids": [],
        "indicators": [],
        "deadline_at": None,
        "warning_hours": 48,
        "evidence": "",
        "subject": "",
        "reasons": [],
        "outcome": "",
        "status": "",
        "category": "",
        "case_id": "",
        "timezone": "Europe/Paris",
        "sla_due_at": None,
        "sla_state": "",
        "action": "",
        "reason": "",
        "command_id": "",
        "statement_url": None,
        "statement": None,
        "passes": [],
        "failures": [],
        "answer": "",
        "answer_text": "",
        "missing_elements": [],
        "incident_rows": [],
        "incident_total": 0,
        "incidents_csv": None,
        "findings": [],
        "finding_texts": {},
        "operator_text": None,
        "automation": "fully",
        "origin": "notice",
        # What the facts support (the policy fills these; the defaults claim nothing)
        "confirmation": "none",  # strong, weak, none: "confirmed" is said only when strong
        "deadline_hours": None,  # the case's real warning period (48, 168...); warning_hours when absent
        "severity": "",
        "urgent": False,
        "rejection_reason": "",  # not-ours, not-enough-facts, decided-by-person
        "rule_names": [],  # the fired rules: the facts, told in the reader's language
        "suspended_services": [],  # a lift: what this case lifted
        "still_suspended": [],  # a lift: services another open case still holds suspended
        "still_suspended_cases": [],
        "contest_outcome": "",  # upheld, reversed
        "contest_text": "",
        "held_at": None,
        "review_due_at": None,
        "contested_at": None,
        "cause": "",
        "flags": [],
        "customer_id": "",
    }
    merged = base | context
    if merged["deadline_hours"] is None:
        merged["deadline_hours"] = merged["warning_hours"]
    return merged
