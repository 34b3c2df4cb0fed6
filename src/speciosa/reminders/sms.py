"""SMS backends: one class with one method, chosen by ``SPECIOSA_SMS_BACKEND`` (a dotted path).

A backend is a class whose instances have ``send(to, body)``: ``to`` is an E.164 number
(``+15551234567``), ``body`` the text (:func:`speciosa.reminders.content.sms`). It returns
when the provider accepted the message, raises :class:`SmsError` when it refused it for good
(a bad number: the delivery is logged failed and not tried again) and raises ``ConnectionError``
or ``TimeoutError`` when the provider could not be reached (the delivery is logged failed and
tried again at the next run, up to three attempts). Shipped:

- :class:`ConsoleBackend` (the default): prints the message on standard output;
- :class:`FileBackend`: appends one JSON line per message to ``SPECIOSA_SMS_FILE_PATH``.

Plugging a provider is a class like :class:`ConsoleBackend` that calls the provider's API
(docs/reminders.md has an example).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

__all__ = ["ConsoleBackend", "FileBackend", "SmsBackend", "SmsError", "backend"]


class SmsError(Exception):
    """The provider refused the message for good (not worth trying again)."""


class SmsBackend(Protocol):
    def send(self, to: str, body: str) -> None: ...


class ConsoleBackend:
    """Prints each SMS (development, the demo)."""

    def send(self, to: str, body: str) -> None:
        sys.stdout.write(f"SMS to {to}: {body}\n")
        sys.stdout.flush()


_lock = threading.Lock()


class FileBackend:
    """Appends ``{"at", "to", "body"}`` as one JSON line per SMS to ``SPECIOSA_SMS_FILE_PATH``
    (tests, a staging site)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or settings.SPECIOSA_SMS_FILE_PATH
        if not self.path:
            raise SmsError("SPECIOSA_SMS_FILE_PATH is not set (the file SMS backend writes there)")

    def send(self, to: str, body: str) -> None:
        line = json.dumps({"at": timezone.now().isoformat(), "to": to, "body": body}) + "\n"
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with _lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)


def backend() -> SmsBackend:
    """An instance of the backend ``SPECIOSA_SMS_BACKEND`` names."""
    return import_string(settings.SPECIOSA_SMS_BACKEND)()
