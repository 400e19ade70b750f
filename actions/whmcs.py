"""The WHMCS suspension backend: ModuleSuspend / ModuleUnsuspend through WHMCS's HTTP API (includes/api.php)."""

from __future__ import annotations

import re

import httpx

from actions.remote import LedgerItem, send_with_retries
from core.action_settings import SuspendConfig
from core.errors import PermanentError, TransientError
from core.messages import LiftSuspension, SuspendService

# WHMCS answers HTTP 200 with {"result": "error", "message": ...} when the module refuses; these texts
# mean the service is already in the state asked for (idempotent success) or that the server behind it
# could not be reached (try again later).
_ALREADY = {
    "ModuleSuspend": re.compile(r"already suspended", re.I),
    "ModuleUnsuspend": re.compile(r"not suspended|already (active|unsuspended)", re.I),
}
_TEMPORARY = re.compile(r"timed? ?out|could not connect|connection (refused|failed|reset)|curl error|temporar", re.I)


class WhmcsPanel:
    """Runs the module suspend action of each service (WHMCS API, identifier/secret credentials, JSON)."""

    name = "whmcs"
    batch = False

    def __init__(self, config: SuspendConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.client = client or httpx.AsyncClient(timeout=config.timeout)

    def handles(self, item: LedgerItem) -> bool:
        return item.target is None  # WHMCS stops services; mailbox/domain stops are the ledger's (Postfix)

    def service_id(self, ours: str) -> str:
        """Our inventory id -> WHMCS's numeric service id (tblhosting.id)."""
        prefix = self.config.service_id_prefix
        raw = ours[len(prefix) :] if prefix and ours.startswith(prefix) else ours
        if not raw.isdigit():
            raise PermanentError(f"service {ours!r} has no WHMCS service id (suspend.service_id_prefix?)")
        return raw

    async def suspend(self, command: SuspendService, items: list[LedgerItem]) -> None:
        for item in items:
            fields = {"serviceid": self.service_id(item.service_id), "suspendreason": _reason(command)}
            await self._call("ModuleSuspend", fields)

    async def lift(self, command: LiftSuspension, items: list[LedgerItem]) -> None:
        for item in items:
            await self._call("ModuleUnsuspend", {"serviceid": self.service_id(item.service_id)})

    async def _call(self, action: str, fields: dict[str, str]) -> None:
        form = {
            "action": action,
            "identifier": self.config.identifier or "",
            "secret": self.config.secret or "",
            "responsetype": "json",
            **fields,
        }
        if self.config.access_key:
            form["accesskey"] = self.config.access_key

        def build() -> httpx.Request:
            return self.client.build_request("POST", self.config.url, data=form)

        what = f"WHMCS {action} serviceid={fields['serviceid']}"
        response = await send_with_retries(
            self.client, build, attempts=self.config.attempts, backoff=self.config.backoff, what=what
        )
        try:
            answer = response.json()
        except ValueError as exc:
            raise TransientError(f"{what}: not a JSON answer: {response.text[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise TransientError(f"{what}: unexpected answer {answer!r}")
        if answer.get("result") == "success":
            return
        message = str(answer.get("message", answer))[:300]
        if _ALREADY[action].search(message):
            return
        if _TEMPORARY.search(message):
            raise TransientError(f"{what}: {message}")
        raise PermanentError(f"{what}: {message}")

    async def close(self) -> None:
        await self.client.aclose()


def _reason(command: SuspendService) -> str:
    ref = f"Abuse case {command.case_id}" if command.case_id else "Abuse"
    return f"{ref}: {command.reason}"[:250] if command.reason else ref
