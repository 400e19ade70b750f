"""Bounded decoders for mail content: transfer encodings, charsets, RFC 2047 words, HTML to text.

Lenient by design: malformed base64 is repaired or passed through, unknown or bogus charsets fall
back to UTF-8/Latin-1, HTML is reduced with linear scans (no nested quantifiers). Decoded bodies
are cut at ``MAX_DECODED`` bytes.
"""

from __future__ import annotations

import binascii
import html
import re

MAX_DECODED = 16 * 1024 * 1024

_B64_DELETE = bytes(c for c in range(256) if not (chr(c).isalnum() and c < 128) and c not in b"+/=")
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,15})?([^<>]{0,4096})>")
_HREF_RE = re.compile(r"""\b(?:href|src)\s*=\s*["']?([^"'\s>]{1,2048})""", re.I)
_BREAK_TAGS = frozenset({"br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "hr", "td"})
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]{0,2000})\?=")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words in a header value (unknown charsets degrade to replacement)."""
    if "=?" not in value:
        return value

    def repl(match: re.Match[str]) -> str:
        charset, enc, payload = match.groups()
        try:
            if enc in "bB":
                data = decode_transfer(payload.encode("ascii", "ignore"), "base64")
            else:
                data = binascii.a2b_qp(payload.replace("_", " ").encode("ascii", "ignore"))
        except (ValueError, binascii.Error):
            return match.group(0)
        return decode_charset(data, charset)

    out = _ENCODED_WORD_RE.sub(repl, value)
    return re.sub(r"(?<=\?=)\s+(?==\?)", "", out) if "=?" in out else out


def decode_transfer(body: bytes, cte: str) -> bytes:
    cte = cte.strip().lower()
    if cte == "base64":
        clean = body.translate(None, _B64_DELETE)
        try:
            return binascii.a2b_base64(clean)[:MAX_DECODED]
        except (binascii.Error, ValueError):
            core = clean.replace(b"=", b"")
            rest = len(core) % 4
            core = core[:-1] if rest == 1 else core + b"=" * ((4 - rest) % 4)
            try:
                return binascii.a2b_base64(core)[:MAX_DECODED]
            except (binascii.Error, ValueError):
                return body[:MAX_DECODED]
    if cte == "quoted-printable":
        return binascii.a2b_qp(body[: MAX_DECODED * 3])[:MAX_DECODED]
    return body[:MAX_DECODED]


def decode_charset(data: bytes, charset: str) -> str:
    """Decode bytes with the declared charset; bogus or unknown charsets fall back to UTF-8/Latin-1."""
    charset = (charset or "").strip().strip('"').lower()
    if charset and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
        try:
            return data.decode(charset, "replace")
        except Exception:  # LookupError, odd codecs that raise even with "replace"
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def html_to_text(text: str) -> str:
    """Reduce HTML to text, keeping link targets (href/src) as plain words."""
    text = _drop_blocks(text)

    def repl(match: re.Match[str]) -> str:
        tag = (match.group(2) or "").lower()
        href = _HREF_RE.search(match.group(3) or "")
        sep = "\n" if tag in _BREAK_TAGS else " "
        return f"{sep}{html.unescape(href.group(1))}{sep}" if href else sep

    return html.unescape(_TAG_RE.sub(repl, text))


def html_links(text: str) -> list[str]:
    """The http(s)/ftp targets of the ``href``/``src`` attributes of an HTML text, unescaped, in order."""
    out: list[str] = []
    for match in _TAG_RE.finditer(text):
        href = _HREF_RE.search(match.group(3) or "")
        if href:
            target = html.unescape(href.group(1))
            if target.lower().startswith(("http://", "https://", "ftp://")):
                out.append(target)
    return out


def _drop_blocks(text: str) -> str:
    """Remove <script>, <style> and <head> blocks (linear scan, no regex backtracking)."""
    lower = text.lower()
    if "<script" not in lower and "<style" not in lower and "<head" not in lower:
        return text
    out: list[str] = []
    pos = 0
    tags = ("script", "style", "head")
    nexts = {t: lower.find(f"<{t}") for t in tags}
    while True:
        for t in tags:
            if -1 < nexts[t] < pos:
                nexts[t] = lower.find(f"<{t}", pos)
        found = [(i, t) for t, i in nexts.items() if i != -1]
        if not found:
            break
        start, tag = min(found)
        end = lower.find(f"</{tag}", start)
        out.append(text[pos:start])
        if end == -1:
            pos = len(text)
            break
        close = lower.find(">", end)
        pos = len(text) if close == -1 else close + 1
    out.append(text[pos:])
    return " ".join(out)
