"""Words and patterns (FR/EN/DE/ES) that `core.redact` uses to find a complainant's identity in text."""

from __future__ import annotations

import re

MARK = "[redacted]"

# Kept text is hidden behind these private-use characters while the passes run (never \w, \d or \s).
MASK_OPEN, MASK_CLOSE, MASK_BASE = "\ue000", "\ue001", 0xE100
MASK_RE = re.compile("\ue000[\ue100-\ue1ff]+\ue001")
PRIVATE_RE = re.compile("[\ue000-\ue1ff]")

QUOTE = r"(?:>[ \t]?)*"
ADDRESS_RE = re.compile(r"(?<![\w.+'-])[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
# An address as a whole (not the tail of a VERP or URL-encoded one): what a recipient field names.
WHOLE_ADDRESS_RE = re.compile(r"(?<![\w.+'=%-])[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
# A message id in a log line (Postfix message-id=<...>): evidence, not an address.
LOGGED_ID_RE = re.compile(r"\b(?:message-id|msgid|msg-id)[=:][ \t]*<?[^\s<>@]+@[^\s<>]+>?", re.I)
# carol (at) example (dot) org, carol[at]example.org
OBFUSCATED_RE = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}[ \t]*[\[(][ \t]*(?:at|@)[ \t]*[\])][ \t]*[\w-]{1,63}"
    r"(?:(?:\.|[ \t]*[\[(][ \t]*(?:dot|point|punkt|punto)[ \t]*[\])][ \t]*)[\w-]{1,63}){1,6}",
    re.I,
)
OBFUSCATED_HINT_RE = re.compile(r"[\[(][ \t]*(?:at|@)[ \t]*[\])]")  # run on the lower-cased text
# The recipient encoded in a VERP bounce address: bounce-carol=example.org@lists.customer.example
VERP_RE = re.compile(r"(?<=[-+.])[\w.+-]{1,64}=[\w-]{1,63}(?:\.[\w-]{1,63})*\.[A-Za-z]{2,24}(?=@)")

HEADER_RE = re.compile(r"^(?P<q>" + QUOTE + r")[ \t]*(?P<name>[^\W\d_][\w-]{0,40})[ \t]*:(?P<value>.*)$")
# Fields of a reported message, ARF/DSN part or quoted reply header that name who received it.
RECIPIENT_FIELDS = frozenset(
    "to cc bcc delivered-to x-original-to original-rcpt-to removal-recipient envelope-to x-envelope-to x-rcpt-to"
    " x-apparently-to x-forwarded-to x-forwarded-for-to final-recipient original-recipient x-failed-recipients"
    " list-unsubscribe x-delivered-to x-resolved-to x-gm-original-to à an para pour destinataire destinataires cci"
    " cco kopie copie bcc-to resent-to resent-cc".split()
)
# Fields whose value is a person when nothing kept is in it (the offender's From is passed in `keep`).
SENDER_FIELDS = frozenset("from de von sender reply-to return-path resent-from resent-sender absender".split())
ID_FIELDS = frozenset("message-id in-reply-to references content-id x-message-id resent-message-id".split())
RECEIVED_FOR_RE = re.compile(r"\bfor[ \t]+<?[^\s<>;]+@[^\s<>;]+>?", re.I)

