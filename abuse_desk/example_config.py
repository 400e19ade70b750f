"""deploy/abuse-desk.example.toml generated from the settings model: every key with its default."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from core.settings import ENV_VARS, Settings

HEADER = """\
# abuse-desk configuration (ABUSE_DESK_CONFIG names this file): every key with its default.
# Generated from the settings model (core/settings.py) by `abuse-desk deploy example-config`; do not edit by hand.
# What differs per deployment comes from the environment and overrides the key it names:
{env}
# Relative paths (./var/...) are taken under the desk's home: ABUSE_DESK_HOME, else this file's folder.
"""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _doc(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""


def _is_table(value: Any) -> bool:
    return isinstance(value, BaseModel) or (
        isinstance(value, dict) and bool(value) and all(isinstance(v, BaseModel) for v in value.values())
    )


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, BaseModel) for v in value)


def _section(model: BaseModel, path: str, out: list[str]) -> None:
    tables: list[tuple[str, Any]] = []
    fields = type(model).model_fields
    for name in fields:
        value = getattr(model, name)
        full = f"{path}.{name}" if path else name
        env = next((var for var, key in ENV_VARS.items() if key == full), None)
        note = f"  # environment: {env}" if env else ""
        if value is None:
            out.append(f"# {_key(name)} =   (no default){note}")
        elif _is_table(value) or _is_table_array(value):
            tables.append((name, value))
        elif isinstance(value, dict) and not value:
            out.append(f"{_key(name)} = {{}}{note}")
        else:
            out.append(f"{_key(name)} = {_value(value.model_dump() if isinstance(value, BaseModel) else value)}{note}")
    for name, value in tables:
        full = f"{path}.{name}" if path else name
        if isinstance(value, BaseModel):
            out += ["", f"[{full}]" + (f"  # {_doc(type(value))}" if _doc(type(value)) else "")]
            _section(value, full, out)
        elif isinstance(value, dict):
            for key, item in value.items():
                out += ["", f"[{full}.{_key(key)}]"]
                _section(item, f"{full}.{key}", out)
        else:
            for item in value:
                out += ["", f"[[{full}]]" + (f"  # {_doc(type(item))}" if _doc(type(item)) else "")]
                _section(item, full, out)


def example_toml() -> str:
    """The example configuration: the defaults of Settings(), every section and key."""
    env = "\n".join(f"#   {var} -> {key}" for var, key in ENV_VARS.items())
    out = [HEADER.format(env=env).rstrip("\n"), ""]
    _section(Settings(), "", out)
    return "\n".join(out).rstrip("\n") + "\n"


def model_keys(model: type[BaseModel] = Settings, path: str = "") -> list[str]:
    """Every key path of the settings model (for the test that the example holds them all)."""
    keys = []
    for name, info in model.model_fields.items():
        full = f"{path}.{name}" if path else name
        keys.append(full)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += model_keys(annotation, full)
    return keys
