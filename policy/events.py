"""Use case "an action happened": the platform's confirmations and failures move the case and release its mails."""

from __future__ import annotations

from core.errors import ContractError
from core.messages import ActionFailed, Message, NotificationSent, ServiceLifted, ServiceSuspended
from policy import alerts, outbox
from policy.case import may
from policy.unit import Unit


async def action_event(unit: Unit, message: Message) -> bool:
    """Record an action event in its case; returns True when something new waits in the outbox."""
    if message.case_id is None:
        return False
    if not isinstance(message, ServiceSuspended | ServiceLifted | NotificationSent | ActionFailed):
        raise ContractError(f"policy.events got {message.type}")
    detail = message.model_dump(mode="json", exclude={"context"})
    await unit.history(message.case_id, "action", message.type, [], detail)
    case = await unit.load(message.case_id)
    if case is None:
        return False
    if isinstance(message, ServiceSuspended):
        if not may("platform-suspended", case.status):
            return False  # lifted or decided otherwise meanwhile: the event is history only
        held = await outbox.held(unit.conn, case.id)
        changes = {"answered_at": unit.now} if "complainant-result" in held and case.answered_at is None else {}
        await unit.save(case, case.transition("platform-suspended", unit.now, **changes))
        return await outbox.release(unit.conn, case.id) > 0
    if isinstance(message, ActionFailed):
        await unit.save(case, case.change(unit.now, needs_attention=True, flags=case.flagged("action-failed")))
        if await outbox.is_ops_mail(unit.conn, message.command_id):
            return False
        context = {"action": message.action, "reason": message.reason, "command_id": message.command_id}
        alert = await alerts.alert_once(unit.conn, case.id, "action-failed", unit.settings, unit.now, context=context)
        if alert is None:
            return False  # ops were told about this case's failure already
        await unit.send([alert], case_id=case.id)
        return True
    return False
