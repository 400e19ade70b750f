"""Indicator extraction shared by every format: IPs, URLs, domains, mail addresses, refanging.

Bounds and safety: every function reads at most ``MAX_SCAN`` characters of its input; all regexes
use bounded, non-nested quantifiers (no catastrophic backtracking on untrusted text); results are
validated (``ipaddress`` for IPs) and capped at ``MAX_ITEMS`` per call.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

MAX_SCAN = 256 * 1024
MAX_ITEMS = 500

_IPV4_RE = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:.])((?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?)(?![\w:])")
_QUAD_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
_CIDR_TAIL_RE = re.compile(r"/\d{1,3}(?!\d)")
_URL_RE = re.compile(r"""\b(?:https?|ftp)://[^\s<>"'`{}|\\^\[\]]{1,2048}""", re.I)
_EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
_URL_SPLIT_RE = re.compile(r"[/?#]")
_HOST_RE = re.compile(r"^(?:[a-z0-9_-]{1,63}\.){1,10}[a-z]{2,24}$")
_REFANG = [
    (re.compile(r"\bh(?:xx|XX|Xx|xX|\*\*|tt)p(s?)(?:\[:\]|:)//", re.I), r"http\1://"),
    (re.compile(r"\[(?:\.|dot)\]|\((?:\.|dot)\)|\{(?:\.|dot)\}", re.I), "."),
    (re.compile(r"\[:\]|\[://\]"), ":"),
    (re.compile(r"\[@\]|\[at\]", re.I), "@"),
]
_DEFANG_MARKERS = ("xxp", "**p", "[.]", "(.)", "{.}", "[dot]", "(dot)", "{dot}", "[:]", "[@]", "[at]")
_TRAILING = ".,;:!?)]}>'\"*"
_OCTETS = {spelling: str(n) for n in range(256) for spelling in {str(n), f"{n:02d}", f"{n:03d}"}}
_UNSPECIFIED = frozenset({"0.0.0.0", "255.255.255.255", "::"})


def refang(text: str) -> str:
    """Undo common defanging: hxxp://, [.], (dot), [:], [@]."""
    text = text[:MAX_SCAN]
    lower = text.lower()
    if not any(marker in lower for marker in _DEFANG_MARKERS):
        return text
    for pattern, repl in _REFANG:
        text = pattern.sub(repl, text)
    return text


def normalize_ip(value: str) -> str | None:
    """Canonical text of an IP address (IPv4-mapped IPv6 becomes IPv4), or None if not an IP."""
    value = value.strip().strip("[]()<>")
    if ":" not in value:
        parts = value.split(".")
        if len(parts) == 4:  # fast path (CSV feeds: 100,000 addresses): octet spellings looked up
            a, b, c, d = (_OCTETS.get(parts[0]), _OCTETS.get(parts[1]), _OCTETS.get(parts[2]), _OCTETS.get(parts[3]))
            if a is not None and b is not None and c is not None and d is not None:
                text = f"{a}.{b}.{c}.{d}"
                return None if text in _UNSPECIFIED else text
        quad = _QUAD_RE.match(value)
        if quad is None or any(int(g) > 255 for g in quad.groups()):
            return None
        text = ".".join(str(int(g)) for g in quad.groups())
        return None if text in _UNSPECIFIED else text
    if value.lower().startswith("ipv6:"):
        value = value[5:]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    text = str(ip)
    return None if text in _UNSPECIFIED else text


def iter_ips(text: str, *, skip_cidr: bool = True) -> list[tuple[int, str]]:
    """(position, canonical IP) for every IPv4/IPv6 address in text, in order of appearance."""
    text = text[:MAX_SCAN]
    found: list[tuple[int, str]] = []
    for match in _IPV4_RE.finditer(text):
        octets = match.groups()
        if any(int(g) > 255 for g in octets):
            continue
        if skip_cidr and _CIDR_TAIL_RE.match(text, match.end()):
            continue
        ip = ".".join(str(int(g)) for g in octets)
        if ip not in _UNSPECIFIED:
            found.append((match.start(), ip))
    if "::" in text or text.count(":") >= 7:
        for match in _IPV6_RE.finditer(text):
            cand = match.group(1)
            if cand.count(":") < 2 or ("::" not in cand and cand.count(":") < 7):
                continue
            if skip_cidr and _CIDR_TAIL_RE.match(text, match.end()):
                continue
            canonical = normalize_ip(cand)
            if canonical:
                found.append((match.start(), canonical))
        found.sort()
    return found


def find_ips(text: str, *, skip_cidr: bool = True, skip_loopback: bool = False) -> list[str]:
    """IPv4 and IPv6 addresses in text, in order of appearance, without duplicates.

    Network notations (``10.0.0.0/24``) are skipped when ``skip_cidr``; masked values such as
    ``91.78.17.xxx`` never match; 0.0.0.0 and :: are never returned.
    """
    out = _unique(ip for _, ip in iter_ips(text, skip_cidr=skip_cidr))
    if skip_loopback:
        out = [ip for ip in out if not is_loopback(ip)]
    return out[:MAX_ITEMS]


def is_loopback(ip: str) -> bool:
    if "." in ip and ":" not in ip:
        return ip.startswith("127.")
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def clean_url(url: str) -> str:
    url = url.rstrip(_TRAILING)
    if url.count("(") < url.count(")"):
        url = url.rstrip(")")
    return url


def find_urls(text: str) -> list[str]:
    """http(s)/ftp URLs in (already refanged) text, trailing punctuation removed."""
    text = text[:MAX_SCAN]
    out = []
    for match in _URL_RE.finditer(text):
        url = clean_url(match.group(0))
        if len(url) > 10:
            out.append(url)
    return _unique(out)[:MAX_ITEMS]


def url_host(url: str) -> str | None:
    """Lower-case host name of a URL, or None when it is an IP literal or missing."""
    rest = url.split("://", 1)[-1]
    host = _URL_SPLIT_RE.split(rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return None
    host = host.split(":", 1)[0].strip(".")
    return clean_domain(host)


def url_ip(url: str) -> str | None:
    """Canonical IP of a URL whose host is an address literal (``http://203.0.113.10/``, ``http://[2001:db8::1]:8080/``)."""
    rest = url.split("://", 1)[-1]
    host = _URL_SPLIT_RE.split(rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return normalize_ip(host[1:].split("]", 1)[0])
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return normalize_ip(host)


def clean_domain(value: str) -> str | None:
    """A syntactically valid host name (kept as written, e.g. upper-case masks), or None."""
    host = value.strip().strip(".<>[]()\"'").rstrip(".")
    if not host or len(host) > 253 or normalize_ip(host):
        return None
    return host if _HOST_RE.match(host.lower()) else None


def email_domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return clean_domain(address.rsplit("@", 1)[1].strip(">").lower())


def extract_address(value: str | None) -> str | None:
    """The bare mail address in a header value such as '"Name" <a@b.example>', or None."""
    if not value:
        return None
    if "<" in value:
        inner = value[value.rfind("<") + 1 :].split(">", 1)[0].strip()
        if "@" in inner:
            return inner
    found = _EMAIL_RE.search(value[:2048])
    return found.group(0) if found else None


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item not in seen:
            seen[item] = None
    return list(seen)
