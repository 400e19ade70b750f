"""Settings: one TOML file (policy, addresses) plus ABUSE_DESK_* environment variables, validated at start."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core import domains
from core.action_settings import DkimConfig, OutboundConfig, SuspendConfig
from core.errors import ConfigError
from core.report import FORMATS

ENV_VARS: dict[str, str] = {
    "ABUSE_DESK_AMQP_URL": "amqp_url",
    "ABUSE_DESK_DATABASE_URL": "database_url",
    "ABUSE_DESK_SMTP_LISTEN": "smtp_listen",
    "ABUSE_DESK_MAIL_OUT": "mail_out",
    "ABUSE_DESK_PREFIX": "prefix",
    "ABUSE_DESK_POLICY_LISTEN": "policy_listen",
    "ABUSE_DESK_WEB_LISTEN": "web_listen",
    "ABUSE_DESK_WEB_TOKEN": "web_token",
    "ABUSE_DESK_METRICS_LISTEN": "metrics_listen",
    "ABUSE_DESK_LINK_SECRET": "dsa.link_secret",
    "ABUSE_DESK_PUBLIC_URL": "dsa.public_url",
    "ABUSE_DESK_SUSPEND_SECRET": "suspend.secret",
    "ABUSE_DESK_SUSPEND_IDENTIFIER": "suspend.identifier",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpConfig(_Section):
    """The abuse@ listener."""

    hostname: str = "abuse-desk.localhost"
    max_message_size: int = Field(default=10 * 1024 * 1024, gt=0, le=15 * 1024 * 1024)
    max_recipients: int = Field(default=100, gt=0)
    publish_timeout: float = Field(default=10.0, gt=0)
    # Several `serve smtp` processes on one host share the port (SO_REUSEPORT; the kernel spreads the
    # connections), as Postfix runs many smtpd: one Python process uses one core.
    reuse_port: bool = False


class SlaConfig(_Section):
    """The complainant's answer clock: working hours in the provider's time zone."""

    hours: float = Field(default=24.0, gt=0)
    timezone: str = "Europe/Paris"
    day_start: int = Field(default=8, ge=0, le=23)
    day_end: int = Field(default=18, ge=1, le=24)
    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday = 0
    holidays_country: str = "FR"
    holidays_subdivision: str | None = None
    extra_closed_days: list[str] = Field(default_factory=list)  # ISO dates

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as Europe/Paris") from exc
        return v

    @field_validator("working_days")
    @classmethod
    def _working_days(cls, v: list[int]) -> list[int]:
        if not v or any(not 0 <= d <= 6 for d in v) or len(set(v)) != len(v):
            raise ValueError("working days are distinct numbers 0 (Monday) to 6 (Sunday), at least one")
        return v

    @field_validator("extra_closed_days")
    @classmethod
    def _closed_days(cls, v: list[str]) -> list[str]:
        for day in v:
            try:
                date.fromisoformat(day)
            except ValueError as exc:
                raise ValueError(f"{day!r} is not an ISO date (YYYY-MM-DD)") from exc
        return v

    @model_validator(mode="after")
    def _calendar(self) -> SlaConfig:
        if self.day_start >= self.day_end:
            raise ValueError(f"day_start ({self.day_start}) must be before day_end ({self.day_end})")
        import holidays  # here, not at module level: only a configuration with an SLA pays for it

        try:
            holidays.country_holidays(self.holidays_country, subdiv=self.holidays_subdivision, years=2026)
        except NotImplementedError as exc:
            raise ValueError(
                f"holidays_country {self.holidays_country!r} / holidays_subdivision {self.holidays_subdivision!r}"
                f" is not known to the holidays library: {exc}"
            ) from exc
        return self


Severity = Literal["low", "medium", "high", "critical"]


class SeverityHandling(_Section):
    """What a first confirmed complaint of a severity leads to."""

    action: Literal["warn", "suspend"] = "warn"
    warning_hours: float | None = Field(default=None, gt=0)  # None: policy.warning_hours


def _default_severity() -> dict[str, Severity]:
    return {
        "illegal-content": "critical",
        "phishing": "high",
        "malware": "high",
        "fraud": "high",
        "intrusion": "medium",
        "spam": "medium",
        "copyright": "low",
        "vulnerability": "low",
        "other": "low",
    }


def _default_handling() -> dict[str, SeverityHandling]:
    return {
        "critical": SeverityHandling(action="suspend"),
        "high": SeverityHandling(),
        "medium": SeverityHandling(),
        "low": SeverityHandling(warning_hours=168),
    }


class TenureBand(_Section):
    """Customers younger than max_days: complaints in these categories are treated as fraud (suspend now)."""

    name: str
    max_days: int = Field(gt=0)
    suspend_categories: list[str] = Field(default_factory=list)


class PolicyConfig(_Section):
    """The provider's published policy as numbers and switches (design §2). Pure data for decide()."""

    warning_hours: float = Field(default=48.0, gt=0)
    repeat_window_days: int = Field(default=365, ge=0)
    # Feedback-loop complaints below this volume (per customer, within the window) stay "monitoring".
    fbl_threshold: int = Field(default=5, ge=1)
    fbl_window_hours: float = Field(default=24.0, gt=0)
    required_customer_fields: list[str] = Field(default_factory=lambda: ["name", "email", "address"])
    require_identity_verified: bool = True
    notify_complainant: bool = True
    # Verification: an unverified report goes to human review, never to a suspension.
    require_confirmation: bool = True
    corroboration_reporters: int = Field(default=2, ge=2)  # independent reporters that confirm each other
    corroboration_window_hours: float = Field(default=72.0, gt=0)
    # A reporter whose reports were rejected at least this often, and more often than confirmed, is not trusted.
    distrust_after_rejections: int = Field(default=3, ge=1)
    severity: dict[str, Severity] = Field(default_factory=_default_severity)
    severity_handling: dict[str, SeverityHandling] = Field(default_factory=_default_handling)
    tenure_bands: list[TenureBand] = Field(
        default_factory=lambda: [
            TenureBand(name="new-account", max_days=14, suspend_categories=["phishing", "malware", "fraud"])
        ]
    )
    sla: SlaConfig = Field(default_factory=SlaConfig)
    # Bulk reports: the same incident (address, port, type) again within this window adds to its case's count.
    incident_window_hours: float = Field(default=168.0, gt=0)
    # Findings that are notices, not accusations (an exposed or vulnerable service): no suspension threat.
    notice_categories: list[str] = Field(default_factory=lambda: ["vulnerability"])
    # Explanations of findings, per kind (resolver, ntp, redis, smb, telnet, rdp, memcached, generic) and language,
    # over the built-in ones (actions/findings.py).
    notice_texts: dict[str, dict[str, str]] = Field(default_factory=dict)
    # A feed naming the same open finding again reminds the customer at most this often.
    notice_reminder_hours: float = Field(default=168.0, gt=0)
    # Customers decided per transaction for a report that names many (each keeps its own decision and trail).
    group_batch: int = Field(default=50, ge=1, le=1000)


