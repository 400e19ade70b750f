"""DSA: case origin and timing, statements of reasons, customer answers and contests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 03:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("automation", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("received_at", core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("effect_at", core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("order_due_at", core.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("extension_used", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("issued_at", core.db.UTCDateTime(), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("ground", sa.String(length=16), nullable=False),
        sa.Column("automated", sa.String(length=16), nullable=False),
        sa.Column("data", core.db.JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
    )
    op.create_index(op.f("ix_statements_case_id"), "statements", ["case_id"], unique=False)
    op.create_table(
        "customer_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", core.db.JSONType, nullable=True),
        sa.Column("recheck_passed", sa.Boolean(), nullable=True),
        sa.Column("sla_due_at", core.db.UTCDateTime(), nullable=True),
        sa.Column("decided_at", core.db.UTCDateTime(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_answers")),
    )
    op.create_index(op.f("ix_customer_answers_case_id"), "customer_answers", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_answers_case_id"), table_name="customer_answers")
    op.drop_table("customer_answers")
    op.drop_index(op.f("ix_statements_case_id"), table_name="statements")
    op.drop_table("statements")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for column in ("extension_used", "order_due_at", "effect_at", "received_at", "automation", "origin"):
            batch_op.drop_column(column)
