"""What a reminder says, on every channel: one fixed sentence and a link to the patient's
home page. Nothing else, ever: no instrument, no result, no name, not the word kratom
(42 CFR Part 2; a phone's lock screen and a shared inbox are not private). The tests check
every channel's payload against the instrument, drug and result vocabulary."""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

#: The reminder, word for word (issue 16); sent in the patient's language (the caller runs
#: in it: speciosa.reminders.services.remind), translated as a whole (docs/translation.md).
TEXT = gettext_noop("You have something to complete in Speciosa.")
#: The e-mail's subject.
SUBJECT = gettext_noop("A reminder from Speciosa")
#: The e-mail's last lines.
EMAIL_FOOTER = gettext_noop("This e-mail is sent automatically; do not reply to it. You can "
                            "change or stop reminders in Speciosa under My reminders.")
#: Where every reminder leads (behind the login).
PATH = "/me/"
#: Push notifications replace one another (one on the lock screen, however many items).
PUSH_TAG = "speciosa-reminder"


def link() -> str:
    return f"{settings.SPECIOSA_BASE_URL}{PATH}"


def email() -> tuple[str, str]:
    """(subject, body) of the reminder e-mail."""
    return gettext(SUBJECT), f"{gettext(TEXT)}\n\n{link()}\n\n{gettext(EMAIL_FOOTER)}"


def sms() -> str:
    return f"{gettext(TEXT)} {link()}"


def push() -> str:
    """The Web Push payload (JSON; the service worker shows it, see push-sw.js)."""
    return json.dumps({"title": "Speciosa", "body": gettext(TEXT), "url": PATH, "tag": PUSH_TAG},
                      separators=(",", ":"), ensure_ascii=False)