# The report formats each kind of reporter sends when an entry names none (a person's text is never one of them).
DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    "feedback-loop": ("arf",),
    "cert": ("xarf-v0", "xarf-v4", "shadowserver"),
    "blocklist": ("spamcop", "arf", "xarf-v0", "xarf-v4"),
    "provider": ("arf", "xarf-v0", "xarf-v4"),
    "other": ("xarf-v0", "xarf-v4"),
}


class TrustedReporter(_Section):
    """A reporter whose authenticated reports are taken as confirmed (feedback loops, CERTs, blocklists).

    An exact identity: the sender addresses it writes from (believed with an aligned DKIM signature or an
    aligned SPF pass), and/or DKIM d= domains only it signs with; and the formats it sends. `domains`
    (the From domains, subdomains included) is still read, but never a mailbox provider's domain:
    anybody has an address there, and a person writing from one is a person.
    """

    name: str
    addresses: list[str] = Field(default_factory=list)
    dkim_domains: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    formats: list[str] | None = None  # None: DEFAULT_FORMATS of the kind
    kind: Literal["feedback-loop", "cert", "blocklist", "provider", "other"] = "other"

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out = [a.strip().lower() for a in v]
        bad = [a for a in out if a.count("@") != 1 or any(c.isspace() for c in a) or a.startswith("@")]
        if bad:
            raise ValueError(f"not a mail address: {', '.join(bad)}")
        return out

    @field_validator("dkim_domains", "domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        out = [domains.normalize_domain(d) for d in v]
        if any("." not in d for d in out):
            raise ValueError("each entry must be a domain name such as reports.example.net")
        return out

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (unknown := sorted(set(v) - set(FORMATS))):
            raise ValueError(f"unknown format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
        return v

    @model_validator(mode="after")
    def _identity(self) -> TrustedReporter:
        if not (self.addresses or self.dkim_domains or self.domains):
            raise ValueError(f"reporter {self.name!r}: name its exact addresses and/or dkim_domains")
        shared = [d for d in [*self.domains, *self.dkim_domains] if domains.is_mailbox_provider(d)]
        if shared:
            raise ValueError(
                f"reporter {self.name!r}: {', '.join(shared)} is a mailbox provider anybody can write from:"
                " trust its exact sender addresses instead (addresses = [...])"
            )
        return self

    @property
    def accepted_formats(self) -> tuple[str, ...]:
        """The formats this reporter sends (its own list, else its kind's)."""
        return tuple(self.formats) if self.formats is not None else DEFAULT_FORMATS[self.kind]


def _default_reporters() -> list[TrustedReporter]:
    return [
        TrustedReporter(
            name="Yahoo/AOL complaint feedback loop",
            addresses=["feedback@arf.mail.yahoo.com", "scomp@aol.net"],
            kind="feedback-loop",
        ),
        TrustedReporter(name="Microsoft JMRP", addresses=["staff@hotmail.com"], kind="feedback-loop"),
        TrustedReporter(name="Validity (Return Path) hosted FBLs", domains=["senderscore.net"], kind="feedback-loop"),
        TrustedReporter(name="SpamCop", domains=["reports.spamcop.net"], kind="blocklist"),
        TrustedReporter(name="Spamhaus", domains=["spamhaus.org"], kind="blocklist"),
        TrustedReporter(name="abuse.ch", domains=["abuse.ch"], kind="cert"),
        TrustedReporter(name="Shadowserver", domains=["shadowserver.org"], kind="cert"),
        TrustedReporter(name="Abusix", domains=["abusix.com", "abusix.org"], kind="provider"),
        TrustedReporter(name="CERT-FR", domains=["ssi.gouv.fr", "cert.ssi.gouv.fr"], kind="cert"),
    ]


class TrustConfig(_Section):
    """Who may be believed, and how their mail is authenticated."""

    reporters: list[TrustedReporter] = Field(default_factory=_default_reporters)
    require_authentication: bool = True  # a listed reporter counts only with an aligned DKIM pass (or SPF pass)
    dns_timeout: float = Field(default=3.0, gt=0)
    # Pinned DNS answers, looked up before the network: TXT records for DKIM keys
    # ("sel._domainkey.example.net" = "v=DKIM1; k=rsa; p=...") and addresses for URL hosts.
    dns_txt: dict[str, str] = Field(default_factory=dict)
    hosts: dict[str, list[str]] = Field(default_factory=dict)
    resolve_urls: bool = True


class ReceiptLimits(_Section):
    """How many automatic mails one complainant address, and one domain, may get within the window."""

    per_address: int = Field(default=5, ge=1)
    per_domain: int = Field(default=200, ge=1)
    window_hours: float = Field(default=24.0, gt=0, le=24 * 31)


class NotifyConfig(_Section):
    """Outgoing notification mails."""

    from_address: str = "abuse@localhost"
    organisation: str = "Example Hosting"
    default_language: str = "fr"
    support_url: str = "https://support.example.net/"
    retry_seconds: list[int] = Field(default_factory=lambda: [60, 300, 1800, 3600, 14400, 43200, 86400])
    give_up_after_days: float = 5.0
    ops_address: str = "abuse-ops@localhost"  # ops alerts (action failed, SLA near/past)
    receipts: ReceiptLimits = Field(default_factory=ReceiptLimits)  # [notify.receipts]: against backscatter floods
    dkim: DkimConfig | None = None


class Authority(_Section):
    """An authority whose authenticated orders skip the warning (Art. 9 DSA, LCEN art. 6-1)."""

    name: str
    domains: list[str]
    member_state: str = "FR"
    deadline_hours: float = Field(default=24.0, gt=0)  # e.g. 1 for terrorist content removal orders


def _default_clauses() -> dict[str, str]:
    return {
        "spam": "Acceptable use policy, §3 (unsolicited bulk e-mail)",
        "phishing": "Acceptable use policy, §4 (fraud and phishing)",
        "fraud": "Acceptable use policy, §4 (fraud and phishing)",
        "malware": "Acceptable use policy, §5 (malicious software)",
        "intrusion": "Acceptable use policy, §6 (attacks on other systems)",
        "vulnerability": "Acceptable use policy, §7 (security of hosted services)",
        "copyright": "Acceptable use policy, §8 (third-party rights)",
        "illegal-content": "Acceptable use policy, §2 (illegal content)",
        "other": "Acceptable use policy, §1 (general obligations)",
    }


def _default_legal() -> dict[str, str]:
    return {
        "illegal-content": "Content manifestly illegal under French law, notified under Art. 16 DSA"
        " (Regulation (EU) 2022/2065) and LCEN art. 6",
        "copyright": "Infringement of intellectual property rights (Code de la propriété intellectuelle)",
        "phishing": "Fraud (Code pénal, art. 313-1) and unlawful collection of personal data",
        "malware": "Attacks on automated data processing systems (Code pénal, art. 323-1 ff.)",
        "intrusion": "Attacks on automated data processing systems (Code pénal, art. 323-1 ff.)",
    }


class DsaConfig(_Section):
    """The people on both ends: statements of reasons, customer answers, orders, transparency (DSA Arts. 15–18)."""

    terms_url: str = "https://www.example.net/legal/acceptable-use"
    clauses: dict[str, str] = Field(default_factory=_default_clauses)
    legal_grounds: dict[str, str] = Field(default_factory=_default_legal)
    public_url: str = "http://127.0.0.1:8025"  # where the customers' statement links point (the web component)
    # ABUSE_DESK_LINK_SECRET; signs the customers' statement links. Empty: generated at first start and
    # kept in the database (`secrets`), so every replica signs alike. A weak one is refused.
    link_secret: str = ""
    link_days: int = Field(default=14, gt=0, le=366)
    extension_hours: float = Field(default=24.0, gt=0)  # "I need more time": once per case
    contest_sla_hours: float = Field(default=8.0, gt=0)  # working hours to review a contest
    reminder_before_hours: float = Field(default=6.0, gt=0)
    authorities: list[Authority] = Field(default_factory=list)

    @field_validator("link_secret")
    @classmethod
    def _strong_secret(cls, v: str) -> str:
        if v and (problem := weak_secret(v)):
            raise ValueError(f"{problem}; leave it unset to have one generated and kept in the database")
        return v


MIN_SECRET_LENGTH = 32
_PLACEHOLDERS = ("change-me", "changeme", "change_me", "secret", "password", "example", "replace")


def weak_secret(value: str) -> str | None:
    """Why a configured secret is too weak to sign anything with (None if it will do)."""
    lowered = value.strip().lower()
    if any(word in lowered for word in _PLACEHOLDERS) and len(set(lowered)) < 20:
        return "the link secret is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"the link secret is too short ({len(value)} characters, at least {MIN_SECRET_LENGTH})"
    if len(set(value)) < 10:
        return "the link secret repeats a few characters: use a random one (openssl rand -base64 32)"
    return None


class BrokerConfig(_Section):
    """RabbitMQ client behaviour."""

    prefetch: int = Field(default=20, gt=0)
    connect_attempts: int = Field(default=30, gt=0)
    retry_delay: float = Field(default=1.0, ge=0)
    handler_timeout: float = Field(default=300.0, gt=0)  # seconds a consumer's handler may run; then it failed
    # Seconds the policy may take over one report: a bulk feed decides thousands of customers (it resumes where it
    # stopped when redelivered, but a timeout costs a delivery of the bounded few).
    report_timeout: float = Field(default=3600.0, gt=0)
    failure_retry_delay: float = Field(default=1.0, gt=0)  # first wait in `<queue>.retry`, doubling, ≤ 30 s


class Settings(_Section):
    """Everything a component needs; defaults work on a laptop (design §5)."""

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = "sqlite:///./var/abuse-desk.db"
    smtp_listen: str = "127.0.0.1:2525"
    mail_out: str = "./var/outbox"
    prefix: str = ""
    policy_listen: str = "127.0.0.1:10040"
    web_listen: str = "127.0.0.1:8025"
    web_token: str | None = None
    metrics_listen: str = "127.0.0.1:9464"
    abuse_addresses: list[str] = Field(default_factory=lambda: ["abuse@localhost"])
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    trust: TrustConfig = Field(default_factory=TrustConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    dsa: DsaConfig = Field(default_factory=DsaConfig)
    suspend: SuspendConfig = Field(default_factory=SuspendConfig)
    outbound: OutboundConfig = Field(default_factory=OutboundConfig)

    @field_validator("abuse_addresses")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one abuse address is needed")
        return [a.strip().lower() for a in v]

    @model_validator(mode="after")
    def _bounce_address_is_received(self) -> Settings:
        bounce = self.outbound.bounce_notice_address.strip().lower()
        if bounce and bounce not in self.abuse_addresses:
            raise ValueError(f"outbound.bounce_notice_address {bounce} must also be one of abuse_addresses")
        return self

    @field_validator("smtp_listen", "policy_listen", "web_listen", "metrics_listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        split_host_port(v)
        return v

    @field_validator("amqp_url")
    @classmethod
    def _amqp(cls, v: str) -> str:
        if not v.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return v


def split_host_port(value: str) -> tuple[str, int]:
    """'127.0.0.1:2525' or '[::1]:2525' -> (host, port); ValueError with a plain message otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_settings(config_path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (ABUSE_DESK_CONFIG or the given path) and the environment; ConfigError if invalid."""
    env = os.environ if environ is None else environ
    path = config_path or env.get("ABUSE_DESK_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {path} does not exist (ABUSE_DESK_CONFIG)") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    for var, key in ENV_VARS.items():
        if env.get(var):
            section, _, name = key.rpartition(".")  # "suspend.secret": a key of a section
            (data.setdefault(section, {}) if section else data)[name] = env[var]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            env_name = next((k for k, v in ENV_VARS.items() if v == where), None)
            origin = f" (environment {env_name})" if env_name and env.get(env_name) else ""
            lines.append(f"  {where}{origin}: {err['msg']}")
        source = f" in {path}" if path else ""
        raise ConfigError("invalid configuration" + source + ":\n" + "\n".join(lines)) from exc
