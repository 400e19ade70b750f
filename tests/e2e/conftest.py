"""Every e2e module runs once on SQLite (the default file under the desk's ./var) and once on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def desk_database(db_backend: str, database_url: str) -> Iterator[str]:
    """Point the desks of this module (they copy os.environ) at the module's database."""
    if db_backend == "sqlite":
        yield "sqlite"  # each desk keeps its own ./var/abuse-desk.db
        return
    before = os.environ.get("ABUSE_DESK_DATABASE_URL")
    os.environ["ABUSE_DESK_DATABASE_URL"] = database_url
    try:
        yield database_url
    finally:
        if before is None:
            os.environ.pop("ABUSE_DESK_DATABASE_URL", None)
        else:
            os.environ["ABUSE_DESK_DATABASE_URL"] = before


@pytest.fixture(scope="module")
def tmp_path_factory(tmp_path_factory: pytest.TempPathFactory, db_backend: str) -> pytest.TempPathFactory:
    """The session's factory, seen through the module's backend: every module fixture that builds a desk from it
    (they all do) depends on the backend, so pytest builds a fresh desk for PostgreSQL after SQLite."""
    return tmp_path_factory
