"""Where the desk's data lives: relative paths (./var) resolve against one home, wherever a command is run from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

from core.settings import Settings


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    """ABUSE_DESK_HOME; else the folder of the ABUSE_DESK_CONFIG file; else the current folder."""
    env = os.environ if environ is None else environ
    if env.get("ABUSE_DESK_HOME"):
        return Path(env["ABUSE_DESK_HOME"]).expanduser().resolve()
    if env.get("ABUSE_DESK_CONFIG"):
        return Path(env["ABUSE_DESK_CONFIG"]).expanduser().resolve().parent
    return Path.cwd()


def sqlite_file(url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for other databases or in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def anchored(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings with a relative SQLite file and a relative Maildir resolved against the desk's home."""
    home = home_dir(environ)
    update: dict[str, str] = {}
    db = sqlite_file(settings.database_url)
    if db is not None and not db.is_absolute():
        update["database_url"] = str(make_url(settings.database_url).set(database=str(home / db)))
    if "://" not in settings.mail_out and not Path(settings.mail_out).is_absolute():
        update["mail_out"] = str(home / settings.mail_out)
    return settings.model_copy(update=update) if update else settings
