"""The example consent documents every site starts with (version 1 of each kind).

They are **examples**, written in plain English, not legal advice: a site must have them
reviewed by its counsel before patients sign them (``ConsentDocument.is_example`` stays true,
and every page showing one says so, until an administrator saves a reviewed version).

The 42 CFR Part 2 consent covers the elements that section 2.31 lists for a written consent
(citation ``cfr42-2-31-consent``, from shared/reference/instruments.md section 9.2): the
patient's name; who may disclose (the site); a description of the information; the recipient
and the purpose (written by the patient when signing); the right to revoke in writing, how,
and that a revocation does not undo what was already disclosed relying on the consent; an
expiry date (written by the patient); the signature and date. Nothing here goes beyond those
references: what a particular state or program needs besides is for the site's counsel.

``{site}`` in a text is replaced by the site's name when the documents are made.
"""

from __future__ import annotations

#: Shown with every example document (and printed on its signed copy).
EXAMPLE_NOTICE = ("Example text provided with Speciosa. This site must have it reviewed by its "
                  "own legal counsel before patients sign it.")

#: Citations behind the Part 2 document (evidence registry).
PART2_CITATIONS = ("cfr42-2-31-consent", "cfr42-2-32-notice", "cfr42-part2-2024-rule")

CARE = ("Consent to supervised care and monitoring", """\
I agree to take part in supervised care at {site}. My care team will use Speciosa to keep my \
record: the diary I write about kratom and other substances, my medicines, questionnaires, \
laboratory results, notes and the decisions we make together.

My care team uses this record to look after me. Speciosa may show them alerts about my \
safety. Speciosa supports my clinicians; it is not a medical device and does not make \
decisions for me.

My record is protected by federal rules on the confidentiality of substance use treatment \
records (42 CFR Part 2). {site} will not give it to anyone outside my care team unless I \
agree in writing, or the law allows it without my consent.

I can stop this consent at any time, on my Consents page in Speciosa or by telling my care \
team in writing. Stopping it does not undo what was done while it was in force.""")

RESEARCH = ("Consent to research use of de-identified data", """\
I agree that {site} may let researchers use my data from Speciosa after it has been \
de-identified: my name, record number, contact details and calendar dates are removed, ages \
are grouped, and groups of people are made large enough that no one can be picked out.

Researchers never see my name or my record. They use the data to learn how people recover \
and how treatments work.

Saying no does not change my care. I can stop this consent at any time on my Consents page \
or by telling my care team in writing. From then on my data are left out of new research \
exports; data already given to researchers before I stopped cannot be taken back.""")

PART2 = ("Consent to disclose my substance use treatment record (42 CFR Part 2)", """\
I, the patient named below, allow {site} to disclose my record from Speciosa to the \
recipient named below, for the purpose written below, until the expiry date written below.

The information that may be disclosed: my Speciosa record, which shows that I am in \
treatment for substance use. It includes my diary of kratom and other substance use, my \
medicines, questionnaire scores, laboratory and urine drug test results, clinical notes, \
alerts and the decisions made with my care team.

The recipient may not disclose it further except as 42 CFR Part 2 allows; a notice saying so \
goes with every disclosure.

I can revoke this consent at any time, in writing: on my Consents page in Speciosa, or by \
writing to my care team. Revoking it stops any disclosure from then on; it does not undo a \
disclosure already made relying on this consent.

This consent ends on the expiry date written below, or earlier if I revoke it.

I do not have to sign this consent. My treatment does not depend on it.""")

DEFAULTS: dict[str, tuple[str, str]] = {"care": CARE, "research": RESEARCH, "part2": PART2}

#: Version 0 of each kind: consents recorded before Speciosa kept documents.
LEGACY = ("Consent recorded before Speciosa kept consent documents", """\
This consent was recorded in Speciosa by the care team before Speciosa kept consent \
documents. The text the patient agreed to is not held in Speciosa; the site's own records \
hold it. Ask the patient to read and sign the current version.""")

#: The 42 CFR 2.32 notice that goes with every consented disclosure (the pre-2024 long form;
#: the full 2024 text of Statement 1 is UNCONFIRMED, citation ``cfr42-2-32-notice``).
REDISCLOSURE_NOTICE = (
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
    "substance use disorder, except as provided at 42 CFR 2.12(c)(5) and 2.65.")
