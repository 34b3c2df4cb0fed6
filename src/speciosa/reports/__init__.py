"""Charts and the PDF visit report (issue 6), and the exposure band on the patient page (issue 5).

- :mod:`.data` gathers one patient's chartable record in a few bulk queries;
- :mod:`.charts` turns it into Vega-Lite specs (plain dicts), the same specs for the web page
  (rendered by the vendored vega-embed in ``static/speciosa/charts.js``) and for the PDF
  (rendered by ``vl-convert-python``, no browser, no network);
- :mod:`.pdf` lays out the visit report with ``fpdf2``;
- :mod:`.views` serves ``charts.json`` to the clinician and the patient and ``report.pdf``.
"""
