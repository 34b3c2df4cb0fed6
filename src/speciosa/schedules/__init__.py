"""Schedules: what a patient completes and how often (issue 16).

- :mod:`speciosa.schedules.due` is the pure engine: plan items, their occurrences on the
  patient's local calendar, and for a moment what is due, overdue, done or missed, with the
  completion rate over a window. No Django, no I/O.
- :mod:`speciosa.schedules.models`: the site's plan templates (administrator-managed, with
  a shipped default set), a patient's plan (a versioned clinical record: a change is a new
  version that supersedes the last, audited) and a self-report draft (partial answers kept
  on the server until the patient submits; never an assessment).
- :mod:`speciosa.schedules.services`: assigning and changing a plan, saving a draft,
  submitting it (scored by the one scorer, stored through
  :func:`speciosa.clinic.services.record_assessment` with ``source`` patient, so it feeds
  the safety rules as a clinician-entered one does), and the reads the pages, the API and the
  reminder builder use: :func:`~speciosa.schedules.services.due_items` and
  :func:`~speciosa.schedules.services.completion_rates` (a fixed number of queries for any
  number of patients).

Due days are counted in the patient's time zone, which is their site's (the zone the diary
counts its days in: :class:`speciosa.web.middleware.SiteTimezoneMiddleware`).
"""
