"""The tests' own DKIM key: sign a report as a reporter domain, and the pinned TXT record that verifies it."""

from __future__ import annotations

from pathlib import Path

import dkim

from core.settings import DEFAULT_FORMATS

KEYS = Path(__file__).parent / "keys"
SELECTOR = "test"


def private_key() -> bytes:
    return (KEYS / "test-dkim.key").read_bytes()


def txt_record() -> str:
    return "v=DKIM1; k=rsa; p=" + (KEYS / "test-dkim.pub.b64").read_text().strip()


def dns_name(domain: str) -> str:
    return f"{SELECTOR}._domainkey.{domain}"


def sign(raw: bytes, domain: str) -> bytes:
    """The mail with a DKIM-Signature of `domain` prepended (relaxed/simple, rsa-sha256)."""
    return dkim.sign(raw, SELECTOR.encode(), domain.encode(), private_key()) + raw


def toml_trust(domains: dict[str, str]) -> str:
    """A [trust] section listing each domain (name -> kind) as a trusted reporter, with its pinned key."""
    lines = ["[trust]", "resolve_urls = false", "[trust.dns_txt]"]
    lines += [f'"{dns_name(d)}" = "{txt_record()}"' for d in domains]
    for domain, kind in domains.items():
        lines += ["[[trust.reporters]]", f'name = "{domain}"', f'domains = ["{domain}"]', f'kind = "{kind}"']
        # the test reporters also write by hand (the default formats of a kind are machine formats only)
        lines.append("formats = [" + ", ".join(f'"{f}"' for f in (*DEFAULT_FORMATS[kind], "freetext")) + "]")
    return "\n".join(lines) + "\n"
