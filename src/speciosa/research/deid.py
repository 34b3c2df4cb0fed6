"""De-identification primitives for research exports: pseudonyms, time in care, age bands.

This is **not** the HIPAA Safe Harbor method (45 CFR 164.514(b)(2)): the export keeps
intervals in days between a patient's events, and Safe Harbor allows no element of a date
but the year. It is a statistical method in the spirit of expert determination
(164.514(b)(1)) whose risk is *measured* on every export (k-anonymity, see
:mod:`speciosa.research.anonymity`); only a qualified expert's documented review makes it an
expert determination. docs/research.md says what it protects against and what it does not.

What this module decides, and why
---------------------------------
- **Pseudonyms**: a patient is exported as ``P-`` plus 16 base32 characters of
  HMAC-SHA256(site key, "patient|<site name>|<MRN>"). Without the site's research secret
  (``SPECIOSA_RESEARCH_KEY``) the pseudonym cannot be recomputed from an MRN; the same key
  gives the same pseudonym in every export (longitudinal linkage). Sites become ``S-`` codes
  the same way.
- **Time**: no calendar date leaves the clinic. An event is exported as its *day in care*
  (local calendar day at the site minus the day of entry into care) and a coarse *time of
  day* (four 6-hour periods). The year of entry into care is the only date element, and it
  is a quasi-identifier that may be generalised away.
- **The end of the record**: an active patient's records run up to the day before the
  export, so the length of their record *is* their date of entry into care, counted back
  from the export date (the attack of issue #11). Each patient's most recent 0 to
  ``withheld_days`` days (a keyed number, the same in every export made with the same key
  and setting) are withheld, so the day of entry can only be placed within a window of
  ``withheld_days + 1`` days. The export day itself, incomplete, is never exported.
- **Implausible dates** (a diary day of 0001-01-01, a dose in 9999): an event outside
  [entry into care - :data:`PLAUSIBLE_DAYS_BEFORE_ENTRY` days, export day] is skipped and
  counted in the export's report, never allowed to stop the export of everyone else.
- **Ages**: whole years at entry into care, exported in bands (5, 10 or 20 years, or not at
  all, whichever the k-anonymity step chooses); top-coded at 90 (``"90+"``), as Safe Harbor
  asks for ages over 89. Birth dates and birth years are never exported.
- **Free text** (names, phone numbers and the rest can hide in it) is never exported.

Every export carries the 42 CFR Part 2 redisclosure notice (section 2.32).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import Enum

#: Environment variable holding the site's research secret.
KEY_ENV_DEFAULT = "SPECIOSA_RESEARCH_KEY"
#: The shortest secret accepted (characters).
MIN_KEY_LENGTH = 16
#: Ages from this value up are exported as :data:`AGE_TOP_CATEGORY` (Safe Harbor: over 89).
AGE_TOP_CODE = 90
AGE_TOP_CATEGORY = "90+"
#: The value of a quasi-identifier generalised away entirely.
GENERALISED = "*"
#: Events this many days before entry into care are still plausible (a dose diary started
#: before the first visit); anything earlier is treated as a wrong date.
PLAUSIBLE_DAYS_BEFORE_ENTRY = 365
#: The earliest plausible date of entry into care or of birth.
EARLIEST_PLAUSIBLE_DATE = dt.date(1900, 1, 1)
#: Oldest plausible age at entry into care (years).
MAX_PLAUSIBLE_AGE = 120
#: Time-of-day periods: (label, first local hour).
TIME_OF_DAY = (("night", 0), ("morning", 6), ("afternoon", 12), ("evening", 18))

#: The 42 CFR 2.32 notice (the pre-2024 long form; the full text of the 2024 revision of
#: Statement 1 is not yet confirmed, see shared/reference/instruments.md section 9.2).
PART2_NOTICE = (
    "42 CFR PART 2 NOTICE. This information has been disclosed to you from records protected "
    "by federal confidentiality rules (42 CFR part 2). The federal rules prohibit you from "
    "making any further disclosure of information in this record that identifies a patient "
    "as having or having had a substance use disorder either directly, by reference to "
    "publicly available information, or through verification of such identification by "
    "another person unless further disclosure is expressly permitted by the written consent "
    "of the individual whose information is being disclosed or as otherwise permitted by 42 "
    "CFR part 2. A general authorization for the release of medical or other information is "
    "NOT sufficient for this purpose (see 42 CFR 2.31). The federal rules restrict any use of "
    "the information to investigate or prosecute with regard to a crime any patient with a "
    "substance use disorder, except as provided at 42 CFR 2.12(c)(5) and 2.65. "
    "This data set has been de-identified by the measured method described in its "
    "deid_report.json (it is not a HIPAA Safe Harbor data set); do not attempt to "
    "re-identify any person in it or to link it with other data about the same people."
)


class ResearchKeyError(ValueError):
    """The research secret is missing or too short (a person can fix this)."""


def load_key(env_var: str = KEY_ENV_DEFAULT, environ: dict[str, str] | None = None,
             key_file: os.PathLike | str | None = None) -> bytes:
    """Return the research secret from the environment variable ``env_var``, or, when it is
    unset and ``key_file`` is given and exists, from that file (its text, stripped).

    Raises
    ------
    ResearchKeyError
        If neither holds a secret, or it is shorter than :data:`MIN_KEY_LENGTH` characters.
    """
    from pathlib import Path

    env = os.environ if environ is None else environ
    value = env.get(env_var, "")
    where = f"the environment variable {env_var}"
    if not value and key_file is not None and Path(key_file).is_file():
        value = Path(key_file).read_text(encoding="utf-8").strip()
        where = f"the file {key_file}"
    if not value:
        also = f" (or in the file {key_file})" if key_file is not None else ""
        raise ResearchKeyError(
            f"the research secret is not set: put the site's research key (at least "
            f"{MIN_KEY_LENGTH} characters, kept secret, the same for every export) in the "
            f"environment variable {env_var}{also}; 'speciosa demo' writes one for the demo")
    if len(value) < MIN_KEY_LENGTH:
        raise ResearchKeyError(
            f"the research secret in {where} is {len(value)} characters long; use at least "
            f"{MIN_KEY_LENGTH}")
    return value.encode()


def site_key() -> bytes:
    """The site's research secret: ``SPECIOSA_RESEARCH_KEY``, else the file
    ``settings.RESEARCH_KEY_FILE`` (Django must be set up)."""
    from django.conf import settings

    return load_key(KEY_ENV_DEFAULT, key_file=settings.RESEARCH_KEY_FILE)


def write_demo_key(path: os.PathLike | str) -> bool:
    """Write a random research secret to ``path`` (mode 0600) unless it exists; True if written."""
    import secrets
    from pathlib import Path

    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return True


@dataclass(frozen=True)
class Options:
    """The site's de-identification settings (``SPECIOSA_RESEARCH_*``, docs/configuration.md).

    Parameters
    ----------
    k : int
        Every exported patient shares their quasi-identifiers with at least ``k - 1`` others.
    max_suppressed : float
        The largest share of patients (0..1) the k-anonymity step may leave out rather than
        generalise further.
    withheld_days : int
        Each patient's most recent 0..``withheld_days`` days are withheld (keyed per patient).
    """

    k: int = 5
    max_suppressed: float = 0.1
    withheld_days: int = 28

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"SPECIOSA_RESEARCH_K must be a whole number of at least 1, not "
                             f"{self.k!r}")
        if not 0.0 <= self.max_suppressed <= 1.0:
            raise ValueError(f"SPECIOSA_RESEARCH_MAX_SUPPRESSED must lie between 0 and 1 (a "
                             f"share of the patients), not {self.max_suppressed!r}")
        if not isinstance(self.withheld_days, int) or not 0 <= self.withheld_days <= 366:
            raise ValueError(f"SPECIOSA_RESEARCH_WITHHELD_DAYS must be a whole number of days "
                             f"from 0 to 366, not {self.withheld_days!r}")


@dataclass(frozen=True)
class Deidentifier:
    """Keyed pseudonyms and keyed per-patient numbers for one export.

    Parameters
    ----------
    key : bytes
        The site's research secret (see :func:`load_key`).
    """

    key: bytes

    def _digest(self, purpose: str, *parts: str) -> bytes:
        message = "|".join((purpose, *parts)).encode()
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def patient_pseudonym(self, site_name: str, identifier: str) -> str:
        """``P-`` and 16 base32 characters (80 bits) of the keyed hash of site and MRN."""
        digest = self._digest("patient", site_name.strip(), identifier.strip().upper())
        return "P-" + base64.b32encode(digest[:10]).decode().lower()

    def site_pseudonym(self, site_name: str) -> str:
        """``S-`` and 8 base32 characters of the keyed hash of the site's name."""
        return "S-" + base64.b32encode(self._digest("site", site_name.strip())[:5]).decode().lower()

    def withheld_days(self, site_name: str, identifier: str, max_days: int) -> int:
        """How many of the patient's most recent days are withheld: 0..``max_days``.

        Keyed, so the researcher cannot compute it, and fixed for a patient, so two exports
        made on different dates do not narrow the window the day of entry lies in.
        """
        digest = self._digest("withheld-days", site_name.strip(), identifier.strip().upper())
        return int.from_bytes(digest[:8], "big") % (max_days + 1)


