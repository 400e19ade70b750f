"""Settings: the example file is valid, the environment overrides it, and mistakes are named plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "abuse-desk.example.toml"


def test_the_example_configuration_is_valid_and_holds_the_defaults() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert settings.policy.warning_hours == 48 and settings.policy.sla.timezone == "Europe/Paris"
    assert settings.abuse_addresses == ["abuse@localhost"]


def test_the_environment_overrides_the_file() -> None:
    secret = "Zq8-wN3vT1xK7mR2pL9sB4cY6hJ0dF5gA_e"
    env = {"ABUSE_DESK_SMTP_LISTEN": "0.0.0.0:25", "ABUSE_DESK_PREFIX": "staging.", "ABUSE_DESK_LINK_SECRET": secret}
    settings = load_settings(EXAMPLE, environ=env)
    assert (settings.smtp_listen, settings.prefix, settings.dsa.link_secret) == ("0.0.0.0:25", "staging.", secret)


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ("[policy]\nwarning_hours = -1\n", {}, "policy.warning_hours"),
        ("[policy]\nwarning_hourz = 48\n", {}, "policy.warning_hourz"),
        ("", {"ABUSE_DESK_SMTP_LISTEN": "nonsense"}, "ABUSE_DESK_SMTP_LISTEN"),
        ("", {"ABUSE_DESK_AMQP_URL": "http://x"}, "ABUSE_DESK_AMQP_URL"),
        ("abuse_addresses = []\n", {}, "abuse_addresses"),
    ],
)
def test_a_mistake_is_named(tmp_path: Path, toml: str, env: dict[str, str], named: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(path, environ=env)


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    broken = tmp_path / "b.toml"
    broken.write_text("[policy\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})
