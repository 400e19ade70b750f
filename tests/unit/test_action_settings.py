"""The [suspend], [outbound] and [notify.dkim] sections: validated at start, secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.outbound import SenderOwner, limit_for
from core.action_settings import OutboundConfig
from core.errors import ConfigError
from core.settings import load_settings


def test_a_remote_backend_needs_its_url_and_secret_which_may_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "desk.toml"
    config.write_text('[suspend]\nbackend = "webhook"\nurl = "https://platform.example/hooks/abuse"\n')
    with pytest.raises(ConfigError, match="ABUSE_DESK_SUSPEND_SECRET"):
        load_settings(config, environ={})
    settings = load_settings(config, environ={"ABUSE_DESK_SUSPEND_SECRET": "k"})
    assert settings.suspend.secret == "k" and settings.suspend.backend == "webhook"
    config.write_text('[suspend]\nbackend = "whmcs"\nurl = "https://billing.example/includes/api.php"\n')
    with pytest.raises(ConfigError, match="identifier"):
        load_settings(config, environ={"ABUSE_DESK_SUSPEND_SECRET": "k"})
    env = {"ABUSE_DESK_SUSPEND_SECRET": "k", "ABUSE_DESK_SUSPEND_IDENTIFIER": "id"}
    assert load_settings(config, environ=env).suspend.identifier == "id"
    config.write_text('[suspend]\nbackend = "cpanel"\n')
    with pytest.raises(ConfigError, match=r"suspend\.backend"):
        load_settings(config, environ={})


def test_defaults_keep_the_ledger_and_60_recipients_an_hour() -> None:
    settings = load_settings(environ={})
    assert settings.suspend.backend == "ledger" and settings.notify.dkim is None
    assert settings.outbound.recipients_per_hour == 60 and settings.outbound.window_minutes == 60


def test_limit_resolution_order() -> None:
    config = OutboundConfig(
        per_sender={"vip@shop.example": 5000, "shop.example": 1000}, per_customer={"C1": 200}, per_plan={"pro": 300}
    )
    owner = SenderOwner("C1", ("S1",), ("pro",))
    assert limit_for("vip@shop.example", owner, config) == 5000
    assert limit_for("other@shop.example", owner, config) == 1000
    assert limit_for("a@customer.example", owner, config) == 200
    assert limit_for("a@customer.example", SenderOwner("C2", ("S2",), ("pro", "basic")), config) == 300
    assert limit_for("a@customer.example", None, config) == 60
