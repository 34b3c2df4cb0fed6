"""Idempotency keys: a phone that retries a create does not store twice.

Every ``POST`` that creates something requires an ``Idempotency-Key`` header (any text of
1-255 printable characters; a UUID is a good choice). The key is scoped to the user and the
endpoint: it is hashed with the user id, the method and the path into the submission token
that :mod:`speciosa.clinic.services` already uses for the web forms' one-time tokens. So

- the same key sent again to the same endpoint returns the first result (``200`` with the
  object the first request created, and ``Idempotent-Replayed: true``) and stores nothing;
- the same request racing itself (two threads, two app servers) stores one record: the
  services' unique submission token decides, and both requests answer with that record;
- the same key used by another user, or on another endpoint, is a different submission;
- every submission is bound to its user, the API namespace, the endpoint, the kind of record
  and the patient (:func:`speciosa.clinic.writes.once`): a replay that differs in any of
  them is refused with ``409`` (``"code": "key_reused"``) and never answers with the stored
  object;
- and to its body: the SHA-256 of the request body as canonical JSON (keys sorted, no
  spaces) is stored with the submission, and the same key with a different body is refused
  with ``422`` (``"code": "key_reused_with_different_body"``), never answered with the first
  request's object. The web forms' tokens live in their own namespace (signed by the server); a key
  that names a namespace (``web:...``, ``api:...``, ``app:...``) or is a web form token is
  refused with ``400``.

A request that failed validation stored nothing, so its key may be sent again with
corrected data.
"""

from __future__ import annotations

import hashlib
import json

from django.core import signing
from django.db import models
from rest_framework import exceptions

from speciosa.clinic import writes

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
MISSING = (f"Send an {HEADER} header (for example a new UUID) with every create, so that a "
           "retried request does not store twice.")
TOO_LONG = f"The {HEADER} header may be at most {MAX_LENGTH} characters."


OTHER_NAMESPACE = (f"This {HEADER} belongs to another kind of submission (a web form's token "
                   "or a namespaced key); send a new random value such as a UUID.")


def _is_foreign(key: str) -> bool:
    """A key spelled like a stored token of a namespace, or a web form's signed token."""
    from speciosa.web.forms import TOKEN_SIGNER

    if key.split(":", 1)[0].lower() in writes.NAMESPACES:
        return True
    try:
        TOKEN_SIGNER.unsign(key)
    except signing.BadSignature:
        return False
    return True


def token_for(request) -> writes.SubmissionKey:
    """The submission key for this request's ``Idempotency-Key`` (400 if missing or foreign):
    the key hashed with the user, method and path, in the API namespace, bound to the path."""
    key = (request.headers.get(HEADER) or "").strip()
    if not key:
        raise exceptions.ValidationError({HEADER: [MISSING]})
    if len(key) > MAX_LENGTH:
        raise exceptions.ValidationError({HEADER: [TOO_LONG]})
    if _is_foreign(key):
        raise exceptions.ValidationError({HEADER: [OTHER_NAMESPACE]})
    raw = f"{request.user.pk}\n{request.method}\n{request.path}\n{key}".encode("utf-8", "surrogatepass")
    return writes.SubmissionKey("api", hashlib.sha256(raw).hexdigest()[:60], request.path,
                                fingerprint=body_fingerprint(request.data))


def body_fingerprint(data) -> str:
    """SHA-256 (hex) of a request body as canonical JSON: keys sorted, no spaces, UTF-8; the
    same body sent again (keys in another order, other spacing) has the same fingerprint."""
    if hasattr(data, "lists"):  # a QueryDict (form-encoded body)
        data = {k: v for k, v in data.lists()}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def replayed(request, token: writes.SubmissionKey, model: type[models.Model], *, kind: str,
             patient=None):
    """The object a previous request with this token created, or None; a replay that does
    not match what the first request was bound to raises
    :class:`~speciosa.clinic.writes.SubmissionConflict` (409)."""
    return writes.replayed(request.user, token, model=model, kind=kind, patient=patient)
