"""outbound guards: hard-failed recipients per sending mailbox (unknown-recipients counting)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_bounces",
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("failed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", "recipient", name="pk_outbound_bounces"),
    )
    with op.batch_alter_table("outbound_bounces", schema=None) as batch_op:
        batch_op.create_index("ix_outbound_bounces_failed_at", ["failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbound_bounces", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_bounces_failed_at")
    op.drop_table("outbound_bounces")