class Placement(Enum):
    """Where an event's day falls on a patient's exported time axis."""

    EXPORTED = "exported"
    IMPLAUSIBLE = "implausible date"
    WITHHELD = "withheld recent day"


@dataclass(frozen=True)
class Timeline:
    """One patient's exported time axis.

    Parameters
    ----------
    entry : datetime.date
        Real day of entry into care (never exported).
    export_day : datetime.date
        The export's date at the patient's site.
    withheld_days : int
        The patient's keyed number of withheld recent days.
    """

    entry: dt.date
    export_day: dt.date
    withheld_days: int

    @property
    def last_exported_day(self) -> dt.date:
        """The last local day exported: the day before the export, less the withheld days."""
        return self.export_day - dt.timedelta(days=1 + self.withheld_days)

    @property
    def first_plausible_day(self) -> dt.date:
        return self.entry - dt.timedelta(days=PLAUSIBLE_DAYS_BEFORE_ENTRY)

    def day_in_care(self, day: dt.date) -> int:
        """Days from entry into care to ``day`` (0 on the day of entry; negative before)."""
        return (day - self.entry).days

    def place(self, day: dt.date | None) -> Placement:
        """Whether an event on local ``day`` is exported, implausible or withheld.

        ``None`` (a moment that has no local date, such as 0001-01-01 00:30 UTC in New York)
        is implausible.
        """
        if day is None or day < self.first_plausible_day or day > self.export_day:
            return Placement.IMPLAUSIBLE
        if day > self.last_exported_day:
            return Placement.WITHHELD
        return Placement.EXPORTED


