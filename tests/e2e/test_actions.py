"""Acting through real backends (issue: act): signed webhook, French mails, redaction, the Postfix policy service."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.messages import SuspendService
from tests.dkimkey import sign, toml_trust
from tests.e2e.harness import Desk, body
from tests.panels import WebhookFake, serve

REPORTER = "reporter.example"
SECRET = "e2e-webhook-secret"


def customer(cid: str, name: str, email: str, *, valid: bool = True) -> dict[str, object]:
    return {
        "id": cid,
        "name": name,
        "email": email,
        "phone": "+33 1 00 00 00 00" if valid else "",
        "address": "5 rue des Tests, Paris" if valid else "",
        "country": "FR",
        "language": "fr",
        "created_at": "2020-01-01",
        "identity_verified": valid,
    }


INVENTORY = {
    "customers": [
        customer("C5", "Dan Invalid", "dan@cx5.example", valid=False),
        customer("C6", "Eve Martin", "eve@customer6.example"),
    ],
    "services": [
        {"id": "S5", "customer_id": "C5", "kind": "web-hosting", "name": "dan-site"},
        {"id": "S5m", "customer_id": "C5", "kind": "mailbox", "name": "dan-mail"},
        {"id": "S6", "customer_id": "C6", "kind": "web-hosting", "name": "eve-site"},
        {"id": "S6m", "customer_id": "C6", "kind": "mailbox", "name": "eve-mail"},
    ],
    "resources": [
        {"service_id": "S5", "type": "ip", "value": "203.0.113.50", "valid_from": "2020-01-01T00:00:00Z"},
        {"service_id": "S5", "type": "domain", "value": "cx5.example"},
        {"service_id": "S5m", "type": "mailbox", "value": "shop@cx5.example"},
        {"service_id": "S6", "type": "ip", "value": "203.0.113.60", "valid_from": "2020-01-01T00:00:00Z"},
        {"service_id": "S6m", "type": "mailbox", "value": "news@customer6.example"},
    ],
}


def complaint(ip: str, msgid: str, *, subject: str | None = None) -> bytes:
    subject = subject or f"Hameçonnage sur {ip}"
    raw = (
        f"From: Victor Victim <victim@{REPORTER}>\r\nTo: abuse@localhost\r\nSubject: {subject}\r\n"
        f"Message-ID: <{msgid}@{REPORTER}>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0100\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Bonjour,\r\n\r\nLe serveur à l'adresse {ip} héberge une page d'hameçonnage qui imite ma banque :\r\n"
        f"http://{ip}/banque/connexion.php\r\nMerci de la supprimer au plus vite, c'est une arnaque.\r\n"
        f"Vous pouvez me joindre à victim@{REPORTER}.\r\n\r\nCordialement,\r\nVictor\r\n"
    ).encode()
    return sign(raw, REPORTER)


@pytest.fixture(scope="module")
def webhook(db_backend: str) -> Iterator[WebhookFake]:
    """One platform per desk (the module runs once per database backend)."""
    with serve(WebhookFake(secret=SECRET)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, webhook: WebhookFake) -> Iterator[Desk]:
    workdir: Path = tmp_path_factory.mktemp("act")
    (workdir / "inventory.json").write_text(json.dumps(INVENTORY))
    config = toml_trust({REPORTER: "cert"}) + (
        f'[suspend]\nbackend = "webhook"\nurl = "{webhook.url}"\nattempts = 3\nbackoff = 0.1\ntimeout = 5\n'
    )
    (workdir / "abuse-desk.toml").write_text(config)
    d = Desk(workdir, {"ABUSE_DESK_CONFIG": str(workdir / "abuse-desk.toml"), "ABUSE_DESK_SUSPEND_SECRET": SECRET})
    d.cli("inventory", "import", "inventory.json")
    d.start()
    yield d
    d.stop()


def wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def rcpt(i: int, mailbox: str) -> dict[str, str]:
    return {"sasl_username": mailbox, "sender": mailbox, "recipient": f"r{i}@elsewhere.example"}


def test_webhook_suspension_is_signed_called_once_enforced_on_mail_and_lifted(desk: Desk, webhook: WebhookFake) -> None:
    desk.mail(complaint("203.0.113.50", "dan"), mail_from=f"victim@{REPORTER}")
    case = desk.wait_case(lambda c: c["customer_id"] == "C5" and c["status"] == "suspended")
    wait(lambda: webhook.suspend_calls == 1)
    assert webhook.bad_signatures == 0 and webhook.suspended == {"S5", "S5m"}
    wait(lambda: {r["state"] for r in desk.suspensions() if r["case_id"] == case["id"]} == {"active"})
    rows = [r for r in desk.suspensions() if r["case_id"] == case["id"]]
    assert sorted(r["service_id"] for r in rows) == ["S5", "S5m"] and {r["backend"] for r in rows} == {"webhook"}

    # The same command delivered again (same message id): the ledger answers, the platform is not called.
    desk.publish(
        SuspendService(
            message_id=rows[0]["command_id"], case_id=case["id"], customer_id="C5", service_ids=["S5", "S5m"]
        )
    )

    def suspended_events() -> int:
        return sum(h["outcome"] == "service.suspended.v1" for h in desk.case(case["id"])["history"])

    wait(lambda: suspended_events() == 2)
    assert webhook.suspend_calls == 1

    # The account is suspended: Postfix is told to refuse its mailbox's outgoing mail.
    refused = "550 5.7.1 outgoing mail from cx5.example has been suspended"
    # In force within [outbound] suspension_cache_seconds (1 s) of the ledger row opening.
    wait(lambda: desk.policy_service([rcpt(1, "shop@cx5.example")]) == [refused], timeout=5.0)

    desk.cli(
        "cases",
        "lift",
        case["id"],
        "--reason",
        "ID checked by Bob (ticket 4711)",
        "--customer-text",
        "identity documents received",
    )
    wait(lambda: webhook.lift_calls == 1)
    assert webhook.suspended == set()
    wait(lambda: not [r for r in desk.ledger() if r["case_id"] == case["id"]])
    assert {r["state"] for r in desk.suspensions() if r["case_id"] == case["id"]} == {"lifted"}
    # Lifted: in force within the same second.
    wait(lambda: desk.policy_service([rcpt(2, "shop@cx5.example")]) == ["DUNNO"], timeout=5.0)
    notice = desk.wait_mails(lambda m: m["To"] == "dan@cx5.example" and "levée" in m["Subject"])[0]
    assert "identity documents received" in body(notice)  # the text for the customer
    assert "ticket 4711" not in body(notice)  # the audit note stays in the audit trail


def test_french_complaint_french_mails_redacted_warning_and_no_header_injection(desk: Desk) -> None:
    injected = "=?utf-8?q?Hame=C3=A7onnage_sur_203=2E0=2E113=2E60=0D=0ABcc=3A_everyone=40attacker=2Eexample?="
    desk.mail(complaint("203.0.113.60", "eve", subject=injected), mail_from=f"victim@{REPORTER}")
    case = desk.wait_case(lambda c: c["customer_id"] == "C6" and c["category"] == "phishing")
    assert case["status"] == "warned"
    answer = desk.wait_mails(lambda m: m["In-Reply-To"] == f"<eve@{REPORTER}>" and "Votre signalement" in m["Subject"])[
        0
    ]
    receipt = desk.wait_mails(lambda m: m["In-Reply-To"] == f"<eve@{REPORTER}>" and "reçu" in m["Subject"])[0]
    assert "Bcc: everyone@attacker.example" in receipt["Subject"] and receipt["Bcc"] is None
    assert answer["To"] == f"victim@{REPORTER}"
    assert "Votre signalement" in answer["Subject"] and "Résultat de notre analyse" in body(answer)
    assert answer["Bcc"] is None and "everyone@attacker.example" not in str(answer["To"])
    assert "everyone@attacker.example" in body(answer)  # the reported subject is quoted in the body
    warning = desk.wait_mails(lambda m: m["To"] == "eve@customer6.example")[0]
    assert "action requise" in warning["Subject"] and "Que faire" in body(warning)
    text = warning.as_string()
    assert f"victim@{REPORTER}" not in text and "Victor" not in text
    assert "203.0.113.60" in body(warning)


def test_policy_service_defers_the_61st_recipient_reports_it_and_refuses_a_suspended_mailbox(
    desk: Desk, webhook: WebhookFake
) -> None:
    answers = desk.policy_service([rcpt(i, "news@customer6.example") for i in range(61)])
    assert answers[:60] == ["DUNNO"] * 60
    assert answers[60].startswith("450 4.7.1 news@customer6.example has sent to 60 recipients")
    assert desk.policy_service([rcpt(61, "news@customer6.example")])[0].startswith("450 4.7.1")
    # The internal report went through the pipeline like any complaint: one case, about that mailbox's owner.
    spam = desk.wait_case(lambda c: c["customer_id"] == "C6" and c["category"] == "spam")
    reports = desk.case(spam["id"])["reports"]
    assert len(reports) == 1  # reported once per window

    # A mailbox-scope suspension (what the policy sends for outgoing spam): that mailbox only is refused.
    desk.publish(
        SuspendService(
            case_id=spam["id"],
            customer_id="C6",
            service_ids=["S6m"],
            scope="mailbox",
            targets=["news@customer6.example"],
        )
    )
    wait(lambda: "news@customer6.example" in webhook.suspended)
    assert desk.policy_service([rcpt(62, "news@customer6.example"), rcpt(1, "eve@customer6.example")]) == [
        "550 5.7.1 outgoing mail from customer6.example has been suspended",
        "DUNNO",
    ]
