"""Alembic environment: runs on the connection handed over by abuse_desk.database (async engine, run_sync)."""

from __future__ import annotations

from alembic import context

import abuse_desk.tables  # noqa: F401 - registers the ops desk's tables
import actions.tables  # noqa: F401 - registers the action stage's tables
import policy.tables  # noqa: F401 - registers the policy stage's tables
from core.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `abuse-desk db upgrade`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
