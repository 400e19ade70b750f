"""Who is believed: trusted reporters by exact identity and format, PSL alignment, Received addresses, replies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.domains import aligned, is_mailbox_provider, organizational_domain
from core.errors import ConfigError
from core.report import AbuseReport, Envelope, ReportAuth
from core.settings import Authority, Settings, TrustConfig, TrustedReporter, load_settings
from ingest.authenticate import authenticate, from_domain
from policy.trust import authority_of, may_join_case, received_addresses, received_check, trusted_reporter
from tests.dkimkey import dns_name, sign, txt_record

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def report(
    reporter: str,
    *,
    fmt: str = "arf",
    signed: list[str] | None = None,
    aligned_: bool | None = None,
    envelope: str | None = None,
    spf: str | None = None,
    **kw: Any,
) -> AbuseReport:
    """A report from `reporter` (its From), DKIM-signed by `signed` (verified), as ingest would fill it."""
    author = reporter.rsplit("@", 1)[1]
    passing = signed or []
    auth = ReportAuth(
        checked=True,
        from_domain=author,
        dkim_pass=passing,
        dkim_aligned=aligned(passing[0], author) if aligned_ is None and passing else bool(aligned_),
        spf=spf,
    )
    env = Envelope(mail_from=reporter if envelope is None else envelope, received_at=NOW)
    return AbuseReport(format=fmt, reporter=reporter, auth=auth, envelope=env, **kw)


DEFAULTS = TrustConfig()


def test_an_outlook_user_signed_by_hotmail_is_a_person_not_microsoft_jmrp() -> None:
    person = report("someone@hotmail.com", signed=["hotmail.com"])
    assert trusted_reporter(person, DEFAULTS) == (None, False)
    arf_from_a_person = report("someone@hotmail.com", signed=["hotmail.com"], fmt="arf")
    assert trusted_reporter(arf_from_a_person, DEFAULTS) == (None, False)


def test_jmrp_arf_from_its_exact_address_with_an_aligned_signature_is_trusted() -> None:
    jmrp = report("staff@hotmail.com", signed=["hotmail.com"])
    assert trusted_reporter(jmrp, DEFAULTS) == ("Microsoft JMRP", True)


def test_the_exact_address_without_a_signature_is_only_a_claim() -> None:
    forged = report("staff@hotmail.com", signed=[])
    assert trusted_reporter(forged, DEFAULTS) == ("Microsoft JMRP", False)


def test_the_trusted_address_writing_free_text_is_not_the_feedback_loop() -> None:
    text = report("staff@hotmail.com", signed=["hotmail.com"], fmt="freetext")
    assert trusted_reporter(text, DEFAULTS) == (None, False)


def test_a_cert_is_trusted_for_its_feeds_and_not_for_a_hand_written_mail() -> None:
    feed = report("autoreports@shadowserver.org", signed=["shadowserver.org"], fmt="shadowserver")
    assert trusted_reporter(feed, DEFAULTS) == ("Shadowserver", True)
    note = report("analyst@shadowserver.org", signed=["shadowserver.org"], fmt="freetext")
    assert trusted_reporter(note, DEFAULTS) == (None, False)


def test_an_exclusive_dkim_domain_proves_the_reporter_whatever_the_from_says() -> None:
    trust = TrustConfig(
        reporters=[TrustedReporter(name="FBL", dkim_domains=["fbl.bigmail.example"], kind="feedback-loop")]
    )
    signed = report("complaints@bigmail.example", signed=["fbl.bigmail.example"], aligned_=True)
    assert trusted_reporter(signed, trust) == ("FBL", True)
    other_signer = report("complaints@bigmail.example", signed=["bigmail.example"])
    assert trusted_reporter(other_signer, trust) == (None, False)


def test_the_old_domains_key_still_matches_subdomains_when_authenticated() -> None:
    trust = TrustConfig(reporters=[TrustedReporter(name="CERT", domains=["cert.example"], kind="cert")])
    sub = report("feeds@reports.cert.example", signed=["cert.example"], fmt="xarf-v4")
    assert trusted_reporter(sub, trust) == ("CERT", True)
    lookalike = report("feeds@evilcert.example", signed=["evilcert.example"], fmt="xarf-v4")
    assert trusted_reporter(lookalike, trust) == (None, False)


def test_a_mailbox_provider_domain_as_a_trusted_identity_is_refused_at_load(tmp_path: Any) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[trust.reporters]]\nname = "JMRP"\ndomains = ["hotmail.com"]\nkind = "feedback-loop"\n')
    with pytest.raises(ConfigError, match=r"trust\.reporters\.0.*hotmail\.com is a mailbox provider"):
        load_settings(path, environ={})


def test_the_defaults_trust_no_mailbox_provider_domain() -> None:
    for entry in Settings().trust.reporters:
        assert not any(is_mailbox_provider(d) for d in [*entry.domains, *entry.dkim_domains]), entry.name
        assert entry.accepted_formats and "freetext" not in entry.accepted_formats


def test_an_unknown_format_or_an_entry_without_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        TrustedReporter(name="x", addresses=["a@x.example"], formats=["arf", "pdf"])
    with pytest.raises(ValueError, match="exact addresses"):
        TrustedReporter(name="x")


@pytest.mark.parametrize(
    ("signer", "author", "expected"),
    [
        ("example.co.uk", "mail.example.co.uk", True),
        ("example.co.uk", "evil.co.uk", False),
        ("co.uk", "victim.co.uk", False),  # a public suffix aligns with nothing
        ("com", "hotmail.com", False),
        ("alice.github.io", "bob.github.io", False),  # a private suffix of the PSL
        ("mail.yahoo.com", "arf.mail.yahoo.com", True),
        ("Example.NET.", "example.net", True),
    ],
)
def test_alignment_is_decided_by_the_public_suffix_list(signer: str, author: str, expected: bool) -> None:
    assert aligned(signer, author) is expected


def test_the_organizational_domain_of_a_public_suffix_is_none() -> None:
    assert organizational_domain("co.uk") is None and organizational_domain("a.b.example.co.uk") == "example.co.uk"


def test_ingest_finds_no_author_domain_in_ambiguous_from_fields() -> None:
    assert from_domain(b"From: a@x.example\r\nFrom: b@y.example\r\n\r\nbody") is None
    assert from_domain(b"From: a@x.example, b@y.example\r\n\r\nbody") is None
    assert from_domain(b'From: "staff@hotmail.com" <me@evil.example>\r\n\r\nbody') == "evil.example"


def test_ingest_aligns_a_subdomain_signature_through_the_psl() -> None:
    raw = b"From: Reports <feeds@reports.signer.example>\r\nTo: abuse@localhost\r\nSubject: x\r\n\r\nhello\r\n"
    pinned = {dns_name("signer.example"): txt_record()}

    def lookup(name: bytes, timeout: float = 1.0) -> bytes | None:
        found = pinned.get(name.decode().rstrip("."))
        return found.encode() if found else None

    auth = authenticate(sign(raw, "signer.example"), lookup)
    assert auth.dkim_pass == ["signer.example"] and auth.dkim_aligned
    auth = authenticate(sign(raw.replace(b"reports.signer.example", b"signer.example.evil"), "signer.example"), lookup)
    assert auth.dkim_pass == ["signer.example"] and not auth.dkim_aligned


def test_spf_counts_only_for_an_envelope_domain_aligned_with_the_from() -> None:
    trust = TrustConfig(reporters=[TrustedReporter(name="FBL", addresses=["fbl@isp.example"], kind="feedback-loop")])
    aligned_spf = report("fbl@isp.example", envelope="bounces@mail.isp.example", spf="pass")
    assert trusted_reporter(aligned_spf, trust) == ("FBL", True)
    foreign_spf = report("fbl@isp.example", envelope="spammer@attacker.example", spf="pass")
    assert trusted_reporter(foreign_spf, trust) == ("FBL", False)


def test_an_authority_is_recognised_only_by_authenticated_mail_from_its_domains() -> None:
    police = [Authority(name="Police", domains=["interieur.gouv.fr"])]
    order = report("pharos@interieur.gouv.fr", signed=["interieur.gouv.fr"], fmt="freetext")
    assert authority_of(order, police) is not None
    forged = report("pharos@interieur.gouv.fr", signed=[], fmt="freetext")
    assert authority_of(forged, police) is None
    provider = [Authority(name="Bad config", domains=["gmail.com"])]
    assert authority_of(report("anyone@gmail.com", signed=["gmail.com"], fmt="freetext"), provider) is None


RECEIVED = (
    "from mx.example ([203.0.113.10]) by mx.reporter.example (Postfix) with ESMTPS id 4Q; Mon, 1 Dec 2026 10:15:30"
)


def test_the_received_check_compares_parsed_addresses_not_substrings() -> None:
    r = AbuseReport(reported_received=[RECEIVED])
    assert received_check(r, ["203.0.113.1"]) is not None and not received_check(r, ["203.0.113.1"]).passed  # type: ignore[union-attr]
    check = received_check(r, ["203.0.113.10"])
    assert check is not None and check.passed and "203.0.113.10" in check.reason


def test_the_received_check_reads_only_the_from_clause_and_every_address_form() -> None:
    by_us = AbuseReport(reported_received=["from relay.example ([198.51.100.7]) by [203.0.113.10] with SMTP"])
    assert not received_check(by_us, ["203.0.113.10"]).passed  # type: ignore[union-attr]
    v6 = AbuseReport(reported_received=["from x (x.example [IPv6:2001:db8::25]) by mx.example"])
    assert received_check(v6, ["2001:0db8:0:0::25"]).passed  # type: ignore[union-attr]
    mapped = AbuseReport(reported_received=["from x ([::ffff:203.0.113.10]:54321 helo=x) by mx.example"])
    assert received_check(mapped, ["203.0.113.10"]).passed  # type: ignore[union-attr]
    assert received_addresses("from a (b [10.0.0.1]) by c; 10:15:30 +0100") == [received_addresses("x 10.0.0.1")[0]]
    assert received_check(AbuseReport(reported_received=[RECEIVED]), ["shop.example"]) is None


CASE_REPORTER = "paula@company.example"


def test_a_reply_from_the_cases_reporter_joins_when_envelope_and_from_agree() -> None:
    assert may_join_case(report(CASE_REPORTER, fmt="freetext"), CASE_REPORTER)
    assert may_join_case(report("Paula@Company.example", fmt="freetext"), CASE_REPORTER)


def test_a_stranger_quoting_the_case_reference_does_not_join() -> None:
    assert not may_join_case(report("mallory@attacker.example", fmt="freetext"), CASE_REPORTER)
    forged_from = report(CASE_REPORTER, fmt="freetext", envelope="mallory@attacker.example")
    assert not may_join_case(forged_from, CASE_REPORTER)
    assert not may_join_case(report(CASE_REPORTER, fmt="freetext"), None)


def test_an_authenticated_reply_joins_even_through_another_envelope() -> None:
    signed = report(CASE_REPORTER, fmt="freetext", signed=["company.example"], envelope="bounce@lists.example")
    assert may_join_case(signed, CASE_REPORTER)
    colleague = report("bob@company.example", fmt="freetext", signed=["company.example"])
    assert may_join_case(colleague, CASE_REPORTER)


def test_an_authenticated_stranger_at_the_same_mailbox_provider_does_not_join() -> None:
    assert not may_join_case(report("eve@gmail.com", fmt="freetext", signed=["gmail.com"]), "paula@gmail.com")
