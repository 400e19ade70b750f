"""One report, many incidents (issue 15), through one `abuse-desk run`: a multi-customer Shadowserver CSV, a
multi-IP SpamCop report and a person's complaint about two customers. Each customer named gets one case and one
mail naming only their own addresses (no other customer's, no third party's) and no reporter identity."""

from __future__ import annotations

import io
import ipaddress
import json
import re
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk, customer
from tests.redaction_check import assert_no_identity

SAMPLES = Path(__file__).parents[1] / "samples" / "bulk"
CSV_NAME = "2026-11-30-scan_redis-example-asn64500.csv"
CERT, BLOCKLIST, PEOPLE = "cert.example", "reports.blocklist.example", "people.example"
PUBLIC_URL = "https://abuse.hosting.example"  # statement links by name: no address of the desk's own in the mails
HELD = {
    "C1": "198.51.100.128/26",  # a cidr resource: 22 rows of the CSV (more than the excerpt: an incidents.csv)
    "C2": "203.0.113.20",
    "C3": "198.51.100.7",  # two rows (two ports)
    "C4": "203.0.113.40",
    "C5": "198.51.100.64/27",
    "C6": "203.0.113.50",
    "C7": "198.51.100.30",
}
NAMED = {"csv": {"C1", "C2", "C3"}, "spamcop": {"C4", "C5"}, "complaint": {"C6", "C7"}}
NOT_OURS = {"csv": 3, "spamcop": 1, "complaint": 0}  # third-party rows: 192.0.2.11, 192.0.2.12, 203.0.113.200
COMPLAINANT = "victor.victim@people.example"
COMPLAINT_IPS = {"203.0.113.50", "198.51.100.30", "192.0.2.10"}  # what the complainant's own mail names
IDENTITY = [
    "Victor Victim",
    COMPLAINANT,
    "+33 6 12 34 56 78",
    "Victim Family Bakery",
    f"autoreports@{CERT}",
    f"summaries@{BLOCKLIST}",
]
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f:]*::?[0-9A-Fa-f:]+(?![\w:])")


def inventory() -> dict[str, Any]:
    return {
        "customers": [customer(cid) for cid in HELD],
        "services": [{"id": f"S{cid}", "customer_id": cid, "kind": "vps", "name": f"vps-{cid}"} for cid in HELD],
        "resources": [
            {
                "service_id": f"S{cid}",
                "type": "cidr" if "/" in value else "ip",
                "value": value,
                "valid_from": "2020-01-01T00:00:00Z",
            }
            for cid, value in HELD.items()
        ],
    }


def email_of(cid: str) -> str:
    return str(customer(cid)["email"])


