"""CSV feed rows (Shadowserver, CERT and sharing-platform CSVs, IntelMQ exports) → one incident per row.

Each incident carries only its own row: its address, port, protocol, timestamp, type/tag, URL,
domain, and as evidence the header line plus its own raw line (never a neighbour's). Linear in the
rows; per-distinct-value caches keep timestamp parsing and tag classification cheap on 100,000 rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ingest.formats import archive, dates
from ingest.formats.draft import MAX_INCIDENT_EVIDENCE, Draft

PORT_COLUMNS = ("port", "src_port", "source_port", "srcport")
PROTOCOL_COLUMNS = ("protocol", "transport", "proto")
TIME_COLUMNS = ("timestamp", "time_detected", "time.source", "first_seen", "last_seen", "date_time", "time", "date")
TAG_COLUMNS = (
    "infection",
    "infection_type",
    "malware",
    "malware_family",
    "type",
    "tag",
    "classification.type",
    "report_type",
    "feed_name",
    "category",
)
URL_COLUMNS = ("url", "src_url", "http_url", "source.url")
DOMAIN_COLUMNS = ("domain", "src_domain", "source.fqdn")
EMAIL_COLUMNS = ("src_email", "sender", "source.account")
_FIELDS = {
    "port": PORT_COLUMNS,
    "protocol": PROTOCOL_COLUMNS,
    "time": TIME_COLUMNS,
    "tag": TAG_COLUMNS,
    "url": URL_COLUMNS,
    "domain": DOMAIN_COLUMNS,
    "email": EMAIL_COLUMNS,
}
_EMPTY = frozenset({"", "-", "n/a", "null", "none"})


def read(
    draft: Draft,
    text: str,
    *,
    tag: str | None = None,
    category: str | None = None,
    row_category: Callable[[str], str | None] | None = None,
) -> int:
    """Add every row's IP to ``draft.source_ips`` and one incident per row; return the row count.

    ``tag``/``category``: the file's report type and its category (used when a row has no tag of its
    own); ``row_category`` maps a row's tag to a category (cached per distinct tag).
    """
    header = text[:4096].split("\n", 1)[0].strip()
    column = archive.ip_column(header)
    if column is None:
        return 0
    times: dict[str, datetime | None] = {}
    categories: dict[str, str | None] = {}
    header_line: str | None = None
    cols: dict[str, tuple[str, ...]] = {}
    rows = 0
    for header_text, row, raw in archive.csv_records(text, draft.warnings):
        if header_line is None:  # the first row: which of the known columns this file has
            header_line = header_text[: MAX_INCIDENT_EVIDENCE // 2]
            cols = {name: tuple(c for c in names if c in row) for name, names in _FIELDS.items()}
        rows += 1
        ip = draft.add_ip(row.get(column, ""))
        stamp = _first(row, cols["time"])
        if stamp is None and "event_date" in row:
            stamp = f"{row['event_date']} {row.get('event_time', '')}".strip()
        observed = None
        if stamp is not None:
            if stamp not in times:
                times[stamp] = dates.parse_date(stamp)[0]
                if draft.observed_at is None:
                    draft.set_observed(stamp, "CSV timestamp")
            observed = times[stamp]
        own_tag = _first(row, cols["tag"])
        incident_category = category
        if own_tag is not None and row_category is not None:
            if own_tag not in categories:
                categories[own_tag] = row_category(own_tag)
            incident_category = categories[own_tag] or category
        draft.add_incident(
            ip=ip,
            port=_first(row, cols["port"]),
            protocol=_first(row, cols["protocol"]),
            observed_at=observed,
            tag=own_tag or tag,
            category=incident_category,
            url=_first(row, cols["url"]),
            domain=_first(row, cols["domain"]),
            email=_first(row, cols["email"]),
            evidence=f"{header_line}\n{raw}",
        )
    return rows


def _first(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = row[name].strip()
        if value and value.lower() not in _EMPTY:
            return value
    return None
