"""The signed copy of a consent as a PDF (the visit report's machinery: fpdf2, core fonts).

The copy holds the document's title, version and full text as signed, the typed name and
date, when and how it was signed (in Speciosa by the patient, or on paper and recorded by a
named clinician), and for a 42 CFR Part 2 consent the recipient, purpose and expiry date.
It is made once, when the signature is stored, and kept as bytes with their SHA-256
(:mod:`speciosa.clinic.consents`); its creation date is the signature's time, so the same
signature renders the same content.
"""

from __future__ import annotations

import datetime as dt

from fpdf.enums import XPos, YPos

from speciosa.clinic import consent_texts

from .pdf import _Report, _t


class _SignedCopy(_Report):
    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", "", 7)
        self.set_text_color(90)
        self.multi_cell(0, 3.2, _t(f"Signed copy kept by Speciosa. Page {self.page_no()}/{{nb}}"),
                        align="C")
        self.set_text_color(0)


def signed_copy(signature) -> bytes:
    """The PDF of ``signature`` (a :class:`~speciosa.clinic.models.ConsentSignature`, stored
    or about to be)."""
    doc, patient = signature.document, signature.patient
    pdf = _SignedCopy(orientation="P", unit="mm", format="A4")
    pdf.title_text = f"Speciosa consent - record {patient.pk} - {doc.site.name}"
    pdf.set_title(_t(f"Signed consent: record {patient.pk}"))
    pdf.set_author("Speciosa")
    pdf.set_creator("Speciosa (fpdf2)")
    pdf.set_creation_date(signature.signed_at)
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(14, 12, 14)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 7, _t(doc.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.para(f"{doc.site.name} - document {doc.pk}, version {doc.version} "
             f"({doc.get_kind_display()})", size=9)
    if doc.is_example:
        pdf.para(consent_texts.EXAMPLE_NOTICE, size=8, style="I")
    pdf.ln(2)
    for paragraph in [p for p in doc.body.split("\n\n") if p.strip()]:
        pdf.para(" ".join(paragraph.split()), size=10)
        pdf.ln(2)
    pdf.h2("Signed", keep=40)
    rows = [["Patient", f"{patient.name} (MRN {patient.identifier})"],
            ["Name typed", signature.typed_name],
            ["Date written", f"{signature.signed_on:%d %b %Y}"]]
    if doc.kind == "part2":
        rows += [["Recipient", signature.recipient], ["Purpose", signature.purpose],
                 ["Expires", f"{signature.expires_on:%d %b %Y}"]]
    how = signature.get_source_display()
    by = signature.recorded_by
    if by is not None and signature.source != "patient":
        how += f" by {by.get_full_name() or f'staff member {by.pk}'}"
    rows += [["How", how], ["Stored", f"{signature.signed_at.astimezone(dt.UTC):%d %b %Y %H:%M} UTC"]]
    pdf.table(["", ""], rows, widths=(40, 142))
    pdf.ln(2)
    pdf.para("You can revoke this consent at any time on your Consents page in Speciosa or in "
             "writing to your care team; this signed copy is kept either way.", size=8)
    return bytes(pdf.output())
