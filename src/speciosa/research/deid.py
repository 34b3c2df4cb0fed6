"""De-identification for research exports: HIPAA Safe Harbor, 45 CFR 164.514(b)(2).

What this module does, and why
------------------------------
- **Pseudonyms** (identifier R, "any other unique identifying number"): a patient is
  exported as ``P-`` plus 16 base32 characters of HMAC-SHA256(site key, "patient|<site
  name>|<MRN>"). The key is the site's research secret (``SPECIOSA_RESEARCH_KEY``); without
  it the pseudonym cannot be recomputed from an MRN, so it is a permitted re-identification
  code held only by the covered entity (164.514(c)). The same key gives the same pseudonym
  in every export (longitudinal linkage); a different key gives unrelated pseudonyms.
  Sites become ``S-`` codes the same way (a clinic's name is not exported).
- **Dates** (identifier C): every date and date-time of a patient is moved by that
  patient's own offset of -180..-1 or +1..+180 days, derived from the same keyed hash. One
  offset per patient keeps every interval within the patient (days between doses, labs,
  time in care) exactly; the offset is never 0, so no real date is exported. Times of day
  are kept, as local clock times without a time-zone offset (the offset would hint at the
  site's location).
- **Ages** (identifier C): age at entry into care in whole years; above 89 it is the
  category ``"90+"``. Birth dates and birth years are not exported.
- **Free text** (names, phone numbers and the rest can hide in it): clinical notes, the
  note on an assessment, product names, dose conversion notes and substance details are
  never exported. Products are reduced to a category taken from the dose unit; anything
  coded is exported only when it is one of the known codes (instruments, labs, results).
- Not stored by Speciosa and therefore not exported: addresses, ZIP codes, telephone and
  fax numbers, e-mail addresses, SSNs, health-plan, account, certificate, vehicle and
  device numbers, URLs, IP addresses, biometrics, photographs. The export tests scan every
  file for them anyway.

Every export carries the 42 CFR Part 2 redisclosure notice (section 2.32): in a ``NOTICE``
file, in the data dictionary and in the metadata of every Parquet file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass

#: Environment variable holding the site's research secret.
KEY_ENV_DEFAULT = "SPECIOSA_RESEARCH_KEY"
#: The shortest secret accepted (characters).
MIN_KEY_LENGTH = 16
#: Largest date shift in days (either direction).
MAX_SHIFT_DAYS = 180
#: Ages above this are exported as :data:`AGE_TOP_CATEGORY`.
MAX_EXPORTED_AGE = 89
AGE_TOP_CATEGORY = "90+"

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
    "This data set is de-identified under the HIPAA Safe Harbor method (45 CFR "
    "164.514(b)(2)); do not attempt to re-identify any person in it."
)


class ResearchKeyError(ValueError):
    """The research secret is missing or too short (a person can fix this)."""


def load_key(env_var: str = KEY_ENV_DEFAULT, environ: dict[str, str] | None = None) -> bytes:
    """Return the research secret from the environment variable ``env_var``.

    Raises
    ------
    ResearchKeyError
        If the variable is unset, empty or shorter than :data:`MIN_KEY_LENGTH` characters.
    """
    env = os.environ if environ is None else environ
    value = env.get(env_var, "")
    if not value:
        raise ResearchKeyError(
            f"the research secret is not set: put the site's research key (at least "
            f"{MIN_KEY_LENGTH} characters, kept secret, the same for every export) in the "
            f"environment variable {env_var}")
    if len(value) < MIN_KEY_LENGTH:
        raise ResearchKeyError(
            f"the research secret in {env_var} is {len(value)} characters long; use at least "
            f"{MIN_KEY_LENGTH}")
    return value.encode()


@dataclass(frozen=True)
class Deidentifier:
    """Keyed pseudonyms and date shifts for one export.

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

    def date_offset_days(self, site_name: str, identifier: str) -> int:
        """The patient's date shift: an integer in -180..-1 or +1..+180 (never 0)."""
        digest = self._digest("date-offset", site_name.strip(), identifier.strip().upper())
        n = int.from_bytes(digest[:8], "big") % (2 * MAX_SHIFT_DAYS)
        return n - MAX_SHIFT_DAYS if n < MAX_SHIFT_DAYS else n - MAX_SHIFT_DAYS + 1


def shift_date(day: dt.date, offset_days: int) -> dt.date:
    """``day`` moved by ``offset_days``."""
    return day + dt.timedelta(days=offset_days)


def shift_local(moment: dt.datetime, tz: dt.tzinfo, offset_days: int) -> dt.datetime:
    """``moment`` as a naive local date-time in ``tz``, its date moved by ``offset_days``.

    The local clock time is kept; the shift is done on the naive local value so a
    daylight-saving change between the real and the shifted date does not move it.
    """
    local = moment.astimezone(tz).replace(tzinfo=None)
    return local + dt.timedelta(days=offset_days)


def age_category(birth_date: dt.date, on: dt.date) -> str:
    """Whole years of age on ``on`` as text, or ``"90+"`` above 89 (Safe Harbor)."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return AGE_TOP_CATEGORY if years > MAX_EXPORTED_AGE else str(max(years, 0))
