"""The words of the customers' statement page, in French and English (the customer's `language`)."""

from __future__ import annotations

LANGUAGES = ("fr", "en")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Case",
        "desk": "abuse desk",
        "status": "Status",
        "nature": "Nature",
        "services": "Services",
        "deadline": "Deadline",
        "opened": "Opened",
        "extract": "Extract of the report",
        "withheld": "The identity of the person who reported it is withheld.",
        "your_answer": "Your answer",
        "fixed_warned": "It is fixed (we check again at once and close the case if the check passes)",
        "fixed_suspended": "It is fixed: check again and lift the suspension (a person reviews the lift)",
        "cause": "Cause",
        "commitment": "I confirm that the measures described below are in place.",
        "more_time": "I need more time (once)",
        "contest": "The report is wrong (a person reviews it)",
        "help": "I need help",
        "text": "What you found and what you did, or why the report is wrong:",
        "send": "Send",
        "redress": "You may also contest a decision before the courts, or complain to Arcom, the French Digital"
        " Services Coordinator.",
        "in_review": "Your contest is being reviewed by a person; you will be told the outcome.",
        "closed": "This case needs nothing more from you.",
        "res_resolved": "Thank you: we checked again and the problem is gone. The case is closed; no suspension will"
        " take place.",
        "res_failing": "We checked again and this still fails:",
        "res_unchanged": "The deadline is unchanged.",
        "res_extended": "The deadline has been extended once, to",
        "res_contest": "Your contest was received. A person will review it by",
        "res_contest_tail": "; no suspension happens meanwhile for a warned case.",
        "res_review": "Thank you: a person on our abuse desk checks your fix and lifts the suspension once it holds.",
        "res_lifted": "Thank you: we checked again and the suspension is being lifted.",
        "res_help": "Your request for help was passed to our team; we will contact you.",
        "err_stale": "The form is stale: reload the page.",
        "err_commitment": "Please confirm that the measures described are in place.",
        "err_answer": "This answer does not apply to the case as it stands:",
        "invalid_title": "This link cannot be used",
        "invalid_help": "Reply to the abuse desk's mail (keep the case reference in the subject) to get a new link.",
    },
    "fr": {
        "title": "Dossier",
        "desk": "service abus",
        "status": "Statut",
        "nature": "Nature",
        "services": "Services",
        "deadline": "Échéance",
        "opened": "Ouvert le",
        "extract": "Extrait du signalement",
        "withheld": "L'identité de la personne qui l'a signalé n'est pas communiquée.",
        "your_answer": "Votre réponse",
        "fixed_warned": "C'est corrigé (nous vérifions aussitôt et clôturons le dossier si la vérification réussit)",
        "fixed_suspended": "C'est corrigé : vérifiez à nouveau et levez la suspension (une personne examine la levée)",
        "cause": "Cause",
        "commitment": "Je confirme que les mesures décrites ci-dessous sont en place.",
        "more_time": "J'ai besoin d'un délai (une fois)",
        "contest": "Le signalement est erroné (une personne l'examine)",
        "help": "J'ai besoin d'aide",
        "text": "Ce que vous avez trouvé et corrigé, ou pourquoi le signalement est erroné :",
        "send": "Envoyer",
        "redress": "Vous pouvez aussi contester une décision devant la justice, ou adresser une réclamation à"
        " l'Arcom, coordinateur français pour les services numériques.",
        "in_review": "Votre contestation est examinée par une personne ; vous serez informé du résultat.",
        "closed": "Ce dossier n'attend plus rien de votre part.",
        "res_resolved": "Merci : nous avons vérifié à nouveau et le problème a disparu. Le dossier est clos ; aucune"
        " suspension n'aura lieu.",
        "res_failing": "Nous avons vérifié à nouveau, et ceci échoue encore :",
        "res_unchanged": "L'échéance est inchangée.",
        "res_extended": "L'échéance a été prolongée une fois, jusqu'au",
        "res_contest": "Votre contestation a bien été reçue. Une personne l'examinera au plus tard le",
        "res_contest_tail": " ; aucune suspension n'a lieu entre-temps pour un dossier averti.",
        "res_review": "Merci : une personne de notre service abus vérifie votre correction et lève la suspension si"
        " elle tient.",
        "res_lifted": "Merci : nous avons vérifié à nouveau et la suspension est en cours de levée.",
        "res_help": "Votre demande d'aide a été transmise à notre équipe ; nous vous contacterons.",
        "err_stale": "Le formulaire a expiré : rechargez la page.",
        "err_commitment": "Merci de confirmer que les mesures décrites sont en place.",
        "err_answer": "Cette réponse ne s'applique pas au dossier dans son état actuel.",
        "invalid_title": "Ce lien ne peut pas être utilisé",
        "invalid_help": "Répondez au message du service abus (en gardant la référence du dossier dans l'objet) pour"
        " obtenir un nouveau lien.",
    },
}

STATUSES = {
    "en": {
        "received": "received",
        "monitoring": "under observation",
        "needs-review": "being reviewed by a person",
        "rejected": "rejected",
        "warned": "warned: action required",
        "resolved": "resolved",
        "suspended": "suspended",
        "lifted": "suspension lifted",
        "suspending": "suspension under way",
    },
    "fr": {
        "received": "reçu",
        "monitoring": "en observation",
        "needs-review": "en cours d'examen par une personne",
        "rejected": "rejeté",
        "warned": "averti : action requise",
        "resolved": "résolu",
        "suspended": "suspendu",
        "lifted": "suspension levée",
        "suspending": "suspension en cours",
    },
}

CAUSES = {
    "en": {
        "stolen-password": "stolen password",
        "vulnerable-software": "vulnerable software",
        "malicious-user": "malicious user",
        "misconfiguration": "misconfiguration",
        "legitimate": "legitimate use",
        "other": "other",
    },
    "fr": {
        "stolen-password": "mot de passe volé",
        "vulnerable-software": "logiciel vulnérable",
        "malicious-user": "utilisateur malveillant",
        "misconfiguration": "mauvaise configuration",
        "legitimate": "usage légitime",
        "other": "autre",
    },
}

# What the page offers per status: the answers the mails of that status tell the customer they can give.
OFFERS = {
    "warned": ("fixed", "more-time", "contest", "help"),
    "suspended": ("fixed", "contest", "help"),
    "suspending": ("fixed", "contest", "help"),
    "needs-review": ("help",),
}


def language_of(customer: dict[str, object] | None, default: str) -> str:
    """The customer's language when the page has it, else the desk's default (else French)."""
    chosen = str((customer or {}).get("language") or default or "fr").lower()[:2]
    return chosen if chosen in LANGUAGES else "fr"
