"""The pure DSA pieces: signed links, statements of reasons, notice elements, transparency figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.report import AbuseReport
from core.settings import DsaConfig
from ingest.notice import elements
from policy import statements, transparency
from policy.links import LinkError, make_token, read_token

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret-0123456789-abcdefghijklmnopqrstuvwxyz"
OTHER_SECRET = "another-secret-ABCDEFGHIJKLMNOPQRSTUVWXYZ-9876543210"


def test_a_link_round_trips_until_it_expires() -> None:
    token = make_token(SECRET, "AD-1", "C1", NOW + timedelta(days=14))
    claims = read_token(SECRET, token, NOW)
    assert (claims.case_id, claims.customer_id, claims.purpose) == ("AD-1", "C1", "statement")
    with pytest.raises(LinkError, match="expired"):
        read_token(SECRET, token, NOW + timedelta(days=15))


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-2] + "AA", lambda t: "x" + t, lambda t: t.replace(".", ""), str.upper]
)
def test_a_forged_or_broken_link_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    token = make_token(SECRET, "AD-1", "C1", NOW + timedelta(days=1))
    with pytest.raises(LinkError):
        read_token(SECRET, mangle(token), NOW)
    with pytest.raises(LinkError):
        read_token(OTHER_SECRET, token, NOW)


def test_a_statement_of_reasons_has_every_element() -> None:
    case = {"id": "AD-1", "category": "phishing", "origin": "notice"}
    s = statements.build(
        case=case,
        services=["S1", "S2"],
        scope="account",
        facts=["first complaint"],
        evidence="GET /login",
        automation="fully",
        statement_url="https://desk.example/s/t",
        config=DsaConfig(),
        now=NOW,
    )
    assert s["restriction"]["measure"] == "suspension of the services of the account"
    assert s["restriction"]["services"] == ["S1", "S2"] and s["restriction"]["duration"]
    assert s["restriction"]["territorial_scope"]
    assert s["facts"]["triggered_by"] == "notice" and s["facts"]["evidence"] == "GET /login"
    assert s["automation"]["decision"] == "fully" and "automated" in s["automation"]["text"]
    assert s["grounds"]["type"] == "both" and s["grounds"]["legal"] and "§4" in s["grounds"]["contractual"]
    assert {"contest", "courts", "regulator"} <= set(s["redress"])
    assert s["lifting"]["link"] == "https://desk.example/s/t"


def test_spam_is_a_contractual_ground_only() -> None:
    assert statements.ground_for("spam", DsaConfig())[0:2] == ("contractual", None)


def test_notice_elements() -> None:
    report = AbuseReport(reporter="jean@example.fr", reporter_name="Jean Dupont", urls=["http://x.example/"])
    full = elements(
        report,
        "Ce site imite ma banque et vole les identifiants de ses clients, je le signale"
        " de bonne foi, ces informations sont exactes et complètes.",
    )
    assert full.missing == []
    bare = elements(AbuseReport(reporter="x@example.org"), "spam")
    assert bare.missing == ["explanation", "location", "identity", "good_faith"]
    assert elements(report, "he threatened to kill my family").threat_to_life
    assert not elements(report, "a phishing kit on your server").threat_to_life


def _case(cid: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": cid,
        "category": "spam",
        "origin": "notice",
        "status": "warned",
        "customer_id": "C1",
        "opened_at": NOW,
        "received_at": NOW,
        "effect_at": None,
        "automation": "fully",
        "reporter_kind": "person",
        "answered_at": None,
        "sla_due_at": NOW + timedelta(hours=24),
        "flags": [],
    }
    return base | kw


def test_transparency_figures_by_hand() -> None:
    h = timedelta(hours=1)
    cases = [
        _case("A", category="phishing", effect_at=NOW + 2 * h, answered_at=NOW + h, status="suspended"),
        _case("B", effect_at=NOW + 4 * h, answered_at=NOW + 30 * h, automation="partially", status="warned"),
        _case("C", origin="automated-notice", reporter_kind="feedback-loop", status="monitoring"),
        _case("D", origin="own-initiative", customer_id="C2", status="suspended", effect_at=NOW),
        _case(
            "E",
            origin="authority-order",
            category="illegal-content",
            effect_at=NOW + 3 * h,
            status="suspended",
            customer_id="C3",
            flags=["art18-suspicion"],
        ),
        _case("old", received_at=datetime(2025, 5, 1, tzinfo=UTC), opened_at=datetime(2025, 5, 1, tzinfo=UTC)),
    ]
    statement_rows = [
        {"case_id": "A", "ground": "both", "measure": "account"},
        {"case_id": "D", "ground": "contractual", "measure": "mailbox"},
        {"case_id": "E", "ground": "legal", "measure": "account"},
    ]
    answers = [
        {"case_id": "A", "kind": "contest", "at": NOW, "decided_at": NOW + 5 * h, "decision": "reversed"},
        {"case_id": "B", "kind": "fixed", "at": NOW, "decided_at": None, "decision": None},
    ]
    f = transparency.figures(2026, cases, statement_rows, answers)
    assert f["orders"] == {"total": 1, "by_category": {"illegal-content": 1}, "median_hours_to_effect": 3.0}
    assert f["notices"]["total"] == 3 and f["notices"]["from_automated_reporters"] == 1
    assert f["notices"]["by_category"] == {"phishing": 1, "spam": 2}
    assert f["notices"]["actions"] == 2 and f["notices"]["median_hours_to_action"] == 3.0
    assert f["notices"]["restrictions_on_legal_ground"] == 1 and f["notices"]["restrictions_on_contractual_ground"] == 0
    assert f["notices"]["handled_by_automated_means_share"] == round(2 / 3, 4)
    assert f["own_initiative"] == {"total": 1, "by_category": {"spam": 1}, "measures": {"mailbox": 1}}
    assert f["contests"] == {"total": 1, "decided": 1, "upheld": 0, "reversed": 1, "median_hours_to_decide": 5.0}
    assert f["internal"]["answered_within_sla_share"] == 0.25  # A answered in time; B late; D, E unanswered
    assert f["internal"]["repeat_offenders"] == 1  # C1: A suspended + B warned
    assert f["internal"]["art18_referrals"] == 1
