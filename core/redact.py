"""Remove the complainant's identity from text that leaves for a customer: `redact`, pure and never raising."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from core import redact_lexicon as lx
from core.redact_numbers import phones, postal
from core.redact_text import Masks, attributions, display_names, fields, headers, signatures
from core.report import AbuseReport

MARK = lx.MARK
_IDENTITY_INCIDENTS = 200  # incidents whose evidence is searched for recipients (a feed's rows name none)
_NAME_BOUNDS = (r"(?<![\w@./:\-])(?:", r")(?![\w@\-]|\.[\w])")
_UNSUB_PARAM_RE = re.compile(r"[?&;](?:e|em|email|mail|u|user|rcpt|recipient|to|address)=([^&\s>;]+)", re.I)


@dataclass(frozen=True)
class ReporterIdentity:
    """Everything that identifies the complainant: e-mail addresses (lower case) and names as written."""

    addresses: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, addresses: Iterable[str | None] = (), names: Iterable[str | None] = ()) -> ReporterIdentity:
        """An identity from raw values (blank, malformed and duplicate ones dropped)."""
        addrs = {_clean_address(a) for a in addresses if isinstance(a, str)}
        found = {" ".join(n.replace('"', " ").split()).strip("'<>(),;: ") for n in names if isinstance(n, str)}
        return cls(frozenset(a for a in addrs if a), frozenset(n for n in found if len(n) >= 2 and "@" not in n))

    def __or__(self, other: ReporterIdentity) -> ReporterIdentity:
        return ReporterIdentity(self.addresses | other.addresses, self.names | other.names)


def identity_of(report: AbuseReport) -> ReporterIdentity:
    """Who complained: reporter address and name, the abuse@ mail's envelope, and every recipient the
    reported message names (To/Cc/Delivered-To/X-Original-To/Original-Rcpt-To/Removal-Recipient/
    Final-Recipient..., Received `for`, VERP in Return-Path, List-Unsubscribe parameters)."""
    addresses: list[str | None] = [report.reporter, report.envelope.mail_from, *report.envelope.rcpt_tos]
    names: list[str | None] = [report.reporter_name]
    try:
        for text in (report.evidence, *(i.evidence for i in report.incidents[:_IDENTITY_INCIDENTS])):
            found_addresses, found_names = _recipients_in(text or "")
            addresses += found_addresses
            names += found_names
    except Exception:  # never raise: what was found so far still counts
        pass
    return ReporterIdentity.of(addresses, names)


def keep_of(report: AbuseReport) -> list[str]:
    """What the customer needs from a report: its offending URLs, addresses, domains and mailboxes."""
    out = [*report.urls, *report.source_ips, *report.domains, *report.emails]
    for incident in report.incidents:
        out += [v for v in (incident.ip, incident.url, incident.domain, incident.email) if v]
    return out


def redact(text: str, identity: ReporterIdentity, *, keep: Iterable[str] = ()) -> str:
    """`text` without the complainant: their addresses and names, phone numbers, postal addresses, signature
    blocks, other e-mail addresses, people quoted in a reply chain and the reported message's recipient
    fields, each replaced by `[redacted]`; every `keep` string (offending URL, IP, the customer's own address,
    time stamps, log lines) stays intact unless it holds one of the complainant's addresses. Never raises."""
    return _Redactor(identity, keep).text(text)


def redact_report(text: str, report: AbuseReport, *, keep: Iterable[str] = ()) -> str:
    """`redact` with the report's own identity and keep list (plus `keep`: the customer's addresses):
    the drop-in for the former `policy.commands.redact(text, report)`."""
    return redact(text, identity_of(report), keep=[*keep_of(report), *keep])


def redact_json(value: Any, identity: ReporterIdentity, *, keep: Iterable[str] = ()) -> Any:
    """A copy of a JSON value (the statement of reasons) with every string redacted; keys stay as they are."""
    return _Redactor(identity, keep).json(value, 0)


def _clean_address(value: str) -> str:
    value = value.strip().strip("<>").strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or len(value) > 254 or re.search(r"\s", value):
        return ""
    return value.lower()


def _recipients_in(text: str) -> tuple[list[str], list[str]]:
    """Addresses and display names of the recipients the header fields of a text name."""
    addresses: list[str] = []
    names: list[str] = []
    for name, value in fields(text.split("\n")):
        if name == "list-unsubscribe":  # the customer's unsubscribe address, with the recipient in its parameters
            addresses += [unquote(v) for v in _UNSUB_PARAM_RE.findall(value) if "@" in unquote(v)]
        elif name in lx.RECIPIENT_FIELDS:
            addresses += lx.WHOLE_ADDRESS_RE.findall(value)
            names += display_names(value)
        if name == "received":
            addresses += [a for m in lx.RECEIVED_FOR_RE.finditer(value) for a in lx.WHOLE_ADDRESS_RE.findall(m[0])]
        if name in ("return-path", "list-unsubscribe", "sender", "from"):
            addresses += [v.replace("=", "@", 1) for v in lx.VERP_RE.findall(value)]
    return addresses, names


@dataclass(frozen=True)
class _Patterns:
    addresses: re.Pattern[str] | None
    verp: re.Pattern[str] | None
    names: re.Pattern[str] | None
    words: frozenset[str]