VERBS = r"(?:wrote|has[ \t]written|a[ \t][ée]crit|escribi[óo]|ha[ \t]escrito|schrieb|hat[ \t]geschrieben)"
INTRO = r"(?:On|Le|El|Am)"
ATTRIBUTION_END_RE = re.compile(
    r"^(?P<q>" + QUOTE + r")(?P<body>[^\n]{1,400}?)[ \t]+" + VERBS + r"[ \t]*:[ \t]*$", re.I
)
ATTRIBUTION_MID_RE = re.compile(
    r"^(?P<q>" + QUOTE + r")(?P<pre>" + INTRO + r"[ \t][^\n]{1,200}?)[ \t]" + VERBS
    + r"[ \t]+(?P<person>[^\n]{1,200}?)[ \t]*:[ \t]*$",
    re.I,
)
ATTRIBUTION_POST_RE = re.compile(
    r"^(?P<q>" + QUOTE + r")(?P<person>[^\n]{1,200}?)[ \t]" + VERBS
    + r"[ \t]+(?P<post>(?:am|on|le|el|den)[ \t][^\n]{1,120}?)[ \t]*:[ \t]*$",
    re.I,
)
INTRO_RE = re.compile(r"^" + INTRO + r"\b[ \t]*", re.I)
ATTRIBUTION_START_RE = re.compile(r"^" + QUOTE + INTRO + r"[ \t]", re.I)
VERB_RE = re.compile(r"(?<!\w)" + VERBS + r"(?!\w)", re.I)
DATE_TOKEN_RE = re.compile(r"[ \t]*(,|\(?[^\s,()]+\)?)")
DATE_WORDS = frozenset(
    """mon tue tues wed thu thur thurs fri sat sun monday tuesday wednesday thursday friday saturday sunday
    jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august september
    october november december lun mer jeu ven sam dim lundi mardi mercredi jeudi vendredi samedi dimanche janv
    févr fév mars avr mai juin juil août aou déc janvier février avril juillet septembre octobre novembre décembre mo di
    mi do fr sa so montag dienstag mittwoch donnerstag freitag samstag sonntag mär märz okt dez januar februar juni
    juli oktober dezember mié jue vie sáb lunes martes miércoles jueves viernes sábado domingo ene abr ago dic
    enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre at à a las um uhr am
    pm h de del the of on le el den gmt utc cet cest est edt pst pdt bst mez mesz z""".split()
)
FORWARD_RE = re.compile(
    r"^" + QUOTE + r"[ \t]*(?:-{2,}[ \t]*(?:original message|forwarded message|message d'origine|message transféré"
    r"|ursprüngliche nachricht|weitergeleitete nachricht|mensaje original|mensaje reenviado)[ \t]*-*"
    r"|begin forwarded message:|anfang der weitergeleiteten nachricht:|début du message réexpédié :?"
    r"|inicio del mensaje reenviado:)",
    re.I,
)

_SIGNOFFS = (
    "best regards|kind regards|warm regards|warmest regards|regards|best wishes|all the best|best|cheers|thanks"
    "|thank you|many thanks|thanks again|sincerely|yours sincerely|yours faithfully|yours truly|respectfully"
    "|cordialement|bien cordialement|très cordialement|bien à vous|salutations|sincères salutations"
    "|meilleures salutations|salutations distinguées|merci|merci d'avance|merci par avance|bonne journée|amicalement"
    "|mit freundlichen grüßen|mit freundlichen grüssen|mit freundlichem gruß|freundliche grüße|freundliche grüsse"
    "|viele grüße|viele grüsse|beste grüße|beste grüsse|liebe grüße|herzliche grüße|schöne grüße|grüße|grüsse|gruß"
    "|mfg|danke|vielen dank|besten dank|saludos|saludos cordiales|un saludo|un cordial saludo|atentamente"
    "|cordialmente|gracias|muchas gracias|reciba un cordial saludo|un abrazo"
)
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"
SIGNOFF_RE = re.compile(
    r"^(?i:" + _SIGNOFFS + r")\b[ \t]*[,.!:]*[ \t]*(?:" + _CAP + r"(?:[ \t]+" + _CAP + r"){0,4}[ \t]*[,.]?)?[ \t]*$"
)
ANY_SIGNOFF_RE = re.compile(r"^[> \t]*(?:--[ \t]*\r?$|(?i:" + _SIGNOFFS + r"|veuillez|je vous prie|nous vous prions"
                            r"|recevez|dans l'attente|reciba|sin otro)\b)", re.M)
