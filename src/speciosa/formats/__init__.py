"""Speciosa's own input formats for the languages of its pages (settings.FORMAT_MODULE_PATH).

A form's date, time and date-time boxes are the browser's own (``type="date"``, ``"time"``,
``"datetime-local"``): they send and take ISO 8601 only ("2026-12-02", "13:47",
"2026-12-02 13:47"), whatever the page's language, and show it in the phone's own way. Django
writes a box's value in the first of the active language's *_INPUT_FORMATS, which for Spanish
and Thai is "02/12/2026": a browser's date box takes that for no date at all, so a date the
page filled in (today, a record's date being corrected) was shown empty, and sent empty. ISO
comes first here; the language's own formats are still read after it. Only the input formats
are set: dates are shown in each language's own way (Django's), years always Gregorian.
"""
