"""Suspension: backends behind one interface (ledger, webhook, WHMCS), chosen in configuration, and the handler."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.ledger import Ledger, items_of, name_of
from actions.remote import RemotePanel
from actions.tables import suspensions
from actions.webhook import WebhookPanel
from actions.whmcs import WhmcsPanel
from core.action_settings import SuspendConfig
from core.errors import ContractError, PermanentError
from core.messages import (
    ActionFailed,
    LiftSuspension,
    Message,
    Publish,
    ServiceLifted,
    ServiceSuspended,
    SuspendService,
    utcnow,
)

log = structlog.get_logger("actions.suspend")


class SuspensionBackend(Protocol):
    """A place where services are stopped. Both calls are idempotent: 'already done' is success.

    TransientError (or any other exception): the command is redelivered later, then dead-lettered.
    PermanentError: retrying cannot help; the worker publishes action.failed.v1 and acks.
    """

    name: str

    async def suspend(self, command: SuspendService) -> list[str]:
        """Stop the services; returns the ids now suspended by this case."""

    async def lift(self, command: LiftSuspension) -> list[str]:
        """Restore what the case suspended; returns the ids restored."""


class LiftOutcome(list[str]):
    """The service ids a lift restored (a list, as `SuspensionBackend.lift` returns) and what stays suspended
    because another open case holds it (`still_suspended`: service ids, or mailbox/domain names)."""

    def __init__(self, restored: list[str], *, still_suspended: list[str]) -> None:
        super().__init__(restored)
        self.still_suspended = still_suspended


class LedgerBackend:
    """The built-in backend: the ledger alone (what outgoing-mail enforcement reads), optionally fronting a panel.

    With a remote panel the ledger row is written first (pending) and the panel is called only for pending
    rows, then the row turns active: a redelivered command finds the row active and does not call again.
    """

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow, panel: RemotePanel | None = None
    ) -> None:
        self.ledger = Ledger(engine, clock)
        self.panel = panel
        self.name = panel.name if panel else "ledger"

    async def suspend(self, command: SuspendService) -> list[str]:
        items = items_of(command)
        todo = await self.ledger.claim(command, items, backend=self.name, pending=self.panel is not None)
        if self.panel is not None and todo:
            remote = [(i, item) for i, item in todo if self.panel.handles(item)]
            await self.ledger.activate([i for i, item in todo if not self.panel.handles(item)], remote_called=False)
            groups = [remote] if self.panel.batch else [[pair] for pair in remote]
            for group in groups:
                ids = [i for i, _ in group]
                try:
                    await self.panel.suspend(command, [item for _, item in group])
                except PermanentError as exc:
                    await self.ledger.refuse(ids, str(exc))
                    raise
                except Exception as exc:
                    await self.ledger.mark(ids, error=str(exc)[:2000])
                    raise
                await self.ledger.activate(ids)
        return sorted(set(command.service_ids))

    async def lift(self, command: LiftSuspension) -> LiftOutcome:
        """Release the case's rows; the platform is called only for what no other open case still holds."""
        panel = self.panel
        release = await self.ledger.release(command, remote=lambda item: panel is not None and panel.handles(item))
        restored = list(release.restored)
        if panel is not None and release.remote:
            groups = [release.remote] if panel.batch else [[pair] for pair in release.remote]
            for group in groups:
                ids = [i for i, _ in group]
                try:
                    await panel.lift(command, [item for _, item in group])
                except PermanentError as exc:
                    await self.ledger.lift_refused(ids, str(exc))
                    raise
                except Exception as exc:
                    await self.ledger.mark(ids, error=str(exc)[:2000])
                    raise
                await self.ledger.lifted(ids, command.reason, remote_called=True)
                restored += [item for _, item in group]
        return LiftOutcome(
            sorted({item.service_id for item in restored if item.service_id}),
            still_suspended=sorted({name_of(item) for item in release.kept}),
        )


def make_backend(config: SuspendConfig, engine: AsyncEngine) -> LedgerBackend:
    """The backend named by [suspend] backend; remote ones still record into the ledger."""
    panel: RemotePanel | None = None
    if config.backend == "webhook":
        panel = WebhookPanel(config)
    elif config.backend == "whmcs":
        panel = WhmcsPanel(config)
    return LedgerBackend(engine, panel=panel)


async def active_suspensions(engine: AsyncEngine) -> list[dict[str, object]]:
    """Every suspension not lifted (ops, tests, outgoing-mail enforcement)."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(suspensions).where(suspensions.c.lifted_at.is_(None)))
        return [dict(r) for r in rows.mappings()]


class SuspendWorker:
    """Handles service.suspend.v1 / service.lift.v1 and publishes what happened.

    The case is told every outcome: service.suspended.v1 / service.lifted.v1 when the backend confirmed,
    action.failed.v1 when it refused for good (acked) and, through `given_up`, when the broker gave the
    command up after its retries (dead-lettered) — the suspend/lift then stays under way in the ledger.
    """

    def __init__(self, backend: SuspensionBackend, publish: Publish) -> None:
        self.backend = backend
        self.publish = publish

    async def handle(self, message: Message) -> None:
        if not isinstance(message, SuspendService | LiftSuspension):
            raise ContractError(f"actions.suspend got {message.type}")
        action = "suspend" if isinstance(message, SuspendService) else "lift"
        try:
            done = await (
                self.backend.suspend(message) if isinstance(message, SuspendService) else self.backend.lift(message)
            )
        except PermanentError as exc:
            log.error("actions.failed", action=action, backend=self.backend.name, error=str(exc))
            await self._failed(message, f"{self.backend.name}: {exc}")
            return
        log.info("actions.suspended" if action == "suspend" else "actions.lifted", services=done)
        if isinstance(message, SuspendService):
            await self.publish(
                ServiceSuspended(
                    case_id=message.case_id,
                    report_id=message.report_id,
                    customer_id=message.customer_id,
                    service_ids=done,
                    backend=self.backend.name,
                    command_id=message.message_id,
                )
            )
            return
        await self.publish(
            ServiceLifted(
                case_id=message.case_id,
                report_id=message.report_id,
                customer_id=message.customer_id,
                service_ids=list(done),
                still_suspended=list(getattr(done, "still_suspended", [])),
                backend=self.backend.name,
                command_id=message.message_id,
            )
        )

    async def given_up(self, message: Message, error: str) -> None:
        """The broker gave a command up after its last attempt (it goes to `actions.suspend.dead`): publish
        action.failed.v1 for its case, with the handler's real error. Call it once, when the message dies."""
        event = given_up_event(message, error, self.backend.name)
        if event is not None:
            log.error("actions.given_up", action=event.action, backend=self.backend.name, error=error)
            await self.publish(event)

    async def _failed(self, message: SuspendService | LiftSuspension, reason: str) -> None:
        await self.publish(
            ActionFailed(
                case_id=message.case_id,
                report_id=message.report_id,
                action="suspend" if isinstance(message, SuspendService) else "lift",
                reason=reason[:2000],
                command_id=message.message_id,
            )
        )


def given_up_event(message: Message, error: str, backend: str = "") -> ActionFailed | None:
    """The action.failed.v1 telling a suspend/lift command's case that it was given up after the retries
    (None for any other message): the reason is the handler's last error."""
    if not isinstance(message, SuspendService | LiftSuspension):
        return None
    where = f"{backend}: " if backend else ""
    return ActionFailed(
        case_id=message.case_id,
        report_id=message.report_id,
        action="suspend" if isinstance(message, SuspendService) else "lift",
        reason=f"{where}{error} (given up after the retries)"[:2000],
        command_id=message.message_id,
    )
