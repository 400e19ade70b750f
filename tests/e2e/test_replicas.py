"""Two replicas of each worker on PostgreSQL, 1,000 reports: no double case, decision, suspension or mail (issue 6)."""

from __future__ import annotations

import json
import mailbox
import smtplib
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, require_service
from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import SCRIPT, Desk

pytestmark = pytest.mark.databases("postgresql")  # replicas need PostgreSQL (row locks, SKIP LOCKED)

CUSTOMERS = 100
REPORTS_PER_CUSTOMER = 10
INVALID = range(90, 100)  # identity not verified: suspended at once
REPLICATED = ("policy", "scheduler", "suspend", "notify")
REPORTER = "reporter.example"


def inventory() -> dict[str, Any]:
    customers, services, resources = [], [], []
    for i in range(CUSTOMERS):
        customers.append(
            {
                "id": f"R{i:03}",
                "name": f"Replica Customer {i}",
                "email": f"owner{i}@customers.example",
                "phone": "+33 1 00 00 00 00",
                "address": f"{i} rue du Test, Paris",
                "country": "FR",
                "language": "en",
                "created_at": "2020-01-01",
                "identity_verified": i not in INVALID,
            }
        )
        services.append({"id": f"RS{i:03}", "customer_id": f"R{i:03}", "kind": "vps", "name": f"vps{i}"})
        resources.append(
            {"service_id": f"RS{i:03}", "type": "ip", "value": ip(i), "valid_from": "2020-01-01T00:00:00Z"}
        )
    return {"customers": customers, "services": services, "resources": resources}


def ip(i: int) -> str:
    return f"10.77.{i // 200}.{i % 200 + 1}"


def complaint(i: int, n: int) -> bytes:
    raw = (
        f"From: Victor Victim <victim@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: Phishing from {ip(i)} #{n}\r\n"
        f"Message-ID: <r{i}-{n}@{REPORTER}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\n\r\nThe server at {ip(i)} hosts a phishing page imitating my bank (sighting {n}):\r\n"
        f"http://{ip(i)}/secure/login.php\r\nPlease take it down.\r\n\r\nVictor\r\n"
    ).encode()
    return sign(raw, REPORTER)


