"""Configuration that cannot be half right: no working default link secret, weak ones refused, huge expiries
answer a clean error, answer forms are single-use, and a bad SLA calendar is refused at start and by doctor."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from abuse_desk.doctor import configuration, sla_calendar
from core.errors import ConfigError
from core.settings import Settings, load_settings
from policy.links import LinkError, answer_key, make_token, new_form_key, nonce_key, read_form_key, read_token
from tests.unit.test_layout import ROOT, _imports

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "Vb3-Kx9qT2mW7zL4pR8sN1cY6hJ0dF5gA"


def test_the_default_link_secret_signs_nothing() -> None:
    assert Settings().dsa.link_secret == ""
    with pytest.raises(LinkError, match="no usable link secret"):
        make_token(Settings().dsa.link_secret, "AD-1", "C1", NOW + timedelta(days=1))
    with pytest.raises(LinkError):
        read_token("change-me", "eyJ9.AAAA", NOW)


@pytest.mark.parametrize("weak", ["change-me", "short-but-random-9f3k", "a" * 40, "please-change-me-to-a-long-secret"])
def test_a_weak_configured_link_secret_is_refused_at_start_naming_the_key(weak: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"ABUSE_DESK_LINK_SECRET": weak})
    assert "dsa.link_secret (environment ABUSE_DESK_LINK_SECRET)" in str(refused.value)


def test_a_strong_configured_link_secret_is_taken() -> None:
    assert load_settings(environ={"ABUSE_DESK_LINK_SECRET": SECRET}).dsa.link_secret == SECRET


def _signed(payload: bytes) -> str:
    sig = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(sig)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("expiry", ["99999999999999999999", "-99999999999999999999", "9" * 5000])
def test_a_link_with_a_huge_expiry_is_a_clean_400_not_a_crash(expiry: str) -> None:
    with pytest.raises(LinkError) as refused:
        read_token(SECRET, _signed(f"AD-1|C1|statement|{expiry}".encode()), NOW)
    assert refused.value.code == 400


def test_forged_and_expired_links_say_so_with_their_status() -> None:
    token = make_token(SECRET, "AD-1", "C1", NOW + timedelta(days=1))
    with pytest.raises(LinkError) as forged:
        read_token(SECRET[::-1], token, NOW)
    with pytest.raises(LinkError) as expired:
        read_token(SECRET, token, NOW + timedelta(days=2))
    assert (forged.value.code, expired.value.code) == (403, 410)


def test_the_link_lifetime_is_bounded_so_no_link_can_overflow(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[dsa]\nlink_days = 1000000000\n")
    with pytest.raises(ConfigError, match=r"dsa\.link_days"):
        load_settings(path, environ={})


def test_each_answer_form_is_single_use_and_bound_to_its_link() -> None:
    token = make_token(SECRET, "AD-1", "C1", NOW + timedelta(days=1))
    other = make_token(SECRET, "AD-2", "C1", NOW + timedelta(days=1))
    first, second = new_form_key(SECRET, token), new_form_key(SECRET, token)
    assert first != second  # a fresh nonce per page: recording it makes a replayed POST recognisable
    nonce = read_form_key(SECRET, token, first)
    assert nonce_key(token, nonce) != nonce_key(token, read_form_key(SECRET, token, second))
    with pytest.raises(LinkError):
        read_form_key(SECRET, other, first)
    with pytest.raises(LinkError):
        read_form_key(SECRET, token, nonce + ".deadbeef")
    assert answer_key(token, "contest") != answer_key(token, "help") != answer_key(other, "help")
    assert token not in answer_key(token, "contest")


@pytest.mark.parametrize(
    ("sla", "key"),
    [
        ('timezone = "Europe/Pariss"', "policy.sla.timezone"),
        ('timezone = ""', "policy.sla.timezone"),
        ("working_days = [1, 7]", "policy.sla.working_days"),
        ("working_days = []", "policy.sla.working_days"),
        ("day_start = 18\nday_end = 8", "day_start"),
        ('holidays_country = "XX"', "holidays_country"),
        ('holidays_country = "FR"\nholidays_subdivision = "ZZ"', "holidays_subdivision"),
        ('extra_closed_days = ["2026-02-30"]', "policy.sla.extra_closed_days"),
    ],
)
def test_a_bad_sla_calendar_is_refused_at_start_naming_the_key(tmp_path: Path, sla: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[policy.sla]\n{sla}\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={})
    assert key in str(refused.value)


def test_doctor_shows_the_calendar_it_computes_and_fails_one_with_no_working_hour() -> None:
    good = sla_calendar(Settings())
    assert good[0].state == "ok" and "Europe/Paris" in good[0].detail and "due" in good[0].detail
    closed = Settings.model_validate({"policy": {"sla": {"working_days": [0], "hours": 24 * 600}}})
    assert sla_calendar(closed)[0].state == "fail"
    assert any(c.name == "sla calendar" for c in configuration(Settings()))


def test_doctor_fails_a_weak_configured_secret_even_if_validation_was_bypassed() -> None:
    settings = Settings()
    settings.dsa.link_secret = "change-me"
    assert [c.state for c in configuration(settings) if c.name == "link secret"] == ["fail"]


@pytest.mark.parametrize("module", ["policy/trust.py", "policy/recipients.py", "policy/links.py", "core/domains.py"])
def test_the_trust_and_recipient_rules_are_pure(module: str) -> None:
    io = {"socket", "aio_pika", "aiormq", "sqlalchemy", "aiosmtpd", "aiosmtplib", "os", "subprocess", "requests"}
    assert {n for n in _imports(ROOT / module) if n.split(".")[0] in io} == set()


def test_every_deploy_file_wires_the_link_secret_and_none_ships_a_usable_one() -> None:
    import yaml

    deploy = ROOT / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text(encoding="utf-8"))
    assert compose["x-abuse-desk"]["environment"]["ABUSE_DESK_LINK_SECRET"] == "${ABUSE_DESK_LINK_SECRET:-}"
    secret = yaml.safe_load((deploy / "k8s" / "secret.example.yaml").read_text(encoding="utf-8"))
    assert secret["stringData"]["ABUSE_DESK_LINK_SECRET"] == ""
    env = (deploy / "systemd" / "abuse-desk.env.example").read_text(encoding="utf-8").splitlines()
    assert "ABUSE_DESK_LINK_SECRET=" in env
