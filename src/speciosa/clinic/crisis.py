"""Help for the patient in the moment: what the page after saving a diary shows at once when
the entry reports something that may need urgent help.

The emergency number, the crisis line and how to reach the clinic are site settings (fields
of :class:`~speciosa.clinic.models.Site`): a blank field takes the value for the site's
``country`` from :data:`COUNTRIES` (shared/reference/care.md §3, each with its source); the
default country is the United States (911, 988). Nothing here goes into a notification: the
care team's e-mails stay free of clinical content (``speciosa.ops.notify``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["COUNTRIES", "URGENT_SYMPTOMS", "HelpNumbers", "numbers_for", "urgent_reasons"]


@dataclass(frozen=True)
class HelpNumbers:
    """Who to call. ``crisis`` may be a web address where a country has no number."""

    country: str
    emergency: str
    crisis: str
    crisis_name: str
    clinic_phone: str = ""
    clinic_hours: str = ""
    citations: tuple[str, ...] = ()


#: Emergency and crisis numbers by ISO 3166 country code (care.md §3). A number the
#: reference marks UNCONFIRMED (Befrienders Kuala Lumpur) is left out.
COUNTRIES: Mapping[str, HelpNumbers] = {
    "US": HelpNumbers("US", "911", "988", "988 Suicide & Crisis Lifeline (call or text, 24/7)",
                      citations=("us-911-emergency", "us-988-lifeline")),
    "GB": HelpNumbers("GB", "999", "116 123", "Samaritans (free, 24/7); NHS 111 if it is not "
                      "life-threatening", citations=("uk-999-111", "uk-samaritans-116123")),
    "TH": HelpNumbers("TH", "1669", "1323", "Department of Mental Health hotline (24/7)",
                      citations=("th-1669-ems", "th-1323-dmh")),
    "MY": HelpNumbers("MY", "999", "15555", "Talian HEAL (08:00-24:00)",
                      citations=("my-999-heal-15555",)),
    "ID": HelpNumbers("ID", "112", "healing119.id", "Ministry of Health mental health service "
                      "(119 for health emergencies)", citations=("id-112-119",)),
    "ES": HelpNumbers("ES", "112", "024", "Línea 024 (free, 24/7)", citations=("es-112-024",)),
    "MX": HelpNumbers("MX", "911", "800 911 2000", "Línea de la Vida (24 h)",
                      citations=("mx-911-linea-vida",)),
}


def numbers_for(site, language: str | None = None) -> HelpNumbers:
    """The numbers a patient of ``site`` is shown: the site's own fields, else its country's
    (else the United States'). A country's crisis line is named in ``language`` when that
    name is translated; a name the site wrote stays as written."""
    preset = COUNTRIES.get((getattr(site, "country", "") or "US").upper(), COUNTRIES["US"])
    own = (getattr(site, "crisis_line", "") or "").strip()
    return HelpNumbers(
        country=preset.country,
        emergency=(getattr(site, "emergency_number", "") or "").strip() or preset.emergency,
        crisis=own or preset.crisis,
        crisis_name=((getattr(site, "crisis_line_name", "") or "").strip()
                     or (crisis_name(preset, language) if not own
                         else shown_in(language).text(CRISIS_LINE))),
        clinic_phone=(getattr(site, "clinic_phone", "") or "").strip(),
        clinic_hours=(getattr(site, "clinic_hours", "") or "").strip(),
        citations=preset.citations,
    )


#: Side-effect checklist items that call for help at once, with what the patient is told
#: (plain words) and the evidence behind it.
URGENT_SYMPTOMS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "seizure": ("a seizure", ("post-2019", "afzal-2020")),
    "dark-urine-yellow-eyes": ("dark urine or yellow eyes or skin (a sign the liver may be "
                               "hurt)", ("schimmel-dart-2020",)),
    "oversedation-slow-breathing": (
        "being very sleepy or breathing slowly (signs of an overdose)",
        ("post-2019", "naloxone-reverses-opioid-overdose")),
}
#: What a positive PHQ-9 item 9 is called for the patient.
SELF_HARM = ("thoughts of harming yourself", ("kroenke-2001-phq9", "us-988-lifeline"))


def urgent_reasons(side_effects: Iterable[str] = (),
                   phq9_items: Mapping[str, int] | None = None) -> list[str]:
    """The codes (side-effect items, and ``"self-harm"`` for PHQ-9 item 9 above 0 when the
    patient completed a PHQ-9) that call for showing help at once, in a stable order."""
    codes = set(side_effects)
    out = [code for code in URGENT_SYMPTOMS if code in codes]
    if phq9_items and (phq9_items.get("self-harm") or 0) > 0:
        out.append("self-harm")
    return out


#: What a site's own crisis number is called when the site gave it no name (in the reader's
#: language, like the countries' lines: it is read inside a sentence of the patient's page).
CRISIS_LINE = "crisis line"

#: The content id of the words above in :mod:`speciosa.knowledge.translations`.
CONTENT = "alerts/urgent-help"


def strings() -> list[str]:
    """Every English string of the urgent help a translation must cover (the reasons and the
    crisis lines' names)."""
    return ([words for words, _cites in URGENT_SYMPTOMS.values()] + [SELF_HARM[0]]
            + [n.crisis_name for n in COUNTRIES.values()] + [CRISIS_LINE])


def shown_in(language: str | None):
    """How the urgent help's words are shown to a reader of ``language``."""
    from speciosa.knowledge import translations

    return translations.shown(CONTENT, language, strings())


def describe(codes: Iterable[str], language: str | None = None
             ) -> list[tuple[str, tuple[str, ...]]]:
    """(plain words, citations) for each reason code, the words in ``language`` when they are
    translated into it (the citations the same in every language)."""
    t = shown_in(language).text
    out = []
    for code in codes:
        if code == "self-harm":
            out.append((t(SELF_HARM[0]), SELF_HARM[1]))
        elif code in URGENT_SYMPTOMS:
            words, cites = URGENT_SYMPTOMS[code]
            out.append((t(words), cites))
    return out


def crisis_name(numbers: HelpNumbers, language: str | None = None) -> str:
    """The crisis line's name in ``language`` when it is a country's preset (a site's own
    name stays as the site wrote it)."""
    return shown_in(language).text(numbers.crisis_name)