SIGNOFF_LONG_RE = re.compile(
    r"^(?:veuillez agréer|je vous prie d'agréer|nous vous prions d'agréer|recevez, |dans l'attente de votre"
    r"|reciba un cordial|sin otro particular)",
    re.I,
)
MAIL_HEADER_NAMES = frozenset(
    "received return-path from to cc subject date message-id reply-to sender delivered-to x-original-to"
    " authentication-results dkim-signature content-type mime-version feedback-type user-agent version"
    " original-mail-from arrival-date source-ip reported-domain reported-uri original-rcpt-to removal-recipient"
    " list-unsubscribe objet betreff asunto envoyé gesendet enviado sent".split()
)
# A line that is evidence rather than signature: a time stamp, an IPv4 address, a log line.
EVIDENCE_LINE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}|\b\d{1,2}:\d{2}:\d{2}\b|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])|\w\[\d+\]:|https?://", re.I
)

# Phone numbers: runs of digits and separators, checked with phonenumbers; what is not a phone is hidden first.
NOT_PHONE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?"
    r"|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.]|\.\d)"
    r"|(?<![\d./-])\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?![./-]?\d)"
    r"|\b\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
    r"|(?<=:)\d{1,5}\b|\[\d+\]|\b(?:port|pid|uid|id|as|asn|serial|seq|len|ttl)[ \t]*[=:#]?[ \t]*\d+",
    re.I,
)
PLAIN_NOT_PHONE_RE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(?:\.\d{1,3}){3}")
PHONE_RUN_RE = re.compile(r"(?<![\w+.:/@=%#-])(?:\+|\b00)?\(?\d[\d \t().\-/]{5,40}\d")
PHONE_LABEL_RE = re.compile(
    r"(?:\b(?:tel|tél|tele|tel[eé]fono|t[eé]l[eé]phone|telephone|telefon|phone|mobile|mobil|mob|cell|cellulaire"
    r"|portable|gsm|handy|fax|m[óo]vil|tlf|tfno|fixe|whatsapp)\b\.?|☎|📞)[ \t]*(?:\([^)\n]{0,12}\))?[ \t]*[:.]?[ \t]*$",
    re.I,
)
US_PHONE_RE = re.compile(r"(?:1[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}")
TRUNK_REGIONS = ("FR", "DE", "GB", "BE", "CH", "AT")

# Postal addresses: a street line (number + street word, FR/EN/DE/ES) or a postcode + city line.
STREET_RES = (
    re.compile(
        r"(?<![\w.-])\d{1,4}(?:[ \t]?(?:bis|ter|[a-c]))?,?[ \t]+(?:rue|avenue|av\.|bd|boulevard|place|allée|allee"
        r"|impasse|chemin|quai|route|rte|cours|square|passage|faubourg|sentier|villa|cité|lieu-dit|résidence)"
        r"[ \t]+\S",
        re.I,
    ),
    re.compile(
        r"(?<![\w.-])\d{1,5}[A-Za-z]?,?[ \t]+(?:[A-Z][\w'.-]*[ \t]+){1,4}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln"
        r"|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Close|Crescent|Square|Sq|Highway|Hwy|Parkway|Mews"
        r"|Row|Gardens|Grove|Hill)\b\.?"
    ),
    re.compile(
        r"\b[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ]?[a-zäöüß]+)*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer"
        r"|chaussee|steig|pfad)[ \t]*\d{1,4}[ \t]?[a-z]?\b"
        r"|\b[A-ZÄÖÜ][a-zäöüß]+[ \t]+(?:Straße|Strasse|Str\.|Weg|Gasse|Platz|Allee|Ring|Damm)[ \t]+\d{1,4}[a-z]?\b"
    ),
    re.compile(
        r"(?<![\w])(?:calle|c/|avenida|avda\.?|plaza|pza\.?|paseo|carrer|camino|carretera|ronda|traves[ií]a"
        r"|glorieta|rambla)[ \t]+[^\n,\d]{2,40}?,?[ \t]*(?:n\.?[º°o]\.?[ \t]*)?\d{1,4}\b",
        re.I,
    ),
)
POSTCODE_CITY_RE = re.compile(
    r"^[ \t]*(?:[A-Z]{1,2}[- ])?\d{4,5}[ \t]+[A-ZÀ-ÖØ-Þ][\w'’.-]*(?:[ \t-]+(?:[A-ZÀ-ÖØ-Þ][\w'’.-]*"
    r"|sur|sous|en|de|la|le|les|lès|am|an|der|im|del|de la|bei))*(?:[ \t]+(?:CEDEX|Cedex)(?:[ \t]*\d{1,2})?)?"
    r"[ \t]*(?:[,(][ \t]*[A-ZÀ-ÖØ-Þ][\w ]{1,30}\)?)?[ \t]*$"
)
POSTCODE_LINE_RE = re.compile(r"^" + QUOTE + POSTCODE_CITY_RE.pattern[1:-1] + r"\r?$", re.M)
UK_POSTCODE_RE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[A-Z]{2}\b")
US_CITY_ZIP_RE = re.compile(r"\b[A-Z][a-z]+(?:[ \t][A-Z][a-z]+)*,[ \t][A-Z]{2}[ \t]\d{5}(?:-\d{4})?\b")

