"""The listener's fast MAIL FROM / RCPT TO address parser gives exactly aiosmtpd's answer (which it falls back to)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from ingest.smtp import AbuseHandler, AbuseSMTP


def outcome(parse: Callable[[str], Any], arg: str) -> Any:
    """The parse result, or the exception type aiosmtpd's own parser raises on odd input (caught by 451 there)."""
    try:
        return parse(arg)
    except Exception as exc:
        return type(exc).__name__


@pytest.fixture(scope="module")
def protocol() -> Iterator[AbuseSMTP]:
    loop = asyncio.new_event_loop()
    try:
        yield AbuseSMTP(AbuseHandler(Settings(), publish=None), hostname="t", loop=loop)  # type: ignore[arg-type]
    finally:
        loop.close()


@pytest.mark.parametrize(
    "arg",
    [
        "<reporter@example.org>",
        "<a.b+c@x-y.example> SIZE=5000 BODY=8BITMIME",
        "<a@b>\tSMTPUTF8",
        "<>",
        '<"quoted local"@example.org>',
        "<a..b@example.org>",
        "<a@[192.0.2.1]>",
        "<@route:a@b>",
        "bare@example.org",
        "<a@b.>",
    ],
)
def test_known_forms_parse_as_aiosmtpd_parses_them(protocol: AbuseSMTP, arg: str) -> None:
    assert protocol._getaddr(arg) == SMTP._getaddr(protocol, arg)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab.@<> \t-+\"(),:;[]\\é=", max_size=14))
def test_any_argument_parses_as_aiosmtpd_parses_it(protocol: AbuseSMTP, arg: str) -> None:
    assert outcome(protocol._getaddr, arg) == outcome(lambda a: SMTP._getaddr(protocol, a), arg)
