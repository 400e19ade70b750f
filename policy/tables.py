"""The policy stage's tables: inventory (customers, services, resources) and cases with history, deadlines, outbox."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from core.db import JSONType, UTCDateTime, metadata

customers = Table(
    "customers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False, default=""),
    Column("email", Text, nullable=False, default=""),
    Column("phone", Text, nullable=False, default=""),
    Column("address", Text, nullable=False, default=""),
    Column("country", String(8), nullable=False, default=""),
    Column("language", String(8), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=True),
    Column("identity_verified", Boolean, nullable=False, default=False),
    Column("extra", JSONType, nullable=True),
)

services = Table(
    "services",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("kind", String(64), nullable=False, default=""),
    Column("name", Text, nullable=False, default=""),
)

resources = Table(
    "resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False, index=True),
    Column("type", String(16), nullable=False),  # ip, cidr, domain, mailbox
    Column("value", String(320), nullable=False),  # normalized: compressed IP, network, lower-case name
    Column("valid_from", UTCDateTime, nullable=True),
    Column("valid_to", UTCDateTime, nullable=True),
    # ip and cidr (NULL for names): family 4/6, prefix length (32/128 for an ip), first and last address as 16
    # big-endian bytes (BLOB/bytea compare bytewise on both backends). Lookups probe (family, prefix, start) by
    # equality, once per prefix length the inventory holds (policy/inventory.py).
    Column("addr_family", SmallInteger, nullable=True),
    Column("prefix_len", SmallInteger, nullable=True),
    Column("range_start", LargeBinary(16), nullable=True),
    Column("range_end", LargeBinary(16), nullable=True),
    UniqueConstraint("service_id", "type", "value", "valid_from", name="uq_resources_assignment"),
    Index("ix_resources_type_value", "type", "value"),
    Index("ix_resources_range", "addr_family", "prefix_len", "range_start"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("category", String(32), nullable=False),
    Column("customer_id", String(64), nullable=True, index=True),
    Column("service_ids", JSONType, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sla_due_at", UTCDateTime, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("warned_at", UTCDateTime, nullable=True),
    Column("report_count", Integer, nullable=False, default=1),
    Column("incident_count", Integer, nullable=False, default=0),  # incidents attached (repeats counted)
    Column("rules", JSONType, nullable=False),
    Column("reporter", Text, nullable=True),
    Column("reporter_kind", String(16), nullable=True),
    Column("language", String(8), nullable=True),
    Column("complaint_message_id", Text, nullable=True),
    Column("needs_attention", Boolean, nullable=False, default=False),
    Column("confirmation", String(8), nullable=True),  # strong, weak, none (policy/model.py Confirmation)
    Column("severity", String(16), nullable=True),
    Column("flags", JSONType, nullable=True),  # legal-escalation, preserve-evidence, ...
    # The people on both ends (DSA): where the case came from and how it was decided.
    Column("origin", String(24), nullable=True),  # notice, automated-notice, own-initiative, authority-order
    Column("automation", String(16), nullable=True),  # fully (rules alone), partially (a person confirmed)
    Column("received_at", UTCDateTime, nullable=True),  # the first report's arrival
    Column("effect_at", UTCDateTime, nullable=True),  # when the first action (warning, restriction) took effect
    Column("order_due_at", UTCDateTime, nullable=True),  # authority orders: effect due by then
    Column("extension_used", Boolean, nullable=False, default=False),
)
Index("ix_cases_reporter_lower", func.lower(cases.c.reporter))  # a reporter's history, case-insensitive

case_reports = Table(
    "case_reports",
    metadata,
    # A report attaches once to each case it concerns (one per customer and category it names): redelivery is a no-op.
    Column("report_id", String(64), primary_key=True),
    Column("case_id", String(32), primary_key=True, index=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("reporter_kind", String(16), nullable=True),
    Column("dkim_domain", String(255), nullable=True),  # the aligned DKIM domain that vouched for it (corroboration)
    # How well its facts were established when it joined: only strongly confirmed reports count as "new since the
    # warning" (a stranger quoting a case reference cannot block the customer's "fixed" or tip a case over).
    Column("confirmation", String(8), nullable=True),
    Column("report", JSONType, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False),
    Column("report_id", String(64), nullable=False),  # the report that first named it
    Column("key", String(400), nullable=False),  # address or name, port, type: what makes a repeat a repeat
    Column("ip", String(64), nullable=True),
    Column("port", Integer, nullable=True),
    Column("protocol", String(16), nullable=True),
    Column("tag", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Column("domain", String(255), nullable=True),
    Column("email", String(320), nullable=True),
    Column("observed_at", UTCDateTime, nullable=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("evidence", Text, nullable=False, default=""),
    Index("ix_incidents_case_key", "case_id", "key"),
)

report_summaries = Table(
    "report_summaries",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("format", String(32), nullable=False),
    Column("reporter", Text, nullable=True),
    Column("incident_count", Integer, nullable=False, default=0),
    Column("not_ours", Integer, nullable=False, default=0),  # incidents about resources we did not hold
    Column("case_ids", JSONType, nullable=False),
)

case_history = Table(
    "case_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),  # decision, ops, action
    Column("outcome", String(32), nullable=True),
    Column("rules", JSONType, nullable=False),  # [{"name": ..., "reason": ...}]
    Column("detail", JSONType, nullable=False),
)

deadlines = Table(
    "deadlines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # warning-expiry
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False, default="pending"),  # pending, done, cancelled
    Column("fired_at", UTCDateTime, nullable=True),
    Index("ix_deadlines_state_due", "state", "due_at"),
)

outbox = Table(
    "policy_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True, index=True),
    Column("case_id", String(32), nullable=True, index=True),
    # Held until the platform confirmed the case's suspension (statement of reasons, "suspended" answers).
    Column("held", Boolean, nullable=False, default=False),
)

statements = Table(
    "statements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False, index=True),
    Column("customer_id", String(64), nullable=True),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("measure", String(32), nullable=False),
    Column("ground", String(16), nullable=False),  # contractual, legal, both
    Column("automated", String(16), nullable=False),
    Column("data", JSONType, nullable=False),  # the machine-readable statement of reasons (Art. 17 DSA)
)

customer_answers = Table(
    "customer_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # fixed, contest, more-time, help
    Column("text", Text, nullable=False, default=""),
    Column("data", JSONType, nullable=True),  # cause, measures, re-check details
    Column("recheck_passed", Boolean, nullable=True),
    Column("sla_due_at", UTCDateTime, nullable=True),  # contests: when a person must have decided
    Column("decided_at", UTCDateTime, nullable=True),
    Column("decision", String(16), nullable=True),  # contests: upheld, reversed
)

ops_alerts = Table(  # policy/alerts.py: one ops alert per case and cause, ever
    "ops_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(32), nullable=False),
    Column("cause", String(32), nullable=False),  # deadline-held, contest-overdue, sla-due, action-failed, urgent
    Column("at", UTCDateTime, nullable=False),
    Column("message_id", String(64), nullable=False),  # the alert mail's command
    UniqueConstraint("case_id", "cause", name="uq_ops_alerts_case_cause"),
)

# Trust and secrets (migration 0010): secrets every replica shares, single-use customer answers, receipt counters.
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),  # e.g. "link_secret"
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

link_uses = Table(  # policy/link_store.py: a form nonce, or "one answer of this kind through this link"
    "link_uses",
    metadata,
    Column("key", String(64), primary_key=True),  # a SHA-256 digest (policy/links.py), never the token itself
    Column("case_id", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

receipt_counts = Table(  # policy/receipt_limits.py: receipts per address and per domain, one row per hour
    "receipt_counts",
    metadata,
    Column("key", String(330), primary_key=True),  # "address:a@b.example" or "domain:b.example"
    Column("bucket", UTCDateTime, primary_key=True),  # the hour (UTC)
    Column("count", Integer, nullable=False, default=0),
)
