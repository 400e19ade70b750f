"""Who really sent a report: every DKIM signature verified, and whether one is aligned with the From domain.

DNS is injected (`TxtLookup`, dkimpy's dnsfunc shape) so the check runs offline in tests and with
pinned keys; at most MAX_SIGNATURES signatures are tried per mail. Alignment is DMARC's relaxed
alignment: the signer and the author share an organizational domain (Public Suffix List,
`core.domains`); a mail with several From fields or authors has no author domain (DMARC rejects it).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import dkim

from core import domains
from core.report import ReportAuth

TxtLookup = Callable[..., bytes | None]  # dnsfunc(name: bytes, timeout=...) -> TXT record or None
MAX_SIGNATURES = 5
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FROM = re.compile(rb"^from:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", re.I | re.M)
_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@((?:[\w-]+\.)+[\w-]{2,63})")
_SIG = re.compile(rb"^dkim-signature:", re.I | re.M)
_D_TAG = re.compile(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.I)


def from_domain(raw: bytes) -> str | None:
    """Domain of the header From address (the identity DMARC-style alignment is checked against)."""
    head = raw[: _end_of_headers(raw)]
    fields = _FROM.findall(head)
    if len(fields) != 1:
        return None  # no author, or several From fields: which one the reader sees is anybody's guess
    found = {domains.normalize_domain(d) for d in _ADDR.findall(_unquoted(fields[0].decode("utf-8", "replace")))}
    return found.pop() if len(found) == 1 else None


def aligned(signer: str, author: str) -> bool:
    """Relaxed alignment (DMARC): the same organizational domain per the Public Suffix List."""
    return domains.aligned(signer, author)


def _unquoted(value: str) -> str:
    """The address part of the From field: inside <...> when there is one, never a display name or comment."""
    value = re.sub(r'"(?:[^"\\]|\\.)*"', " ", value)
    value = re.sub(r"\([^()]*\)", " ", value)
    angles = re.findall(r"<([^<>]*)>", value)
    return " ".join(angles) if angles else value


def authenticate(raw: bytes, dns_txt: TxtLookup) -> ReportAuth:
    """Verify every DKIM signature of the mail (bounded); never raises."""
    auth = ReportAuth(checked=True, from_domain=from_domain(raw))
    head = raw[: _end_of_headers(raw)]
    count = min(len(_SIG.findall(head)), MAX_SIGNATURES)
    if not count:
        return auth
    verifier = dkim.DKIM(raw, minkey=1024)
    for index in range(count):
        domain = _signature_domain(head, index)
        try:
            ok = bool(verifier.verify(idx=index, dnsfunc=dns_txt))
        except Exception as exc:  # dkimpy raises many types on malformed input
            auth.errors.append(f"signature {index}: {type(exc).__name__}: {exc}"[:300])
            ok = False
        (auth.dkim_pass if ok else auth.dkim_fail).append(domain)
    auth.dkim_aligned = bool(auth.from_domain) and any(aligned(d, auth.from_domain or "") for d in auth.dkim_pass)
    return auth


def _signature_domain(head: bytes, index: int) -> str:
    starts = [m.start() for m in _SIG.finditer(head)]
    chunk = head[starts[index] : starts[index + 1] if index + 1 < len(starts) else len(head)]
    match = _D_TAG.search(re.sub(rb"\r?\n[ \t]+", b" ", chunk.split(b":", 1)[1][:4000]))
    return match.group(1).decode("ascii", "replace").lower() if match else ""


def _end_of_headers(raw: bytes) -> int:
    match = _HEADER_END.search(raw, 0, 256 * 1024)
    return match.end() if match else min(len(raw), 256 * 1024)


def pinned_lookup(pinned: dict[str, str], fallback: TxtLookup | None, timeout: float) -> TxtLookup:
    """A TXT lookup answering pinned records first, then (if given) the network."""
    table = {k.lower().rstrip("."): v.encode() for k, v in pinned.items()}

    def lookup(name: bytes, timeout: float = timeout) -> bytes | None:
        key = name.decode("ascii", "replace").lower().rstrip(".")
        if key in table:
            return table[key]
        if fallback is None:
            return None
        return fallback(name, timeout=timeout)

    return lookup


def network_lookup() -> TxtLookup:
    """dkimpy's own DNS TXT lookup (dnspython)."""
    from dkim import dnsplug

    return dnsplug.get_txt  # type: ignore[no-any-return]
