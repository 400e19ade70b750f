"""inventory ranges: address family, prefix length and first/last address of ip and cidr resources, indexed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00
"""

import ipaddress

import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("addr_family", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("prefix_len", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("range_start", sa.LargeBinary(length=16), nullable=True))
        batch_op.add_column(sa.Column("range_end", sa.LargeBinary(length=16), nullable=True))
        batch_op.create_index("ix_resources_range", ["addr_family", "prefix_len", "range_start"], unique=False)
    # Fill the rows imported before this revision (the import fills new ones).
    table = sa.table(
        "resources",
        sa.column("id", sa.Integer),
        sa.column("type", sa.String),
        sa.column("value", sa.String),
        sa.column("addr_family", sa.SmallInteger),
        sa.column("prefix_len", sa.SmallInteger),
        sa.column("range_start", sa.LargeBinary),
        sa.column("range_end", sa.LargeBinary),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(table.c.id, table.c.value).where(table.c.type.in_(["ip", "cidr"]))).all()
    updates = []
    for rid, value in rows:
        net = ipaddress.ip_network(value, strict=False)
        updates.append(
            {
                "rid": rid,
                "fam": net.version,
                "plen": net.prefixlen,
                "rs": int(net.network_address).to_bytes(16, "big"),
                "re": int(net.broadcast_address).to_bytes(16, "big"),
            }
        )
    stmt = (
        table.update()
        .where(table.c.id == sa.bindparam("rid"))
        .values(
            addr_family=sa.bindparam("fam"),
            prefix_len=sa.bindparam("plen"),
            range_start=sa.bindparam("rs"),
            range_end=sa.bindparam("re"),
        )
    )
    for start in range(0, len(updates), 1000):
        bind.execute(stmt, updates[start : start + 1000])


def downgrade() -> None:
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_index("ix_resources_range")
        batch_op.drop_column("range_end")
        batch_op.drop_column("range_start")
        batch_op.drop_column("prefix_len")
        batch_op.drop_column("addr_family")