class Fleet:
    """`abuse-desk serve X` processes sharing one broker prefix, one PostgreSQL database and one Maildir."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        require_service("RabbitMQ", "127.0.0.1", 5672)
        self.workdir = workdir
        self.smtp_port = free_port()
        self.desk = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml")})
        self.desk.env |= {
            "ABUSE_DESK_DATABASE_URL": database_url,
            "ABUSE_DESK_SMTP_LISTEN": f"127.0.0.1:{self.smtp_port}",
            "ABUSE_DESK_MAIL_OUT": str(workdir / "outbox"),
            "ABUSE_DESK_PREFIX": f"r{uuid.uuid4().hex[:8]}.",
        }
        self.desk.prefix = self.desk.env["ABUSE_DESK_PREFIX"]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics: dict[str, int] = {}

    def start(self, name: str, component: str) -> None:
        port = free_port()
        env = self.desk.env | {"ABUSE_DESK_METRICS_LISTEN": f"127.0.0.1:{port}"}
        log = open(self.workdir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            [SCRIPT, "serve", component], cwd=self.workdir, env=env, stdout=log, stderr=log
        )
        self.metrics[name] = port

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for name, port in self.metrics.items():
            while True:
                assert self.procs[name].poll() is None, f"{name} exited:\n{self.log(name)}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"{name} not healthy:\n{self.log(name)}"
                time.sleep(0.2)

    def scrape(self, name: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics[name]}/metrics", timeout=5) as r:
            return r.read().decode()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.desk.stop()


def send(port: int, mails: list[bytes], per_session: int = 40) -> int:
    """Deliver the mails, a new session every `per_session` (the listener caps commands per session)."""
    for start in range(0, len(mails), per_session):
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            for raw in mails[start : start + per_session]:
                s.sendmail(f"victim@{REPORTER}", ["abuse@localhost"], raw)  # raises unless 250
    return len(mails)


def counter_total(text: str, metric: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric) and "{" in line)


def test_two_replicas_of_each_worker_make_no_duplicates_over_1000_reports(
    tmp_path: Path, database_url: str, desk_database: str
) -> None:
    (tmp_path / "inventory.json").write_text(json.dumps(inventory()))
    # A warning expires 36 s after it is given: the scheduler replicas fire the deadlines during the test.
    (tmp_path / "abuse-desk.toml").write_text("[policy]\nwarning_hours = 0.01\n" + toml_trust({REPORTER: "cert"}))
    fleet = Fleet(tmp_path, database_url)
    fleet.desk.cli("db", "upgrade")
    fleet.desk.cli("inventory", "import", "inventory.json")
    try:
        fleet.start("smtp", "smtp")
        fleet.start("normalize", "normalize")
        for component in REPLICATED:
            fleet.start(f"{component}-1", component)
            fleet.start(f"{component}-2", component)
        fleet.wait_healthy()

        started = time.monotonic()
        batches = [[complaint(i, n) for n in range(REPORTS_PER_CUSTOMER)] for i in range(CUSTOMERS)]
        with ThreadPoolExecutor(4) as pool:  # one customer's reports back to back: the replicas race on them
            chunks = [[m for b in chunk for m in b] for chunk in _split(batches, 4)]
            assert sum(pool.map(lambda c: send(fleet.smtp_port, c), chunks)) == CUSTOMERS * REPORTS_PER_CUSTOMER
        sent_in = time.monotonic() - started

        total = CUSTOMERS * REPORTS_PER_CUSTOMER
        _wait(lambda: _decided(fleet.desk) == total, fleet, "every report decided", timeout=240)
        decided_in = time.monotonic() - started
        warned = CUSTOMERS - len(INVALID)
        # The policy: the reports of a burst about one customer join one case, suspended or not.
        expected_cases = CUSTOMERS
        _wait(
            lambda: _count(fleet.desk, "SELECT count(*) AS n FROM cases WHERE status <> 'suspended'") == 0,
            fleet,
            "every warning expired into a suspension",
            timeout=180,
        )
        _wait(lambda: _settled(fleet.desk), fleet, "every mail sent and every command published", timeout=120)
        # Any duplicate that would come is a message still queued: wait until every work queue is empty.
        _wait(lambda: _queues_empty(fleet.desk), fleet, "every work queue drained", timeout=60)

        cases = fleet.desk.rows("SELECT id, customer_id, report_count, status, rules, opened_at FROM cases")
        per_customer = Counter(c["customer_id"] for c in cases)
        valid = {c["customer_id"]: c for c in cases if int(c["customer_id"][1:]) not in INVALID}
        twice = [c for c in cases if c["customer_id"] in valid and per_customer[c["customer_id"]] > 1][:4]
        assert len(valid) == warned and not twice, f"a customer got two cases: {twice}"
        assert {c["report_count"] for c in valid.values()} == {REPORTS_PER_CUSTOMER}
        assert len(cases) == expected_cases
        assert sum(c["report_count"] for c in cases) == total
        assert _count(fleet.desk, "SELECT count(*) AS n FROM case_reports") == total
        history = fleet.desk.rows("SELECT kind, detail FROM case_history WHERE kind IN ('decision', 'deadline')")
        assert Counter(h["kind"] for h in history)["decision"] == total, "a report was decided twice (or never)"
        fired = Counter(_json(h["detail"])["deadline_id"] for h in history if h["kind"] == "deadline")
        deadlines = fleet.desk.rows("SELECT id, kind, state FROM deadlines")
        assert {d["state"] for d in deadlines} == {"done"}
        assert sorted(fired) == sorted(d["id"] for d in deadlines), "a deadline fired twice (or never)"
        assert Counter(d["kind"] for d in deadlines)["warning-expiry"] == warned

        ledger = fleet.desk.rows("SELECT service_id, case_id FROM suspensions")
        assert len(ledger) == CUSTOMERS and len({r["service_id"] for r in ledger}) == CUSTOMERS, "double suspension"

        rows = fleet.desk.rows("SELECT command_id, case_id, kind, recipient, state FROM mail_outbox")
        assert {r["state"] for r in rows} == {"sent"}
        kinds = Counter((r["case_id"], r["kind"], r["recipient"]) for r in rows)
        assert max(kinds.values()) == 1, "two notifications of one kind to one recipient for one case"
        assert Counter(r["kind"] for r in rows)["customer-suspension"] == expected_cases
        assert Counter(r["kind"] for r in rows)["customer-warning"] == warned
        box = [message_from_bytes(bytes(m), policy=policy.default) for m in mailbox.Maildir(tmp_path / "outbox")]  # type: ignore[arg-type]
        ids = Counter(str(m["Message-ID"]) for m in box)
        assert len(box) == len(rows) and max(ids.values()) == 1, "the same mail went out twice"

        decided_by = {n: counter_total(fleet.scrape(n), "abuse_desk_decisions_total") for n in ("policy-1", "policy-2")}
        assert all(v > 0 for v in decided_by.values()), f"one policy replica did nothing: {decided_by}"
        sent_by = {n: counter_total(fleet.scrape(n), "abuse_desk_mails_total") for n in ("notify-1", "notify-2")}
        assert sum(sent_by.values()) == len(rows)
        print(
            f"\n1,000 reports through 2 replicas each: sent in {sent_in:.1f} s, all decided after {decided_in:.1f} s;"
            f" {len(cases)} cases, {len(ledger)} suspensions, {len(rows)} mails, no duplicates;"
            f" decisions by replica {decided_by}, mails by replica {sent_by}"
        )
    finally:
        fleet.stop()


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _split(items: list[Any], n: int) -> list[list[Any]]:
    return [items[i::n] for i in range(n)]


def _count(desk: Desk, query: str) -> int:
    return int(desk.rows(query)[0]["n"])


def _decided(desk: Desk) -> int:
    return _count(desk, "SELECT count(*) AS n FROM case_reports")


def _settled(desk: Desk) -> bool:
    pending = _count(desk, "SELECT count(*) AS n FROM mail_outbox WHERE state <> 'sent'")
    unpublished = _count(desk, "SELECT count(*) AS n FROM policy_outbox WHERE published_at IS NULL")
    return pending == 0 and unpublished == 0


def _queues_empty(desk: Desk) -> bool:
    stats = json.loads(desk.cli("queues", "--json").stdout)
    return all(int(q.get("messages", 0)) == 0 and int(q.get("retrying", 0)) == 0 for q in stats)


def _wait(predicate: Any, fleet: Fleet, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{fleet.log(n)[-1500:]}" for n in fleet.procs)
            raise AssertionError(f"not reached in {timeout:.0f} s: {what}\n{logs}")
        time.sleep(1)
    return True
