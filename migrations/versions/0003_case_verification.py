"""cases: verification level, severity and flags of the latest decision

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 02:45:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmation", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("severity", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("flags", core.db.JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("flags")
        batch_op.drop_column("severity")
        batch_op.drop_column("confirmation")
