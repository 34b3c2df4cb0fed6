"""The signed copy of a consent as a PDF (the visit report's machinery: fpdf2, Noto Sans
and Noto Sans Thai embedded, so a consent written in Spanish or Thai prints as written).

The copy holds the document's title, version and full text as signed, the typed name and
date, when and how it was signed (in Speciosa by the patient, or on paper and recorded by a
named clinician), and for a 42 CFR Part 2 consent the recipient, purpose and expiry date.
It is made once, when the signature is stored, and kept as bytes with their SHA-256
(:mod:`speciosa.clinic.consents`); its creation date is the signature's time, so the same
signature renders the same content. Its labels are in the language active when it is made
(the patient's, when they sign; the clinician's, for a paper consent they record).
"""

from __future__ import annotations

import datetime as dt

from django.utils import translation
from django.utils.translation import gettext
from fpdf.enums import XPos, YPos

from speciosa.clinic import consent_texts

from .pdf import FONT, _day, _Report, _t


class _SignedCopy(_Report):
    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT, "", 7)
        self.set_text_color(90)
        self.multi_cell(0, 3.2, _t(gettext("Signed copy kept by Speciosa. Page %(page)s/%(pages)s")
                                   % {"page": self.page_no(), "pages": "{nb}"}), align="C")
        self.set_text_color(0)


def signed_copy(signature) -> bytes:
    """The PDF of ``signature`` (a :class:`~speciosa.clinic.models.ConsentSignature`, stored
    or about to be)."""
    doc, patient = signature.document, signature.patient
    pdf = _SignedCopy(orientation="P", unit="mm", format="A4")
    pdf.title_text = gettext("Speciosa consent - record %(record)s - %(site)s") % {
        "record": patient.pk, "site": doc.site.name}
    pdf.set_title(_t(gettext("Signed consent: record %(record)s") % {"record": patient.pk}))
    pdf.set_lang(translation.get_language() or "en")
    pdf.set_author("Speciosa")
    pdf.set_creator("Speciosa (fpdf2)")
    pdf.set_creation_date(signature.signed_at)
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(14, 12, 14)
    pdf.add_page()
    pdf.set_font(FONT, "B", 15)
    pdf.multi_cell(0, 7, _t(doc.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.para(gettext("%(site)s - document %(document)s, version %(version)s (%(kind)s)") % {
        "site": doc.site.name, "document": doc.pk, "version": doc.version,
        "kind": doc.get_kind_display()}, size=9)
    if doc.is_example:
        pdf.para(consent_texts.EXAMPLE_NOTICE, size=8, style="I")
    pdf.ln(2)
    for paragraph in [p for p in doc.body.split("\n\n") if p.strip()]:
        pdf.para(" ".join(paragraph.split()), size=10)
        pdf.ln(2)
    pdf.h2(gettext("Signed"), keep=40)
    rows = [[gettext("Patient"), f"{patient.name} (MRN {patient.identifier})"],
            [gettext("Name typed"), signature.typed_name],
            [gettext("Date written"), _day(signature.signed_on)]]
    if doc.kind == "part2":
        rows += [[gettext("Recipient"), signature.recipient], [gettext("Purpose"), signature.purpose],
                 [gettext("Expires"), _day(signature.expires_on)]]
    how = signature.get_source_display()
    by = signature.recorded_by
    if by is not None and signature.source != "patient":
        how += " " + gettext("by %(name)s") % {
            "name": by.get_full_name() or gettext("staff member %(id)s") % {"id": by.pk}}
    rows += [[gettext("How"), how],
             [gettext("Stored"), f"{_day(signature.signed_at.astimezone(dt.UTC), 'd M Y H:i')} UTC"]]
    pdf.table(["", ""], rows, widths=(40, 142))
    pdf.ln(2)
    pdf.para(gettext("You can revoke this consent at any time on your Consents page in Speciosa "
                     "or in writing to your care team; this signed copy is kept either way."),
             size=8)
    return bytes(pdf.output())
