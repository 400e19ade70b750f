"""The ops desk's tables: operators, their web sessions, sign-in attempts, and the dead letters kept for ops."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, LargeBinary, String, Table, Text

from core.db import JSONType, UTCDateTime, metadata

operators = Table(
    "operators",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(8), nullable=False),  # ops, admin
    Column("secret_hash", Text, nullable=False),  # argon2id of the password or the personal token
    Column("secret_kind", String(8), nullable=False),  # password, token
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("last_sign_in_at", UTCDateTime, nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 of the cookie value: a stolen table signs nobody in
    Column("operator", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),  # "name:<operator>" or "addr:<client address>"
    Column("at", UTCDateTime, nullable=False),
    Index("ix_sign_in_attempts_key_at", "key", "at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("queue", String(64), nullable=False),  # the work queue it died in (unprefixed)
    Column("message_id", String(64), nullable=True, index=True),
    Column("type", String(64), nullable=True),
    Column("died_at", UTCDateTime, nullable=False),
    Column("reason", String(32), nullable=False),  # rejected, delivery_limit, expired, ...
    Column("error", Text, nullable=True),  # the handler's error text (x-abuse-desk-error) when it said
    Column("attempts", Integer, nullable=False, default=0),
    Column("case_id", String(32), nullable=True, index=True),
    Column("report_id", String(64), nullable=True),
    Column("headers", JSONType, nullable=False),
    Column("body", LargeBinary, nullable=False),
    # dead: waiting for ops; replayed: put back (replayed_at); discarded; died-again: replayed and dead again
    Column("state", String(16), nullable=False, default="dead"),
    Column("replayed_at", UTCDateTime, nullable=True),
    Column("handled_by", String(64), nullable=True),
    Column("next_id", Integer, nullable=True),  # the row of the same message's next death
    Index("ix_dead_letters_queue_state", "queue", "state"),
)
