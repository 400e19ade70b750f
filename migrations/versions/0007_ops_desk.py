"""ops desk: operators, web sessions, sign-in attempts, dead letters

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("secret_kind", sa.String(length=8), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("disabled_at", core.db.UTCDateTime(), nullable=True),
        sa.Column("last_sign_in_at", core.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_operators")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_operator"), "web_sessions", ["operator"], unique=False)
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index("ix_sign_in_attempts_key_at", "sign_in_attempts", ["key", "at"], unique=False)
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("died_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=True),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.Column("headers", core.db.JSONType, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("replayed_at", core.db.UTCDateTime(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("next_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(op.f("ix_dead_letters_message_id"), "dead_letters", ["message_id"], unique=False)
    op.create_index(op.f("ix_dead_letters_case_id"), "dead_letters", ["case_id"], unique=False)
    op.create_index("ix_dead_letters_queue_state", "dead_letters", ["queue", "state"], unique=False)


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("sign_in_attempts")
    op.drop_table("web_sessions")
    op.drop_table("operators")
