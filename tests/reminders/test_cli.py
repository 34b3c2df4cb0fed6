"""``speciosa reminders send`` and ``speciosa reminders vapid-keys``."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from tests.reminders.conftest import at_ny, set_prefs, today_ny

from speciosa.cli import main
from speciosa.reminders import vapid

pytestmark = pytest.mark.django_db


def test_send_sends_the_due_reminders_once_and_says_so(patient, capsys):
    set_prefs(patient)
    at = at_ny(today_ny(), "18:30").isoformat()
    assert main(["reminders", "send", "--as-of", at, "--json"]) == 0
    # the last line is the command's (the log lines go to standard output too)
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"patients": 1, "sent": 2}
    assert main(["reminders", "send", "--as-of", at]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Reminders for 1 patients: nothing due."
    assert len(mail.outbox) == 1


def test_send_refuses_a_time_without_its_offset(capsys):
    assert main(["reminders", "send", "--as-of", "2026-12-01T18:00"]) == 2
    assert "give the time with its offset" in capsys.readouterr().err


def test_vapid_keys_prints_a_matching_pair(capsys):
    assert main(["reminders", "vapid-keys", "--json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    private, public = keys["SPECIOSA_VAPID_PRIVATE_KEY"], keys["SPECIOSA_VAPID_PUBLIC_KEY"]
    assert len(public) == 87 and public.startswith("B")  # 65-byte uncompressed P-256 point
    assert vapid.public_key_of(private) == public
