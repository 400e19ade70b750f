"""Alembic migrations of the abuse-desk database (every stage's tables, one history)."""
