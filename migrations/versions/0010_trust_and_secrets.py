"""trust and secrets: the shared link secret, single-use customer answers, receipt counters

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_secrets")),
    )
    op.create_table(
        "link_uses",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_link_uses")),
    )
    op.create_index(op.f("ix_link_uses_case_id"), "link_uses", ["case_id"], unique=False)
    op.create_table(
        "receipt_counts",
        sa.Column("key", sa.String(length=330), nullable=False),
        sa.Column("bucket", core.db.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "bucket", name=op.f("pk_receipt_counts")),
    )


def downgrade() -> None:
    op.drop_table("receipt_counts")
    op.drop_index(op.f("ix_link_uses_case_id"), table_name="link_uses")
    op.drop_table("link_uses")
    op.drop_table("secrets")
