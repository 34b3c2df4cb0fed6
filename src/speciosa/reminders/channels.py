"""Sending one reminder on one channel. Each function raises on failure: :class:`Permanent`
when trying again cannot help (no address, a gone subscription, a refused number), anything
else (``ConnectionError``, ``TimeoutError``, an SMTP error) when it may pass."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from . import content, sms
from .models import Preference, PushDevice

log = logging.getLogger(__name__)

#: A push message waits this long at the push service for a phone that is off.
PUSH_TTL_S = 12 * 3600


class Permanent(Exception):
    """Trying again will not help (said in the delivery log; never content)."""


def send_email(patient, prefs: Preference) -> str:
    user = patient.user
    address = user.email if user is not None and user.is_active else ""
    if not address:
        raise Permanent("no e-mail address on the patient's login")
    subject, body = content.email()
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address]).send(fail_silently=False)
    return ""


def send_sms(patient, prefs: Preference) -> str:
    if not prefs.sms_number:
        raise Permanent("no mobile number")
    try:
        sms.backend().send(prefs.sms_number, content.sms())
    except sms.SmsError as exc:
        raise Permanent(f"the SMS provider refused it: {str(exc)[:120]}") from None
    return ""


def vapid_claims(endpoint: str) -> dict:
    """The VAPID claims for a push to ``endpoint``: the push service's origin (``aud``), an
    expiry 12 hours ahead (``exp``; at most 24 h is allowed) and the site's contact (``sub``)."""
    parts = urlsplit(endpoint)
    return {"aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int((timezone.now() + dt.timedelta(hours=12)).timestamp()),
            "sub": settings.SPECIOSA_VAPID_SUBJECT}


def send_push(patient, prefs: Preference) -> str:
    """Push to every device the patient subscribed; a device the push service says is gone
    (404, 410) is removed. Sent when at least one device accepted it."""
    import pywebpush
    import requests

    if not settings.SPECIOSA_VAPID_PRIVATE_KEY:
        raise Permanent("Web Push is not set up on this server (SPECIOSA_VAPID_PRIVATE_KEY)")
    devices = list(PushDevice.objects.filter(patient=patient))
    if not devices:
        raise Permanent("no device subscribed")
    payload = content.push()
    ok, gone, errors = 0, 0, []
    for device in devices:
        try:
            pywebpush.webpush(subscription_info=device.subscription(), data=payload,
                              vapid_private_key=settings.SPECIOSA_VAPID_PRIVATE_KEY,
                              vapid_claims=vapid_claims(device.endpoint), ttl=PUSH_TTL_S,
                              timeout=10)
        except pywebpush.WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                device.delete()
                gone += 1
            else:
                errors.append(f"push service answered {status or 'nothing'}")
            continue
        except requests.RequestException as exc:  # unreachable, timed out: may pass
            errors.append(f"push service not reached ({type(exc).__name__})")
            continue
        except Exception as exc:  # this device's keys or data (the library raised): the
            # others still count, or a device that accepted would get it again at each retry
            errors.append(f"push not sent to a device ({type(exc).__name__})")
            continue
        ok += 1
        PushDevice.objects.filter(pk=device.pk).update(last_used_at=timezone.now())
    detail = f"{ok} of {len(devices)} devices" + (f"; {gone} gone, removed" if gone else "")
    if ok:
        return detail if len(devices) > 1 else ""
    if errors:
        raise ConnectionError(f"{detail}: {errors[0]}")
    raise Permanent(detail)


SENDERS = {"push": send_push, "email": send_email, "sms": send_sms}
