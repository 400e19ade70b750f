"""deploy/abuse-desk.example.toml is generated from the settings model: every key, every default, up to date."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from abuse_desk.example_config import example_toml, model_keys
from core.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "abuse-desk.example.toml"


def test_the_example_file_is_the_generated_one() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == example_toml(), (
        "deploy/abuse-desk.example.toml is stale: `abuse-desk deploy example-config -o deploy/abuse-desk.example.toml`"
    )


def test_the_example_holds_every_key_of_the_model_and_its_defaults() -> None:
    text = example_toml()
    assert load_settings(EXAMPLE, environ={}).model_dump() == Settings().model_dump()
    data = tomllib.loads(text)
    written = set()

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                written.add(f"{path}.{k}" if path else k)
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(data, "")
    commented = {m.group(1) for m in re.finditer(r"^# (\w+) =", text, re.M)}
    missing = [k for k in model_keys() if k not in written and k.rsplit(".", 1)[-1] not in commented]
    assert missing == []
    for key in ("trust", "dsa", "policy.require_confirmation", "policy.sla.timezone", "dsa.link_days"):
        assert key in written