SELF_NAMED_HINTS = ("name", "appelle", "nom est", "heiße", "heisse", "llamo", "nombre")
SELF_NAMED_RE = re.compile(
    r"(?:\b(?i:my name is|je m'appelle|je m’appelle|mon nom est|ich heiße|ich heisse|mein name ist|me llamo"
    r"|mi nombre es)[ \t]+)(?P<name>" + _CAP + r"(?:[ \t]+" + _CAP + r"){0,3})"
)

# Words of a display name that are not a person's name (a role, a particle, a title).
NOT_NAME_WORDS = frozenset(
    """abuse team support service services security department noreply no-reply reply report reports desk mail
    postmaster admin administrator info contact customer feedback loop spam center centre operations network
    internet online group the and for from with von van der den del los las mme mlle herr frau sra srta don dona
    redacted user webmaster hostmaster noc soc cert csirt helpdesk office staff""".split()
)
# Words (lower case) one of which a text must hold before a pass's patterns are tried on it: a fast `in`.
VERB_HINTS = ("wrote", "written", "crit", "escribi", "escrito", "schrieb")
SIGNOFF_HINTS = (
    "--", "regards", "cheers", "thank", "sincerely", "yours", "respectfully", "best", "wishes", "cordial", "bien à",
    "salutations", "merci", "bonne journ", "amicalement", "veuillez", "vous prie", "recevez", "dans l'attente",
    "grüße", "grüsse", "gruß", "mfg", "dank", "saludo", "atentamente", "gracias", "abrazo", "reciba", "sin otro",
)
STREET_HINTS = (
    ("rue", "av", "bd", "boulevard", "place", "all", "impasse", "chemin", "quai", "route", "rte", "cours", "square",
     "passage", "faubourg", "sentier", "villa", "cité", "lieu-dit", "résidence"),
    ("st", "rd", "road", "ave", "lane", "ln", "dr", "blvd", "way", "court", "ct", "pl", "terrace", "close",
     "crescent", "sq", "highway", "hwy", "parkway", "mews", "row", "gardens", "grove", "hill"),
    ("str", "weg", "gasse", "platz", "allee", "ring", "damm", "ufer", "chaussee", "steig", "pfad"),
    ("calle", "c/", "av", "plaza", "pza", "paseo", "carrer", "camino", "carretera", "ronda", "traves", "glorieta",
     "rambla"),
)
US_ZIP_HINT_RE = re.compile(r",[ \t][A-Z]{2}[ \t]\d{5}")


def holds(low: str, hints: tuple[str, ...]) -> bool:
    """Whether a lower-cased text holds one of the hint words."""
    return any(h in low for h in hints)
