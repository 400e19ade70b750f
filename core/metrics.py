"""Prometheus metric definitions for every process (one module, one registry); served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: nothing uses them
REGISTRY = CollectorRegistry(auto_describe=True)
NS = "abuse_desk"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# --- intake and parsing ----------------------------------------------------------------------------
SMTP_RESULTS = Counter(
    "smtp_reports",
    "Reports offered to the SMTP listener, by outcome of the reply",
    ["outcome"],
    namespace=NS,
    registry=REGISTRY,
)
REPORTS_PARSED = Counter(
    "reports_parsed",
    "Reports normalized, by format and category",
    ["format", "category"],
    namespace=NS,
    registry=REGISTRY,
)
PARSE_WARNINGS = Counter(
    "parse_warnings",
    "Parse warnings raised while normalizing, by format",
    ["format"],
    namespace=NS,
    registry=REGISTRY,
)

# --- policy -----------------------------------------------------------------------------------------
DECISIONS = Counter(
    "decisions",
    "Policy decisions (reports and deadlines), by outcome and rule",
    ["outcome", "rule"],
    namespace=NS,
    registry=REGISTRY,
)
OPS_ALERTS = Counter(
    "ops_alerts",
    "Ops alerts queued (once per case and cause), by cause",
    ["cause"],
    namespace=NS,
    registry=REGISTRY,
)
CASES = Gauge("cases", "Cases by status (read from the database)", ["status"], namespace=NS, registry=REGISTRY)
SLA = Gauge(
    "sla_cases",
    "Open, unanswered cases whose complainant SLA is due within the warning window or already breached",
    ["state"],
    namespace=NS,
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "outbox_pending", "Policy commands committed but not yet published", namespace=NS, registry=REGISTRY
)

# --- actions ---------------------------------------------------------------------------------------
ACTIONS = Counter(
    "actions",
    "Suspension backend calls, by action, backend and result (done/failed)",
    ["action", "backend", "result"],
    namespace=NS,
    registry=REGISTRY,
)
MAILS = Counter(
    "mails", "Mail-out attempts, by result (sent/deferred/failed)", ["result"], namespace=NS, registry=REGISTRY
)
MAIL_OUTBOX = Gauge("mail_outbox", "Mail outbox rows by state", ["state"], namespace=NS, registry=REGISTRY)

# --- consumers and queues --------------------------------------------------------------------------
HANDLER_SECONDS = Histogram(
    "handler_seconds",
    "Time a consumer's handler took, by queue and result (ok/error/rejected)",
    ["queue", "result"],
    namespace=NS,
    registry=REGISTRY,
    buckets=LATENCY_BUCKETS,
)
MESSAGE_LAG = Histogram(
    "message_lag_seconds",
    "Age of a message when its consumer started on it (consumer lag)",
    ["queue"],
    namespace=NS,
    registry=REGISTRY,
    buckets=LAG_BUCKETS,
)
QUEUE_MESSAGES = Gauge("queue_messages", "Messages ready in a work queue", ["queue"], namespace=NS, registry=REGISTRY)
QUEUE_CONSUMERS = Gauge("queue_consumers", "Consumers of a work queue", ["queue"], namespace=NS, registry=REGISTRY)
QUEUE_DEAD = Gauge(
    "queue_dead_letters", "Messages in a queue's dead-letter queue", ["queue"], namespace=NS, registry=REGISTRY
)
UP = Gauge("component_up", "1 for each component this process runs", ["component"], namespace=NS, registry=REGISTRY)


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
