"""What the patient page shows of reminders (kept apart from the views so that
:mod:`speciosa.web.views` can use it): the preferences in words and the delivery log."""

from __future__ import annotations

from . import services


def patient_context(patient) -> dict:
    return services.summary(patient)
