"""Settings of the action side: suspension backend, outgoing-mail limits, DKIM signing (sections of Settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuspendConfig(_Section):
    """[suspend]: where services are stopped. Secrets may come from ABUSE_DESK_SUSPEND_SECRET / _IDENTIFIER."""

    backend: Literal["ledger", "webhook", "whmcs"] = "ledger"
    url: str = ""  # webhook endpoint, or WHMCS's https://billing.example.net/includes/api.php
    secret: str | None = None  # webhook HMAC key, or the WHMCS API credential secret
    identifier: str | None = None  # WHMCS API credential identifier
    access_key: str | None = None  # WHMCS $api_access_key (optional, instead of an IP allow-list)
    service_id_prefix: str = ""  # stripped from our service ids to get the WHMCS service id ("S123" -> 123)
    timeout: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)  # HTTP tries per delivery of the command
    backoff: float = Field(default=0.5, ge=0)  # pause before the 2nd try, doubled each time

    @model_validator(mode="after")
    def _complete(self) -> SuspendConfig:
        if self.backend != "ledger":
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"suspend.url must be an http(s) URL for the {self.backend} backend")
            if not self.secret:
                raise ValueError(f"suspend.secret (or ABUSE_DESK_SUSPEND_SECRET) is needed by {self.backend}")
        if self.backend == "whmcs" and not self.identifier:
            raise ValueError("suspend.identifier (or ABUSE_DESK_SUSPEND_IDENTIFIER) is needed by whmcs")
        return self


class OutboundConfig(_Section):
    """[outbound]: the Postfix policy service's limits on our customers' outgoing mail."""

    recipients_per_hour: int = Field(default=60, ge=1)  # per sending mailbox
    per_customer: dict[str, int] = Field(default_factory=dict)  # customer id -> limit
    per_plan: dict[str, int] = Field(default_factory=dict)  # service kind (the plan) -> limit
    per_sender: dict[str, int] = Field(default_factory=dict)  # mailbox or domain -> limit
    window_minutes: int = Field(default=60, ge=1, le=1440)
    fail_open: bool = True  # the database is down: let mail through (DUNNO) rather than defer it all
    # The sum over all of a customer's mailboxes and domains (None: recipients_per_hour); per_customer and
    # per_plan override it. The smallest of the login's, the mailbox's and the customer's limits applies.
    customer_recipients_per_hour: int | None = Field(default=None, ge=1)
    suspension_cache_seconds: float = Field(default=1.0, ge=0, le=60)  # a suspension/lift is in force within this
    inventory_cache_seconds: float = Field(default=30.0, ge=0, le=3600)  # who owns a mailbox/login, remembered
    # Unknown recipients: Postfix's bounce copies (notify_classes = bounce, bounce_notice_recipient = this
    # address, which must also be one of abuse_addresses) from these listener peers are counted, not parsed as
    # reports. Empty: off.
    bounce_notice_address: str = ""
    bounce_peers: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    unknown_recipients_limit: int = Field(default=20, ge=1)  # distinct hard-failed (5.1.x) recipients ...
    unknown_recipients_window_minutes: int = Field(default=60, ge=1, le=10080)  # ... within this window


class DkimConfig(_Section):
    """[notify.dkim]: sign outgoing notifications (dkimpy), relaxed/simple, RSA 2048 recommended."""

    selector: str
    domain: str
    key_path: str
