"""What an exposed or vulnerable service finding means, why it matters and how to fix it (FR/EN). Pure data."""

from __future__ import annotations

from collections.abc import Mapping

# kind -> language -> text. Matched on the feed's own tag (Shadowserver report type, XARF class, ...), by substring.
FINDINGS: dict[str, dict[str, str]] = {
    "resolver": {
        "en": "Open DNS resolver: your server answers DNS queries from anyone on the Internet. It is used to amplify "
        "denial-of-service attacks against third parties. Fix: allow recursion only for your own networks "
        "(BIND: allow-recursion; Unbound: access-control) or close UDP/TCP 53 to the outside.",
        "fr": "Résolveur DNS ouvert : votre serveur répond aux requêtes DNS de n'importe qui sur Internet. Il sert à "
        "amplifier des attaques par déni de service contre des tiers. Correction : n'autorisez la récursion que "
        "pour vos propres réseaux (BIND : allow-recursion ; Unbound : access-control) ou fermez le port 53.",
    },
    "ntp": {
        "en": "NTP service open to amplification (monlist/version): it can be abused to flood third parties. Fix: "
        "upgrade ntpd, add 'disable monitor' and 'restrict default noquery', or close UDP 123 to the outside.",
        "fr": "Service NTP exploitable pour l'amplification (monlist/version) : il peut servir à inonder des tiers. "
        "Correction : mettez ntpd à jour, ajoutez « disable monitor » et « restrict default noquery », ou fermez "
        "le port UDP 123 vers l'extérieur.",
    },
    "redis": {
        "en": "Redis reachable from the Internet without authentication: anyone can read or wipe its data and often "
        "take over the server. Fix: bind it to 127.0.0.1 (bind 127.0.0.1, protected-mode yes), set a password "
        "(requirepass) and filter TCP 6379.",
        "fr": "Redis joignable depuis Internet sans authentification : n'importe qui peut lire ou effacer ses "
        "données et souvent prendre le contrôle du serveur. Correction : limitez-le à 127.0.0.1 (bind 127.0.0.1, "
        "protected-mode yes), définissez un mot de passe (requirepass) et filtrez le port TCP 6379.",
    },
    "smb": {
        "en": "SMB (Windows file sharing) open to the Internet: a common way in for ransomware and worms. Fix: close "
        "TCP 445 and 139 to the outside; use a VPN for remote access to shares.",
        "fr": "SMB (partage de fichiers Windows) ouvert sur Internet : une porte d'entrée fréquente pour les "
        "rançongiciels et les vers. Correction : fermez les ports TCP 445 et 139 vers l'extérieur ; passez par un "
        "VPN pour accéder aux partages à distance.",
    },
    "telnet": {
        "en": "Telnet open to the Internet: passwords travel in clear and the service is a favourite target of "
        "botnets. Fix: disable telnet and use SSH with keys.",
        "fr": "Telnet ouvert sur Internet : les mots de passe circulent en clair et le service est une cible "
        "favorite des botnets. Correction : désactivez telnet et utilisez SSH avec des clés.",
    },
    "rdp": {
        "en": "Remote Desktop (RDP) open to the Internet: exposed to password guessing and known vulnerabilities. "
        "Fix: restrict TCP 3389 to known addresses or a VPN, enable Network Level Authentication, keep it patched.",
        "fr": "Bureau à distance (RDP) ouvert sur Internet : exposé aux attaques de mots de passe et aux failles "
        "connues. Correction : limitez le port TCP 3389 à des adresses connues ou à un VPN, activez "
        "l'authentification au niveau du réseau et appliquez les correctifs.",
    },
    "memcached": {
        "en": "Memcached open to the Internet: used for very large amplification attacks. Fix: listen on 127.0.0.1 "
        "only (-l 127.0.0.1), disable UDP (-U 0) and filter port 11211.",
        "fr": "Memcached ouvert sur Internet : utilisé pour des attaques par amplification très importantes. "
        "Correction : écoutez sur 127.0.0.1 seulement (-l 127.0.0.1), désactivez l'UDP (-U 0) et filtrez le port "
        "11211.",
    },
    "generic": {
        "en": "A service on your server is reachable from the Internet and reported as exposed or vulnerable. Check "
        "whether it must be public; if not, restrict it to the addresses that need it, and keep it up to date.",
        "fr": "Un service de votre serveur est joignable depuis Internet et signalé comme exposé ou vulnérable. "
        "Vérifiez s'il doit être public ; sinon, limitez-le aux adresses qui en ont besoin, et tenez-le à jour.",
    },
}
ALIASES = {"dns": "resolver", "openresolver": "resolver", "cifs": "smb", "3389": "rdp", "11211": "memcached"}


def kind_of(tag: str) -> str:
    """The finding kind a feed's tag names (`generic` when none is known)."""
    text = tag.lower()
    for name in FINDINGS:
        if name != "generic" and name in text:
            return name
    return next((kind for alias, kind in ALIASES.items() if alias in text), "generic")


def explain(tag: str, language: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The explanation of a finding in the customer's language; `overrides` (configuration) wins per kind."""
    kind = kind_of(tag)
    lang = language if language in ("fr", "en") else "en"
    for table in (overrides or {}, FINDINGS):
        text = table.get(kind, {}).get(lang)
        if text:
            return str(text)
    return FINDINGS["generic"][lang]
