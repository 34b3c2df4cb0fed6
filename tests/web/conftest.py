"""Builders the web page tests share: the POST data of each form, and an alert to act on.

Each ``tests/web/test_<page>.py`` covers one page (or one family of pages): the happy path,
another care team's patient or record, and the bad input with the message it gets.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from tests.conftest import form_token


def local_minute(days_ago: int = 0, hours_ago: int = 1) -> str:
    """A time in the past as a ``datetime-local`` field sends it (``YYYY-MM-DDTHH:MM``)."""
    t = timezone.localtime() - dt.timedelta(days=days_ago, hours=hours_ago)
    return t.strftime("%Y-%m-%dT%H:%M")


def diary_post(**over) -> dict:
    """The diary form with one 2 g dose at 00:01 and two blank dose rows; ``over`` replaces."""
    data = {"token": form_token(over.pop("token", "t-diary")), "doses-TOTAL_FORMS": "3",
            "doses-INITIAL_FORMS": "0", "doses-MIN_NUM_FORMS": "0", "doses-MAX_NUM_FORMS": "12",
            "doses-0-time": "00:01", "doses-0-amount": "2", "doses-0-unit": "g",
            "doses-1-unit": "g", "doses-2-unit": "g"}
    data.update(over)
    return data


def lab_post(**over) -> dict:
    """The lab form: a prolactin of 18 ng/mL collected yesterday; ``over`` replaces."""
    data = {"token": form_token(over.pop("token", "t-lab")), "lab": "prolactin", "collected_at": local_minute(1),
            "value": "18", "unit": "ng/mL"}
    data.update(over)
    return data


def instrument_post(instrument_id: str, token: str, **items: str) -> dict:
    """The assessment form of ``instrument_id`` with every item at its lowest allowed value;
    ``items`` (item id -> value) replace some of them."""
    from speciosa.knowledge import instruments

    inst = instruments.get_instrument(instrument_id)
    data = {"token": form_token(token)} | {f"item-{i.id}": str(i.allowed[0]) for i in inst.items}
    data.update({f"item-{k}": v for k, v in items.items()})
    return data


@pytest.fixture
def open_alert():
    """``open_alert(patient, message=..., rule=..., severity=...)``: an open alert on
    ``patient``'s record (a warning on a raised prolactin unless told otherwise)."""
    from speciosa.clinic.models import Alert

    def _make(patient, message: str = "Prolactin 41.7 ng/mL is above the reference range.",
              rule: str = "prolactin-raised", severity: str = "warning"):
        return Alert.objects.create(
            patient=patient, rule=rule, topic="prolactin", severity=severity,
            message=message, next_step="Repeat fasting prolactin.", citations=["kruegel-2019"],
            first_seen_at=timezone.now() - dt.timedelta(days=2))

    return _make
