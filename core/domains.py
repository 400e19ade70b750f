"""Domain names as DMARC sees them: the organizational domain (Public Suffix List) and relaxed alignment."""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped with the library: no network


def normalize_domain(name: str | None) -> str:
    """Lower case, no trailing dot, internationalized labels in their ASCII (IDNA) form; "" for nothing."""
    if not name:
        return ""
    name = name.strip().strip("[]").lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return name


@lru_cache(maxsize=4096)
def organizational_domain(name: str | None) -> str | None:
    """The registrable domain ('mail.example.co.uk' -> 'example.co.uk'); None for a public suffix or nothing."""
    domain = normalize_domain(name)
    if not domain or "." not in domain:
        return None
    org: str | None = _psl().privatesuffix(domain)
    return org


def aligned(signer: str | None, author: str | None) -> bool:
    """DMARC relaxed alignment: both domains have the same organizational domain (a public suffix never aligns)."""
    left, right = organizational_domain(signer), organizational_domain(author)
    return left is not None and left == right


def domain_of(address: str | None) -> str | None:
    """The domain of a mail address, normalized; None without an '@'."""
    if not address or "@" not in address:
        return None
    return normalize_domain(address.rsplit("@", 1)[1]) or None


def same_address(left: str | None, right: str | None) -> bool:
    """Two mail addresses are the same mailbox (domain case-insensitive; local part compared case-insensitively,
    as every mailbox provider does)."""
    if not left or not right:
        return False
    return left.strip().strip("<>").casefold() == right.strip().strip("<>").casefold()


# Mailbox providers: anybody can have an address there, so their domain (or DKIM d=) identifies nobody.
_PROVIDER_NAMES = frozenset({"hotmail", "outlook", "live", "msn", "yahoo", "ymail", "gmx", "yandex", "windowslive"})
_PROVIDER_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "aol.com", "aim.com", "icloud.com", "me.com", "mac.com",
        "mail.com", "web.de", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "laposte.net", "bbox.fr",
        "mail.ru", "bk.ru", "inbox.ru", "list.ru", "protonmail.com", "protonmail.ch", "proton.me", "pm.me",
        "zoho.com", "zohomail.com", "tutanota.com", "tuta.io", "fastmail.com", "fastmail.fm", "hey.com",
        "qq.com", "163.com", "126.com", "rambler.ru", "seznam.cz", "wp.pl", "o2.pl", "libero.it", "virgilio.it",
        "t-online.de", "freenet.de", "posteo.de", "mailbox.org", "comcast.net", "verizon.net", "att.net",
        "btinternet.com", "sky.com", "naver.com", "rediffmail.com",
    }
)  # fmt: skip


def is_mailbox_provider(name: str | None) -> bool:
    """True when `name` is (the organizational domain of) a mailbox provider itself, e.g. hotmail.com or
    outlook.fr; a provider's own reporting subdomain (arf.mail.yahoo.com) is not."""
    domain = normalize_domain(name)
    org = organizational_domain(domain)
    if not org or domain != org:
        return False
    return org in _PROVIDER_DOMAINS or org.split(".", 1)[0] in _PROVIDER_NAMES
