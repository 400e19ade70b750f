"""The action stage's tables: the suspension ledger, the mail outbox, the outgoing-mail counters and bounces."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, Table, Text

from core.db import UTCDateTime, metadata

suspensions = Table(
    "suspensions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=True),
    Column("case_id", String(32), nullable=True, index=True),
    Column("scope", String(16), nullable=False, default="account"),
    Column("target", String(320), nullable=True),  # mailbox or domain for outgoing-mail suspensions
    Column("backend", String(32), nullable=False, default="ledger"),
    Column("reason", Text, nullable=False, default=""),
    Column("command_id", String(64), nullable=False),
    Column("suspended_at", UTCDateTime, nullable=False),
    Column("lifted_at", UTCDateTime, nullable=True),
    Column("lift_reason", Text, nullable=True),
    # pending: recorded, the remote backend has not confirmed yet; active: in force;
    # failed: the backend refused for good (closed at once: lifted_at is set too); lifted.
    Column("state", String(16), nullable=False, default="active", server_default="active"),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),  # remote calls made
    Column("last_error", Text, nullable=True),
    Index("ix_suspensions_active", "service_id", "lifted_at"),
    Index("ix_suspensions_target", "target", "lifted_at"),
)

mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command_id", String(64), nullable=False, unique=True),  # one mail per command, ever
    Column("case_id", String(32), nullable=True, index=True),
    Column("kind", String(32), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("mail_message_id", String(255), nullable=False),
    Column("raw", LargeBinary, nullable=False),  # rendered once: a retry sends the same bytes
    Column("state", String(16), nullable=False, default="pending"),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_mail_outbox_due", "state", "next_attempt_at"),
)

# Recipients accepted per sending mailbox, one row per minute: the sum of the last 60 rows is the
# sliding hour the Postfix policy service enforces (shared by every replica, survives restarts).
outbound_counts = Table(
    "outbound_counts",
    metadata,
    Column("sender", String(320), nullable=False),
    Column("bucket", UTCDateTime, nullable=False),  # start of the minute
    Column("count", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("sender", "bucket", name="pk_outbound_counts"),
    Index("ix_outbound_counts_bucket", "bucket"),
)

# When a mailbox last crossed its limit and was reported into the pipeline (once per window).
outbound_reports = Table(
    "outbound_reports",
    metadata,
    Column("sender", String(320), primary_key=True),
    Column("reported_at", UTCDateTime, nullable=True),
    Column("report_id", String(64), nullable=True),
)

# Hard-failed (5.1.x) recipients per sending mailbox, from the bounce copies Postfix sends the desk
# (notify_classes = bounce): the distinct recipients failed within the window make the unknown-recipients count.
outbound_bounces = Table(
    "outbound_bounces",
    metadata,
    Column("mailbox", String(320), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),  # the latest failure to this recipient
    PrimaryKeyConstraint("mailbox", "recipient", name="pk_outbound_bounces"),
    Index("ix_outbound_bounces_failed_at", "failed_at"),
)
