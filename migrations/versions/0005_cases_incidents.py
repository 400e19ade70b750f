"""cases and incidents: a report attaches to every case it concerns; incidents; held outbox rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("case_reports", schema=None) as batch_op:
        batch_op.drop_constraint("pk_case_reports", type_="primary")
        batch_op.create_primary_key("pk_case_reports", ["report_id", "case_id"])
        batch_op.add_column(sa.Column("dkim_domain", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("confirmation", sa.String(length=8), nullable=True))
    op.create_index("ix_cases_reporter_lower", "cases", [sa.text("lower(reporter)")], unique=False)
    with op.batch_alter_table("policy_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_policy_outbox_case_id"), ["case_id"], unique=False)
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("protocol", sa.String(length=16), nullable=True),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("observed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_seen", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index("ix_incidents_case_key", "incidents", ["case_id", "key"], unique=False)
    op.create_table(
        "report_summaries",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("reporter", sa.Text(), nullable=True),
        sa.Column("incident_count", sa.Integer(), nullable=False),
        sa.Column("not_ours", sa.Integer(), nullable=False),
        sa.Column("case_ids", JSON, nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_report_summaries")),
    )


def downgrade() -> None:
    op.drop_table("report_summaries")
    op.drop_index("ix_incidents_case_key", table_name="incidents")
    op.drop_table("incidents")
    with op.batch_alter_table("policy_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_outbox_case_id"))
        batch_op.drop_column("held")
        batch_op.drop_column("case_id")
    op.drop_index("ix_cases_reporter_lower", table_name="cases")
    with op.batch_alter_table("case_reports", schema=None) as batch_op:
        batch_op.drop_column("confirmation")
        batch_op.drop_column("dkim_domain")
        batch_op.drop_constraint("pk_case_reports", type_="primary")
        batch_op.create_primary_key("pk_case_reports", ["report_id"])
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("incident_count")
