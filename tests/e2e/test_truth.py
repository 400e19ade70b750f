"""Say only what is true (issue 10): state from the platform, a re-check at the deadline, urgent work never waits.

One `abuse-desk run` per database. Its webhook backend points at a port where nothing listens until the first
tests bring the platform up; the customers' sites are served on 127.0.0.1 (the re-check fetches only there).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk, body, case_mails, customer, queued_kinds, serve_on
from tests.panels import WebhookFake

REPORTER = "reporter.example"  # a trusted reporter (cert), DKIM-signed: strong confirmation
OPS = "ops@truth.example"
SECRET = "e2e-truth-webhook-secret"
CUSTOMERS = ("C70", "C71", "C72", "C73", "C74")


class Site:
    """The customers' sites on 127.0.0.1: every path answers with the phishing page, except those in `gone` (404)."""

    def __init__(self) -> None:
        self.gone: set[str] = set()
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                gone = self.path in site.gone
                self.send_response(404 if gone else 200)
                self.end_headers()
                self.wfile.write(b"not found" if gone else b"<form>Your bank password</form>")

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, cid: str) -> str:
        return f"http://phish.{cid.lower()}.example:{self.port}/{cid.lower()}/login"


class Platform:
    """The webhook platform: nothing on its port until `up()` (idempotent), then a signature-checking fake."""

    def __init__(self) -> None:
        self.port = free_port()
        self.fake = WebhookFake(secret=SECRET)
        self._running: Any = None

    def up(self) -> WebhookFake:
        if self._running is None:
            self._running = serve_on(self.fake, self.port)
            self._running.__enter__()
        return self.fake

    def down(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None


@pytest.fixture(scope="module")
def site(db_backend: str) -> Iterator[Site]:
    s = Site()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture(scope="module")
def platform(db_backend: str) -> Iterator[Platform]:
    p = Platform()
    yield p
    p.down()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, site: Site, platform: Platform) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("truth")
    inventory: dict[str, list[dict[str, object]]] = {
        "customers": [customer("C70", verified=False), *(customer(c) for c in CUSTOMERS[1:])],
        "services": [],
        "resources": [],
    }
    for cid in CUSTOMERS:
        sid = "S" + cid[1:]
        inventory["services"].append({"id": sid, "customer_id": cid, "kind": "web-hosting", "name": f"{cid} site"})
        inventory["resources"].append({"service_id": sid, "type": "domain", "value": f"{cid.lower()}.example"})
        # every site is served from this machine: the re-check fetches the customer's own address, 127.0.0.1
        inventory["resources"].append({"service_id": sid, "type": "ip", "value": "127.0.0.1"})
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    hosts = "".join(f'"phish.{c.lower()}.example" = ["127.0.0.1"]\n' for c in CUSTOMERS)
    config = toml_trust({REPORTER: "cert"}) + "[trust.hosts]\n" + hosts
    config += f'\n[notify]\nops_address = "{OPS}"\n\n[broker]\nfailure_retry_delay = 0.1\n\n'
    config += (
        f'[suspend]\nbackend = "webhook"\nurl = "http://127.0.0.1:{platform.port}/hook"\n'
        "attempts = 1\nbackoff = 0\ntimeout = 3\n"
    )
    (workdir / "abuse-desk.toml").write_text(config)
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"), "ABUSE_DESK_SUSPEND_SECRET": SECRET})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def phishing(url: str, who: str, msgid: str, *, signed: bool = True, domain: str = REPORTER) -> bytes:
    raw = (
        f"From: {who.title()} <{who}@{domain}>\r\nTo: abuse@localhost\r\nSubject: Phishing page {msgid}\r\n"
        f"Message-ID: <{msgid}@{domain}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello,\r\nThe page {url} imitates my bank and asks for my password and card number;"
        f" several people I know received links to it.\r\n{who.title()}\r\n"
    ).encode()
    return sign(raw, domain) if signed else raw