@lru_cache(maxsize=256)
def _patterns(identity: ReporterIdentity) -> _Patterns:
    addrs, verps = [], []
    for address in sorted(identity.addresses, key=len, reverse=True):
        local, _, domain = address.rpartition("@")
        at = r"(?:@|%40|[ \t]*[\[(][ \t]*at[ \t]*[\])][ \t]*)"
        addrs.append(re.escape(local) + r"(?:\+[\w.-]{0,40})?" + at + re.escape(domain))
        verps.append(re.escape(local) + "=" + re.escape(domain))
    return _Patterns(
        re.compile(r"(?<![\w.+'-])(?:" + "|".join(addrs) + r")(?![\w-]|\.[\w-])", re.I) if addrs else None,
        re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(verps) + r")(?=@)", re.I) if verps else None,
        _names_re(identity.names, re.I),
        frozenset(_name_words(identity.names, identity.addresses)),
    )


def _names_re(names: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    alts = [r"[ \t\n]+".join(map(re.escape, n.split())) for n in sorted(names, key=len, reverse=True) if n.split()]
    return re.compile(_NAME_BOUNDS[0] + "|".join(alts) + _NAME_BOUNDS[1], flags) if alts else None


def _name_words(names: Iterable[str], addresses: Iterable[str] = ()) -> set[str]:
    words = {w.strip(".'’-") for n in names for w in re.split(r"[\s,;()\"<>/]+", n)}
    for address in addresses:  # firstname.lastname@ names a person
        parts = re.split(r"[._-]", address.split("@")[0].split("+")[0])
        if len(parts) >= 2 and all(p.isalpha() and len(p) >= 3 for p in parts):
            words |= set(parts)
    return {
        w
        for w in words
        if len(w) >= 3 and w.lower() not in lx.NOT_NAME_WORDS and not any(c.isdigit() or c in "@[]" for c in w)
    }



class _Redactor:
    """One identity and one keep list, applied to any number of strings."""

    def __init__(self, identity: ReporterIdentity, keep: Iterable[str]) -> None:
        self.patterns = _patterns(identity)
        try:
            wanted = {k.strip() for k in keep if isinstance(k, str)}
        except Exception:
            wanted = set()
        check = self.patterns.addresses
        self.keep = sorted(
            (k for k in wanted if len(k) >= 3 and not lx.PRIVATE_RE.search(k) and not (check and check.search(k))),
            key=len,
            reverse=True,
        )

    def json(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 64:
            return MARK
        if isinstance(value, dict):
            return {k: self.json(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(v, depth + 1) for v in value]
        return value

    def text(self, text: str) -> str:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        try:
            return self._run(text)
        except Exception:  # fail closed: nothing of a text we could not read leaves
            return MARK if text.strip() else text

    def _run(self, text: str) -> str:
        text = lx.PRIVATE_RE.sub("\ufffd", text)
        if not text.strip():
            return text
        p = self.patterns
        for pattern in (p.addresses, p.verp, p.names):
            text = pattern.sub(MARK, text) if pattern else text
        text = lx.VERP_RE.sub(MARK, text)
        masks = Masks(lx.MASK_OPEN)
        text = self._hide_kept(text, masks)
        found: set[str] = set()
        text = headers(text, masks, found)
        text = attributions(text, found)
        text = signatures(text)
        if "@" in text:
            text = lx.ADDRESS_RE.sub(MARK, lx.LOGGED_ID_RE.sub(lambda m: masks.hide(m.group(0)), text))
        if lx.OBFUSCATED_HINT_RE.search(text.lower()):
            text = lx.OBFUSCATED_RE.sub(MARK, text)
        text = postal(phones(text))
        dynamic = _names_re(found)
        text = dynamic.sub(MARK, text) if dynamic else text
        words = p.words | _name_words(found)
        if words:
            forms = {f for w in words for f in (w, w[:1].upper() + w[1:], w.upper())}
            alts = "|".join(map(re.escape, sorted(forms, key=len, reverse=True)))
            text = re.sub(_NAME_BOUNDS[0] + alts + _NAME_BOUNDS[1], MARK, text)
        if lx.holds(text.lower(), lx.SELF_NAMED_HINTS):
            text = lx.SELF_NAMED_RE.sub(lambda m: m.group(0)[: m.start("name") - m.start()] + MARK, text)
        text = re.sub(r"\[redacted\](?:[ \t]*[,;]?[ \t]*\[redacted\])+", MARK, text)
        return masks.restore(text)

    def _hide_kept(self, text: str, masks: Masks) -> str:
        if not self.keep:
            return text
        low = text.lower()
        hay = low if len(low) == len(text) else text
        spans: list[tuple[int, int]] = []
        for k in self.keep:
            needle, start = (k.lower() if hay is low else k), 0
            while (pos := hay.find(needle, start)) >= 0:
                spans.append((pos, pos + len(needle)))
                start = pos + len(needle)
        out, last = [], 0
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            if start < last or ("@" not in text[start:end] and _in_address_domain(text, start)):
                continue
            out += [text[last:start], masks.hide(text[start:end])]
            last = end
        return "".join([*out, text[last:]])


def _in_address_domain(text: str, pos: int) -> bool:
    """Whether `pos` is inside the domain part of an e-mail address (a kept domain must not shield it)."""
    i = pos
    while i > 0 and pos - i < 255 and (text[i - 1].isalnum() or text[i - 1] in ".-_"):
        i -= 1
    return i > 0 and text[i - 1] == "@"


