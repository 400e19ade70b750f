"""Free-text complaints (FR, EN, DE, ES, ...): indicators and category from the words of the mail.

Reads the inline text parts (HTML reduced to text), text attachments, refanged; separates the
reporter's own words from inline forwarded blocks and quoted reply lines; a forwarded
message/rfc822 part is read as the reported message. At most ``MAX_TEXT`` characters are scanned.

Source IPs: those in the Subject and those the text labels as the source (``sides``), else every
IP of the reporter's own text except the ones it labels as the victim (network notations, 0.0.0.0
and masked values never count), else the forwarded/quoted material, else the forwarded headers.
URLs: labelled ones, else those of the own text, of the HTML links (``href``) and, when the own
text names none, of the quoted reply chain; a URL whose host is an address names that address.
Domains: labelled (``Domain:``) or named in running text ("the domain evil-shop.example hosts").
One incident per offending indicator (``incidents.per_indicator``).
"""

from __future__ import annotations

import re

from ingest import indicators, vocabulary
from ingest.formats import dates, embedded, incidents, sides
from ingest.formats.decoding import decode_charset
from ingest.formats.decoding import html_links as href_targets
from ingest.formats.draft import Draft, MailMeta
from ingest.formats.mime import Part

MAX_TEXT = 256 * 1024

_FORWARD_RE = re.compile(
    r"^[ \t>]*(?:-{2,}\s*(?:Forwarded message|Original Message|Message transféré|Message d'origine|"
    r"Weitergeleitete Nachricht|Ursprüngliche Nachricht|Mensaje reenviado|Mensaje original)\s*-{2,}|"
    r"Début du message (?:réexpédié|transféré)\s*:|Begin forwarded message\s*:|"
    r"(?:Le|On|Am|El) [^\n]{4,200}(?:a écrit|wrote|schrieb|escribió)\s*:[ \t]*$)",
    re.I | re.M,
)
_URL_LABEL_RE = re.compile(
    r"(?:^|\n)[ \t\-*]*(?:link|url|site|site concern[ée]|lien|enlace|phishing url|malicious url|infringing url|"
    r"adresse du site|page|location|dirección|seite)\s*:\s*((?:https?|ftp)://\S{1,2048})",
    re.I,
)
_DOMAIN_LABEL_RE = re.compile(r"(?:^|\n)[ \t\-*]*(?:domain|domaine|dominio|hostname|host name)\s*:\s*(\S{3,253})", re.I)
_DOMAIN_PROSE_RE = re.compile(
    r"\b(?:domain|domains|domain name|domaine|domaines|nom de domaine|dominio|nombre de dominio|"
    r"website|web site|site web|site internet|sitio web|webseite|webshop|boutique en ligne|tienda online)"
    r"\s{1,3}[\"'«“]?\s?((?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24})(?![\w-]|\.\w)",
    re.I,
)
_FORWARDED_ONLY_RE = re.compile(
    r"^[ \t>]*(?:-{2,}\s*(?:Forwarded message|Message transféré|Weitergeleitete Nachricht|Mensaje reenviado)\s*-{2,}|"
    r"Début du message (?:réexpédié|transféré)\s*:|Begin forwarded message\s*:)",
    re.I | re.M,
)
_REPLY_SENT_RE = re.compile(r"^[ \t>]*(?:Sent|Envoyé|Gesendet|Enviado(?: el)?)\s*:", re.I)
_FORWARDED_FROM_RE = re.compile(
    r"^[ \t>]*(?:From|De|Von|Envoyé par|Expéditeur)\s*:[^\n<@]{0,200}<?([A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253})",
    re.M | re.I,
)
_URL_CATEGORIES = frozenset({"phishing", "malware", "copyright", "illegal-content", "fraud"})
_LOG_LINE_RE = re.compile(r"^\S{0,80}\s?\d{1,3}(?:\.\d{1,3}){3}\b.{0,300}$", re.M)


def forwarded_sender(text: str) -> str | None:
    """The From of an inline forwarded mail; never a reply header ("On ... wrote:", Outlook "From:/Sent:")."""
    for marker in _FORWARDED_ONLY_RE.finditer(text[:MAX_TEXT]):
        for sender in _FORWARDED_FROM_RE.finditer(text, marker.end(), marker.end() + 4096):
            following = text[sender.end() : sender.end() + 400].split("\n", 2)[1:2]
            if following and _REPLY_SENT_RE.match(following[0]):
                continue  # an Outlook reply header: a person of the reply chain
            return sender.group(1)
    return None


def split_own_text(text: str) -> tuple[str, str]:
    """(reporter's own words, forwarded or quoted material)."""
    match = _FORWARD_RE.search(text)
    own, forwarded = (text[: match.start()], text[match.start() :]) if match else (text, "")
    own_lines: list[str] = []
    quoted: list[str] = []
    for line in own.split("\n"):
        (quoted if line.lstrip().startswith(">") else own_lines).append(line)
    return "\n".join(own_lines), forwarded + "\n" + "\n".join(quoted)


def mail_text(msg: Part) -> str:
    """Inline text of the mail (text/plain preferred over its HTML alternative) and text attachments."""
    chunks: list[str] = []
    size = 0
    skip: set[int] = set()
    for part in msg.walk():
        if id(part) in skip:
            continue
        if part.ctype.startswith("message/") and part is not msg:
            skip.update(id(p) for p in part.walk())
            continue
        if part.ctype == "multipart/alternative" and _has_plain(part):
            skip.update(id(p) for p in part.children if p.ctype == "text/html")
            continue
        if part.children or not part.ctype.startswith("text/") or part.ctype == "text/rfc822-headers":
            continue
        chunk = part.text()[: MAX_TEXT - size]
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_TEXT:
            break
    return indicators.refang("\n".join(chunks))