def plausible_patient(birth_date: dt.date, entry: dt.date, export_day: dt.date) -> bool:
    """Whether a patient's entry into care and birth date can be right.

    Entry from 1900 to the export day; birth on or before entry, at most
    :data:`MAX_PLAUSIBLE_AGE` years before it. Such a patient is exported; any other is left
    out and counted (their time axis and age would be nonsense).
    """
    if not EARLIEST_PLAUSIBLE_DATE <= entry <= export_day:
        return False
    return birth_date <= entry and age_years(birth_date, entry) <= MAX_PLAUSIBLE_AGE


def local_time(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """``moment`` as local time in ``tz``; ``None`` if that falls outside the calendar
    (year 1 or 9999 near the edge), which :meth:`Timeline.place` treats as implausible."""
    try:
        return moment.astimezone(tz)
    except (OverflowError, ValueError):
        return None


def time_of_day(local: dt.datetime) -> str:
    """The 6-hour period of a local time: night (00-06), morning, afternoon, evening (18-24).

    Exact clock times are not exported: with them a dose at 03:12 or a draw at 07:41 is a
    fingerprint; a period keeps what matters for analysis (prolactin's daily rhythm, doses
    taken at night).
    """
    label = TIME_OF_DAY[0][0]
    for name, first_hour in TIME_OF_DAY:
        if local.hour >= first_hour:
            label = name
    return label


def age_years(birth_date: dt.date, on: dt.date) -> int:
    """Whole years of age on ``on`` (0 if ``on`` is before the birth date)."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return max(years, 0)


def age_band(years: int, width: int | None) -> str:
    """``years`` as a band of ``width`` years (``"30-39"``), ``"90+"`` from 90, or
    :data:`GENERALISED` when ``width`` is ``None``.

    Bands start at multiples of ``width``; the band below 90 ends at 89 (``"80-89"`` for
    20-year bands), so the top code never merges with a band.
    """
    if width is None:
        return GENERALISED
    if years >= AGE_TOP_CODE:
        return AGE_TOP_CATEGORY
    low = (years // width) * width
    return f"{low}-{min(low + width - 1, AGE_TOP_CODE - 1)}"
