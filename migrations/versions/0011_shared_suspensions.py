"""shared suspensions: a row for every case holding a suspended service (backfill, no schema change)

Until now the ledger kept one open row per service or mailbox/domain, owned by the first case; a second case
suspending the same thing got no row, so lifting the first case restored what the second still needed. From
now on every case holding it has its own open row (actions/ledger.py). This revision writes the missing rows:
for each suspend command a still suspending/suspended case published, every item another case's open row
stops gets a row of that case too (state copied: active when the other row is active, else pending).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:20:00
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

suspensions = sa.table(
    "suspensions",
    sa.column("id", sa.Integer()),
    sa.column("service_id", sa.String()),
    sa.column("customer_id", sa.String()),
    sa.column("case_id", sa.String()),
    sa.column("scope", sa.String()),
    sa.column("target", sa.String()),
    sa.column("backend", sa.String()),
    sa.column("reason", sa.Text()),
    sa.column("command_id", sa.String()),
    sa.column("suspended_at", core.db.UTCDateTime()),
    sa.column("lifted_at", core.db.UTCDateTime()),
    sa.column("state", sa.String()),
    sa.column("attempts", sa.Integer()),
)
outbox = sa.table(
    "policy_outbox",
    sa.column("message_id", sa.String()),
    sa.column("type", sa.String()),
    sa.column("body", sa.Text()),
    sa.column("created_at", core.db.UTCDateTime()),
    sa.column("case_id", sa.String()),
)
cases = sa.table("cases", sa.column("id", sa.String()), sa.column("status", sa.String()))
HOLDING = ("suspending", "suspended")


def _items(body: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """(service id, target, scope) as actions.ledger.items_of reads a suspend command."""
    services = [str(s) for s in body.get("service_ids") or []]
    scope = str(body.get("scope") or "account")
    items: list[tuple[str, str | None, str]] = []
    if scope in ("account", "service"):
        items += [(s, None, scope) for s in dict.fromkeys(services)]
    owner = services[0] if len(services) == 1 else ""
    for target in dict.fromkeys(str(t).strip().lower() for t in body.get("targets") or [] if str(t).strip()):
        items.append((owner, target, "mailbox" if "@" in target else "domain"))
    return items


def _key(service_id: str, target: str | None) -> tuple[str, str]:
    return ("target", target) if target else ("service", service_id)


def upgrade() -> None:
    conn = op.get_bind()
    open_rows: dict[tuple[str, str], list[Any]] = {}
    for row in conn.execute(sa.select(suspensions).where(suspensions.c.lifted_at.is_(None))):
        open_rows.setdefault(_key(row.service_id, row.target), []).append(row)
    if not open_rows:
        return
    commands = conn.execute(
        sa.select(outbox.c.message_id, outbox.c.body, outbox.c.created_at, outbox.c.case_id)
        .select_from(outbox.join(cases, cases.c.id == outbox.c.case_id))
        .where(outbox.c.type == "service.suspend.v1", cases.c.status.in_(HOLDING))
        .order_by(outbox.c.created_at)
    )
    for command in list(commands):
        try:
            body = json.loads(command.body)
        except ValueError:
            continue
        for service_id, target, scope in _items(body if isinstance(body, dict) else {}):
            rows = open_rows.get(_key(service_id, target), [])
            if not rows or any(r.case_id == command.case_id for r in rows):
                continue
            model = rows[0]
            values = {
                "service_id": service_id or model.service_id,
                "customer_id": body.get("customer_id") or model.customer_id,
                "case_id": command.case_id,
                "scope": scope,
                "target": target,
                "backend": model.backend,
                "reason": str(body.get("reason") or "")[:2000],
                "command_id": command.message_id,
                "suspended_at": command.created_at,
                "state": "active" if any(r.state == "active" for r in rows) else "pending",
                "attempts": 0,
            }
            conn.execute(sa.insert(suspensions).values(**values))
            rows.append(_Held(command.case_id, values["state"]))


class _Held:
    """A row this revision wrote (only its case and state matter to the loop)."""

    def __init__(self, case_id: str, state: str) -> None:
        self.case_id = case_id
        self.state = state


def downgrade() -> None:
    pass  # the rows are valid for the old code too (it reads any open row of a service)