def _has_plain(part: Part) -> bool:
    return any(p.ctype == "text/plain" and p.body.strip() for p in part.children)


def parse(msg: Part, meta: MailMeta) -> Draft:
    draft = Draft(format="freetext", reporter_kind="machine" if meta.automated else "person")
    text = mail_text(msg)
    own, forwarded = split_own_text(text)
    subject = indicators.refang(meta.subject)
    _source_ips(draft, own, forwarded, subject)
    marker = _FORWARD_RE.search(text)
    sender = forwarded_sender(text)
    if sender is not None:  # the sender of an inline forwarded mail (not the people of a reply chain)
        draft.add_emails([sender])
        draft.add_domains([indicators.email_domain(sender)])
    reported = embedded.reported_message(msg)
    if reported is not None:
        embedded.read_into(draft, reported, ips=True)
        draft.add_emails([indicators.extract_address(reported.get("from"))])
    category, confidence, _ = vocabulary.classify(own + "\n" + forwarded[:4096], subject)
    prose = category in _URL_CATEGORIES or not draft.source_ips
    _urls(draft, own, forwarded, subject, meta, prose=prose, links=html_links(msg))
    draft.add_domains(_DOMAIN_LABEL_RE.findall(own))
    _prose_domains(draft, own, meta)
    if category == "other" and (reported is not None or marker is not None):  # a forwarded mail, no words
        category, confidence = "spam", 0.4
    draft.category, draft.category_confidence = category, confidence
    draft.source_label = None
    observed, assumed = dates.first_date_in(own)
    if observed is None and reported is not None:
        observed, assumed = dates.parse_date(reported.get("date"))
    draft.observed_at = observed
    if assumed:
        draft.warnings.append("incident time has no time zone; UTC assumed")
    logs = [m.group(0) for m in _LOG_LINE_RE.finditer(own[:65536])][:40]
    draft.add_evidence("\n".join(logs) if logs else own[:2048])
    if not draft.source_ips and not draft.urls:
        draft.warnings.append("no source IP or URL found in the text")
    incidents.per_indicator(draft, own + "\n" + forwarded)
    return draft


def _source_ips(draft: Draft, own: str, forwarded: str, subject: str) -> None:
    draft.add_ips([ip for ip, side in sides.classify(subject) if side != "victim"])
    labelled: list[str] = []
    neutral: list[str] = []
    for ip, side in sides.classify(own):
        if side != "victim":
            (labelled if side == "source" else neutral).append(ip)
    draft.add_ips(labelled)
    if not draft.source_ips:
        draft.add_ips(neutral)
    if not draft.source_ips and forwarded.strip():
        draft.add_ips(indicators.find_ips(forwarded, skip_loopback=True)[:20])
        if draft.source_ips:
            draft.warnings.append("source IP taken from forwarded or quoted text")


def html_links(msg: Part) -> list[str]:
    """Link targets (href) of HTML alternatives that the text/plain view does not show."""
    out: list[str] = []
    for part in msg.walk():
        if part.ctype == "multipart/alternative" and _has_plain(part):
            for html in part.children:
                if html.ctype == "text/html" and not html.children:
                    out.extend(href_targets(decode_charset(html.decoded()[:MAX_TEXT], html.params.get("charset", ""))))
    return out[: indicators.MAX_ITEMS]


def _urls(
    draft: Draft, own: str, forwarded: str, subject: str, meta: MailMeta, *, prose: bool, links: list[str]
) -> None:
    """Subject and labelled URLs; other URLs of the text (and its HTML links, else of the quoted chain)
    only for URL-centric complaints (phishing, malware, ...) or when no IP was found."""
    draft.add_urls(indicators.find_urls(subject))
    labelled = [indicators.clean_url(u) for u in _URL_LABEL_RE.findall(own)]
    if labelled or not prose:
        draft.add_urls(labelled)
        # a URL on an offending address (http://203.0.113.10/...) locates what that address serves
        draft.add_urls([u for u in indicators.find_urls(own) if indicators.url_ip(u) in draft.source_ips])
        return
    # links to the reporter's own site or to the ticket system that wrapped the mail are not offenders
    own_domains = {d.lower() for d in (meta.reporter_domain(), indicators.email_domain(meta.from_address)) if d}
    found = indicators.find_urls(own)
    found += [u for u in indicators.find_urls("\n".join(links)) if u not in found]
    if not found and not draft.urls:
        found = indicators.find_urls(forwarded)
    for url in found:
        host = (indicators.url_host(url) or "").lower()
        if any(host == d or host.endswith("." + d) or d.endswith("." + host) for d in own_domains):
            continue
        draft.add_urls([url])


def _prose_domains(draft: Draft, own: str, meta: MailMeta) -> None:
    """Domains named in running text ("the domain evil-shop.example hosts ..."), not the victim's own."""
    own_domains = {d.lower() for d in (meta.reporter_domain(), indicators.email_domain(meta.from_address)) if d}
    for match in _DOMAIN_PROSE_RE.finditer(own[:MAX_TEXT]):
        domain = (indicators.clean_domain(match.group(1)) or "").lower()
        if not domain or domain in own_domains or sides.victim_before(own, match.start()):
            continue
        draft.add_domains([domain])
