"""Idempotency keys: a phone that retries a create does not store twice.

Every ``POST`` that creates something requires an ``Idempotency-Key`` header (any text of
1-255 printable characters; a UUID is a good choice). The key is scoped to the user and the
endpoint: it is hashed with the user id, the method and the path into the submission token
that :mod:`speciosa.clinic.services` already uses for the web forms' one-time tokens. So

- the same key sent again to the same endpoint returns the first result (``200`` with the
  object the first request created, and ``Idempotent-Replayed: true``) and stores nothing;
- the same request racing itself (two threads, two app servers) stores one record: the
  services' unique submission token decides, and both requests answer with that record;
- the same key used by another user, or on another endpoint, is a different submission.

A request that failed validation stored nothing, so its key may be sent again with
corrected data.
"""

from __future__ import annotations

import hashlib

from django.db import models
from rest_framework import exceptions

from speciosa.clinic import writes

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
MISSING = (f"Send an {HEADER} header (for example a new UUID) with every create, so that a "
           "retried request does not store twice.")
TOO_LONG = f"The {HEADER} header may be at most {MAX_LENGTH} characters."


def token_for(request) -> str:
    """The submission token for this request's ``Idempotency-Key`` (400 if missing)."""
    key = (request.headers.get(HEADER) or "").strip()
    if not key:
        raise exceptions.ValidationError({HEADER: [MISSING]})
    if len(key) > MAX_LENGTH:
        raise exceptions.ValidationError({HEADER: [TOO_LONG]})
    raw = f"{request.user.pk}\n{request.method}\n{request.path}\n{key}".encode("utf-8", "surrogatepass")
    return "api:" + hashlib.sha256(raw).hexdigest()[:60]


def replayed(request, token: str, model: type[models.Model]):
    """The object a previous request with this token created, or None."""
    return writes.replayed(request.user, token, model=model)