def csv_mail(msgid: str) -> bytes:
    """The Shadowserver-style mail: the sample CSV zipped, signed by the trusted CERT."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(CSV_NAME, (SAMPLES / CSV_NAME).read_text())
    msg = EmailMessage()
    msg["From"] = f"Example CERT <autoreports@{CERT}>"
    msg["To"] = "abuse@localhost"
    msg["Subject"] = "Shadowserver Open Redis Report: 2026-11-30"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{msgid}@{CERT}>"
    msg.set_content("Attached is the Open Redis report for your network.\n")
    msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename=CSV_NAME + ".zip")
    return sign(msg.as_bytes(policy=SMTP), CERT)


def sample(name: str, domain: str) -> bytes:
    """A sample mail with CRLF line ends, DKIM-signed by `domain` (a trusted reporter)."""
    raw = (SAMPLES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return sign(raw, domain)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("bulk")
    (workdir / "inventory.json").write_text(json.dumps(inventory()))
    trust = toml_trust({CERT: "cert", BLOCKLIST: "blocklist", PEOPLE: "cert"})
    (workdir / "abuse-desk.toml").write_text(f'[dsa]\npublic_url = "{PUBLIC_URL}"\n\n{trust}')
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"), "ABUSE_DESK_HOME": str(workdir)})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def wait_summary(desk: Desk, report_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The report's summary row: written once its last customer group is committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = desk.rows(f"SELECT * FROM report_summaries WHERE report_id = '{report_id}'")
        if rows:
            return rows[0]
        time.sleep(0.2)
    raise AssertionError(f"report {report_id} was not decided\n{desk.log()}")


def settled_outbox(desk: Desk, timeout: float = 60.0) -> list[Message]:
    """Every mail, once each customer named has one and the notifier has nothing pending (every row in the Maildir)."""
    for cid in HELD:
        desk.wait_mails(lambda m, to=email_of(cid): m["To"] == to, timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = desk.rows("SELECT state FROM mail_outbox")
        mails = desk.outbox()
        if not [r for r in rows if r["state"] == "pending"] and len(mails) == len(rows):
            return mails
        time.sleep(0.3)
    raise AssertionError(f"mail outbox did not settle: {desk.rows('SELECT state, recipient FROM mail_outbox')}")


@pytest.fixture(scope="module")
def sent(desk: Desk) -> dict[str, dict[str, Any]]:
    """The three reports, sent and decided: their summaries by name."""
    ids = {
        "csv": desk.mail(csv_mail("feed-1"), mail_from=f"autoreports@{CERT}"),
        "spamcop": desk.mail(sample("spamcop_summary.eml", BLOCKLIST), mail_from=f"summaries@{BLOCKLIST}"),
        "complaint": desk.mail(sample("complaint_two_customers.eml", PEOPLE), mail_from=COMPLAINANT),
    }
    return {name: wait_summary(desk, rid) for name, rid in ids.items()}


def cases_by_customer(desk: Desk) -> dict[str | None, list[dict[str, Any]]]:
    out: dict[str | None, list[dict[str, Any]]] = {}
    for case in desk.cases():
        out.setdefault(case["customer_id"], []).append(case)
    return out


def test_each_named_customer_gets_exactly_one_case(desk: Desk, sent: dict[str, dict[str, Any]]) -> None:
    by_customer = cases_by_customer(desk)
    assert sorted(by_customer, key=str) == sorted(HELD), by_customer  # no stray case, no customer left out
    for name, summary in sent.items():
        cases = [c for cid in NAMED[name] for c in by_customer[cid]]
        assert len(cases) == len(NAMED[name]), (name, cases)
        assert sorted(json_list(summary["case_ids"])) == sorted(c["id"] for c in cases)
        assert summary["not_ours"] == NOT_OURS[name], (name, summary)
    categories = {cid: cases[0]["category"] for cid, cases in by_customer.items()}
    assert categories == {"C1": "vulnerability", "C2": "vulnerability", "C3": "vulnerability", "C4": "spam",
                          "C5": "spam", "C6": "intrusion", "C7": "intrusion"}  # fmt: skip


def json_list(value: Any) -> list[Any]:
    return json.loads(value) if isinstance(value, str) else list(value)


def text_of(message: Message) -> str:
    """Everything a recipient can read: the headers and every part, attachments included, decoded."""
    out = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        out.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload))
    return "\n".join(out)


def addresses_in(text: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found = set()
    for candidate in [*_IPV4.findall(text), *_IPV6.findall(text)]:
        try:
            found.add(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return {a for a in found if not a.is_loopback}  # "bind it to 127.0.0.1" (a finding's fix) is nobody's


def test_every_mail_names_only_its_recipients_addresses(desk: Desk, sent: dict[str, dict[str, Any]]) -> None:
    mails = settled_outbox(desk)
    owner = {email_of(cid): cid for cid in HELD}
    per_customer: Counter[str] = Counter()
    for mail in mails:
        to, text = str(mail["To"]), text_of(mail)
        if to in owner:
            cid = owner[to]
            per_customer[cid] += 1
            network = ipaddress.ip_network(HELD[cid])
            foreign = sorted(str(a) for a in addresses_in(text) if a not in network)
            assert foreign == [], f"{mail['Subject']!r} to {cid} names {foreign}"
            assert addresses_in(text), f"{mail['Subject']!r} to {cid} names none of their addresses"
            assert_no_identity(text, IDENTITY)
        elif to == COMPLAINANT:
            extra = sorted(str(a) for a in addresses_in(text) if str(a) not in COMPLAINT_IPS)
            assert extra == [], f"the complainant's {mail['Subject']!r} names {extra}"
        else:
            assert to == "abuse-ops@localhost", f"unexpected recipient {to}: {mail['Subject']!r}"
    assert per_customer == Counter({cid: 1 for cid in HELD}), per_customer
    first = next(m for m in mails if m["To"] == email_of("C1"))
    attached = [p for p in first.walk() if p.get_filename() == "incidents.csv"]
    assert len(attached) == 1, "22 findings: the customer gets them all as incidents.csv"
    payload = attached[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    lines = payload.decode().strip().splitlines()
    assert len(lines) == 1 + 22 and all(line.startswith("198.51.100.1") for line in lines[1:]), lines[:3]


def incident_rows(desk: Desk, case_id: str) -> list[dict[str, Any]]:
    return desk.rows(f"SELECT ip, port, count FROM incidents WHERE case_id = '{case_id}' ORDER BY id")


def test_the_same_feed_again_adds_to_counts_without_a_new_case_or_mail(
    desk: Desk, sent: dict[str, dict[str, Any]]
) -> None:
    settled_outbox(desk)
    before = {c["id"]: c for c in desk.cases()}
    feed_cases = json_list(sent["csv"]["case_ids"])
    commands = len(desk.rows("SELECT id FROM policy_outbox"))
    mails = len(desk.outbox())
    again = wait_summary(desk, desk.mail(csv_mail("feed-2"), mail_from=f"autoreports@{CERT}"))
    assert sorted(json_list(again["case_ids"])) == sorted(feed_cases)  # joined the open cases
    after = {c["id"]: c for c in desk.cases()}
    assert sorted(after) == sorted(before)  # no new case
    for case_id in feed_cases:
        assert after[case_id]["report_count"] == before[case_id]["report_count"] + 1
        rows = incident_rows(desk, case_id)
        assert rows and all(r["count"] == 2 for r in rows), rows
    assert len(desk.rows("SELECT id FROM policy_outbox")) == commands  # nothing more to publish: no new mail
    assert len(settled_outbox(desk)) == mails


def test_cases_json_carries_the_incidents(desk: Desk, sent: dict[str, dict[str, Any]]) -> None:
    listed = {c["customer_id"]: c for c in desk.cases()}
    missing = [cid for cid, c in listed.items() if "incident_count" not in c]
    assert missing == [], "cases list --json lacks incident_count (design §5)"
    for cid, case in listed.items():
        rows = incident_rows(desk, case["id"])
        assert case["incident_count"] == sum(r["count"] for r in rows), (cid, case["incident_count"], rows)
    for cid in ("C1", "C4"):  # a cidr customer of the feed, one of the SpamCop report (each `cases show` is a process)
        rows = incident_rows(desk, listed[cid]["id"])
        shown = desk.case(listed[cid]["id"])
        assert "incidents" in shown, "cases show --json lacks the case's incidents (design §5)"
        assert sorted(i["ip"] for i in shown["incidents"]) == sorted(r["ip"] for r in rows)
        network = ipaddress.ip_network(HELD[cid])
        assert all(ipaddress.ip_address(i["ip"]) in network for i in shown["incidents"])