def wait_for(what: str, check: Callable[[], Any], desk: Desk, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s\n{desk.log()}")
        time.sleep(0.3)


def instant(value: Any) -> datetime:
    """A timestamp from the JSON or a database row (SQLite gives text), as an aware UTC datetime."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def subjects(mails: list[Message]) -> list[str]:
    return [f"{m['To']}: {m['Subject']}" for m in mails]


def is_statement(m: Message) -> bool:
    return "statement of reasons" in str(m["Subject"])


def is_suspended_answer(m: Message, to: str) -> bool:
    return m["To"] == to and "result" in str(m["Subject"]) and "suspended" in body(m)


# --- 1. State follows the platform -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failing(desk: Desk) -> dict[str, Any]:
    """A suspension decided at once (strong report, invalid customer details) while nothing listens on the platform's
    port: the command is retried, then dead-lettered."""
    desk.mail(phishing("http://c70.example/secure/login.php", "victor", "t70"), mail_from=f"victor@{REPORTER}")
    case = desk.wait_case(lambda c: c["customer_id"] == "C70" and c["status"] in ("suspending", "suspended"))
    wait_for(
        "the suspend command dead-lettered",
        lambda: desk.rows(f"SELECT * FROM dead_letters WHERE queue = 'actions.suspend' AND case_id = '{case['id']}'"),
        desk,
    )
    return case


def test_a_suspension_the_platform_never_confirmed_is_not_shown_as_done(desk: Desk, failing: dict[str, Any]) -> None:
    case_id = failing["id"]
    rows = [r for r in desk.suspensions() if r["case_id"] == case_id]
    assert rows and "active" not in {r["state"] for r in rows}, rows
    assert all(r["last_error"] for r in rows), rows  # the attempts' error is kept where ops can see it
    case = desk.case(case_id)
    assert case["status"] == "suspending", case
    assert "service.suspended.v1" not in [h["outcome"] for h in case["history"]]
    mails = desk.outbox()  # every mail sent, whatever case it names
    assert not [m for m in mails if m["To"] == "c70@customers.example" and is_statement(m)], subjects(mails)
    assert not [m for m in mails if is_suspended_answer(m, f"victor@{REPORTER}")], subjects(mails)
    held = desk.rows(f"SELECT body FROM policy_outbox WHERE case_id = '{case_id}' AND held = true")
    assert {json.loads(r["body"])["kind"] for r in held} >= {"customer-suspension", "complainant-result"}, held


def test_an_exhausted_suspension_flags_the_case_and_alerts_ops_once(desk: Desk, failing: dict[str, Any]) -> None:
    case_id = failing["id"]

    def alerts() -> list[Message]:
        return [m for m in desk.outbox() if m["To"] == OPS and "Action failed" in str(m["Subject"])]

    try:
        found = wait_for("the ops-action-failed alert", alerts, desk, timeout=20)
    except AssertionError:
        case = desk.case(case_id)
        dead = desk.rows(f"SELECT queue, reason, error, attempts FROM dead_letters WHERE case_id = '{case_id}'")
        history = [(h["kind"], h["outcome"]) for h in case["history"]]
        raise AssertionError(
            f"no ops alert after the retries were exhausted; case status={case['status']}"
            f" needs_attention={case['needs_attention']} flags={case['flags']}; history={history}; dead={dead};"
            f" outbox={subjects(desk.outbox())}"
        ) from None
    assert [m["X-Abuse-Desk-Case"] for m in found] == [case_id]
    assert "Reason:" in body(found[0]) and "suspend" in str(found[0]["Subject"])
    case = desk.case(case_id)
    assert case["needs_attention"] and "action-failed" in case["flags"], case
    assert case["status"] == "suspending"
    assert [m["Subject"] for m in case_mails(desk, case_id) if m["To"] == OPS] == [found[0]["Subject"]]  # one alert


def test_the_backend_back_the_replayed_suspension_is_confirmed_then_the_mails_go(
    desk: Desk, failing: dict[str, Any], platform: Platform
) -> None:
    case_id = failing["id"]
    fake = platform.up()
    desk.cli("dead", "replay", "actions.suspend")
    desk.wait_case(lambda c: c["id"] == case_id and c["status"] == "suspended")
    assert fake.bad_signatures == 0 and "S70" in fake.suspended
    wait_for(
        "the ledger rows active",
        lambda: {r["state"] for r in desk.suspensions() if r["case_id"] == case_id} == {"active"},
        desk,
    )
    statement = desk.wait_mails(lambda m: m["To"] == "c70@customers.example" and is_statement(m))[0]
    answer = desk.wait_mails(lambda m: is_suspended_answer(m, f"victor@{REPORTER}"))[0]
    assert statement["X-Abuse-Desk-Case"] == case_id == answer["X-Abuse-Desk-Case"]
    history = desk.case(case_id)["history"]
    assert "service.suspended.v1" in [h["outcome"] for h in history]
    ops = [m for m in case_mails(desk, case_id) if m["To"] == OPS]
    assert len(ops) <= 1, subjects(ops)  # never a second alert for the same failure


# --- 2. At the deadline, check it is still there ------------------------------------------------------------------


@pytest.fixture(scope="module")
def at_deadline(desk: Desk, site: Site, platform: Platform) -> dict[str, dict[str, Any]]:
    """Three warned phishing cases, then one scheduler tick an hour after the last deadline: C71's page is gone,
    C72's (strong: trusted, DKIM-signed) and C73's (weak: an unknown reporter, our own cross-check) still served."""
    platform.up()  # a strong case still there is suspended through the platform
    desk.mail(phishing(site.url("C71"), "alice", "t71"), mail_from=f"alice@{REPORTER}")
    desk.mail(phishing(site.url("C72"), "bruno", "t72"), mail_from=f"bruno@{REPORTER}")
    desk.mail(
        phishing(site.url("C73"), "carla", "t73", signed=False, domain="mail.example"), mail_from="carla@mail.example"
    )
    cases = {cid: desk.wait_case(lambda c, cid=cid: c["customer_id"] == cid) for cid in ("C71", "C72", "C73")}
    for cid, case in cases.items():
        assert case["status"] == "warned", (cid, case)
    assert cases["C72"]["confirmation"] == "strong" and cases["C73"]["confirmation"] == "weak", cases
    for cid in cases:
        desk.wait_mails(
            lambda m, cid=cid: m["To"] == f"{cid.lower()}@customers.example" and "action required" in m["Subject"]
        )
    site.gone.add("/c71/login")
    last = max(datetime.fromisoformat(c["deadline_at"]) for c in cases.values())
    desk.cli("scheduler", "tick", "--now", (last + timedelta(hours=1)).isoformat())
    assert {"/c71/login", "/c72/login", "/c73/login"} <= set(site.hits), site.hits  # fetched from 127.0.0.1
    return cases


def test_a_page_gone_at_the_deadline_is_resolved_without_a_person(desk: Desk, at_deadline: dict[str, Any]) -> None:
    case_id = at_deadline["C71"]["id"]
    case = desk.wait_case(lambda c: c["id"] == case_id and c["status"] != "warned")
    assert case["status"] == "resolved", case
    assert "deadline-recheck-gone" in case["rules"], case["rules"]
    customer_mail = desk.wait_mails(lambda m: m["To"] == "c71@customers.example" and "re-check" in m["Subject"])[0]
    assert "problem is gone" in body(customer_mail) and "404" in body(customer_mail)
    desk.wait_mails(lambda m: m["To"] == f"alice@{REPORTER}" and "fixed the problem" in body(m))
    assert not [m for m in case_mails(desk, case_id) if m["To"] == OPS]  # nobody needed
    assert not [r for r in desk.suspensions() if r["case_id"] == case_id]
    trail = [h for h in desk.case(case_id)["history"] if h["kind"] == "deadline"]
    assert [r["name"] for h in trail for r in h["rules"] or []] == ["deadline-recheck-gone"], trail


def test_a_page_still_served_at_the_deadline_is_suspended_when_strongly_confirmed(
    desk: Desk, at_deadline: dict[str, Any], platform: Platform
) -> None:
    case_id = at_deadline["C72"]["id"]
    case = desk.wait_case(lambda c: c["id"] == case_id and c["status"] not in ("warned", "suspending"))
    assert case["status"] == "suspended", case
    assert "deadline-recheck-still-there" in case["rules"], case["rules"]
    assert "S72" in platform.fake.suspended
    desk.wait_mails(lambda m: m["To"] == "c72@customers.example" and is_statement(m))
    desk.wait_mails(lambda m: is_suspended_answer(m, f"bruno@{REPORTER}"))
    trail = [h for h in desk.case(case_id)["history"] if h["kind"] == "deadline"]
    assert trail and trail[-1]["outcome"] == "suspend", trail
    assert "still answers HTTP 200" in json.dumps(trail[-1]["rules"]), trail  # what the re-check saw, in the trail


def test_a_page_still_served_at_the_deadline_is_held_with_an_alert_when_weakly_confirmed(
    desk: Desk, at_deadline: dict[str, Any], platform: Platform
) -> None:
    case_id = at_deadline["C73"]["id"]
    case = desk.wait_case(lambda c: c["id"] == case_id and c["status"] != "warned")
    assert case["status"] == "needs-review" and case["needs_attention"], case
    assert {"deadline-recheck-still-there", "deadline-needs-confirmation"} <= set(case["rules"]), case["rules"]
    alert = desk.wait_mails(lambda m: m["To"] == OPS and m["X-Abuse-Desk-Case"] == case_id)
    assert len(alert) == 1 and "held for your review" in alert[0]["Subject"], subjects(alert)
    assert "S73" not in platform.fake.suspended and not [r for r in desk.suspensions() if r["case_id"] == case_id]
    assert "customer-suspension" not in queued_kinds(desk, case_id)


# --- 3. Urgent is urgent ------------------------------------------------------------------------------------------

THREAT_FR = (
    "Bonjour,\r\n\r\nSur le forum hébergé chez vous, http://forum.c74.example/sujet/4412, un membre publie "
    "l'adresse de mon frère et il menace de tuer toute sa famille ce week-end. Les messages sont toujours en "
    "ligne ce matin. Je vous en supplie, agissez vite.\r\n\r\nMarie Dupont\r\n"
)


def test_a_french_threat_to_life_is_the_most_severe_flagged_alerted_at_once_and_gets_no_deadline_in_days(
    desk: Desk,
) -> None:
    raw = (
        "From: Marie Dupont <marie.dupont@mail.example>\r\nTo: abuse@localhost\r\nSubject: Menaces sur un forum\r\n"
        "Message-ID: <t74@mail.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + THREAT_FR
    ).encode()
    desk.mail(raw, mail_from="marie.dupont@mail.example")
    case = desk.wait_case(lambda c: c["customer_id"] == "C74")
    assert case["category"] == "illegal-content" and case["severity"] == "critical", case
    assert {"urgent", "art18-suspicion"} <= set(case["flags"]), case["flags"]
    alert = desk.wait_mails(lambda m: m["To"] == OPS and m["X-Abuse-Desk-Case"] == case["id"])
    assert "URGENT" in alert[0]["Subject"] and "Art. 18" in body(alert[0]), subjects(alert)
    # at once: queued with the decision itself, not by a later scheduler tick (the run ticks every 15 s)
    decided = [h["at"] for h in desk.case(case["id"])["history"] if h["kind"] == "decision"]
    queued = [
        r["created_at"]
        for r in desk.rows(f"SELECT body, created_at FROM policy_outbox WHERE case_id = '{case['id']}'")
        if json.loads(r["body"]).get("kind") == "ops-art18"
    ]
    assert len(queued) == 1 and decided, (queued, decided)
    assert instant(queued[0]) - instant(decided[0]) < timedelta(seconds=1), (queued, decided)
    for mail in desk.outbox():
        if mail["To"] == "marie.dupont@mail.example":
            assert "confirmed" not in body(mail), body(mail)  # nobody confirmed these facts
    kinds = queued_kinds(desk, case["id"])  # every mail the decision queued, in its own transaction
    assert "customer-warning" not in kinds and "customer-reminder" not in kinds, kinds
    if case["deadline_at"] is not None:
        due = datetime.fromisoformat(case["deadline_at"]) - datetime.fromisoformat(case["opened_at"])
        assert due <= timedelta(hours=24), case
    for mail in [m for m in case_mails(desk, case["id"]) if m["To"] == "c74@customers.example"]:
        text = body(mail.get_body(preferencelist=("plain",)) or mail)  # type: ignore[attr-defined]
        for days in ("48 hours", "48 heures", "7 days", "7 jours", "168 hours", "168 heures"):
            assert days not in text, (mail["Subject"], days)
