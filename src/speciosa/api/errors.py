"""One shape for every error the API returns.

- ``400``: ``{"errors": {field: [message, ...]}, "code": "invalid"}``. The messages are
  the services' own (the same ones the web forms show). Nested fields are flattened with
  the services' spelling: ``doses-0-amount``, ``sows-nausea``; ``__all__`` holds messages
  about the request as a whole. A lab value beyond the plausibility limits answers with
  ``"code": "needs_confirmation"``: check it, then resend with ``confirmed_unusual: true``.
- ``409``: ``{"errors": {"Idempotency-Key": [message]}, "code": "key_reused"}``: the key
  was used before for a different request (endpoint, kind of record, patient); nothing is
  stored and the earlier object is not returned.
- ``422``: ``{"errors": {"Idempotency-Key": [message]}, "code":
  "key_reused_with_different_body"}``: the key was used before with a different request
  body (SHA-256 of canonical JSON); nothing is stored and the earlier object is not returned.
- ``401``, ``403``, ``404``, ``405``, ``415``, ``429``: ``{"detail": message}``. A service's
  refusal (:class:`speciosa.clinic.writes.AccessDenied`, a Django ``PermissionDenied``) is a
  403 with its message.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from speciosa.clinic.services import NeedsConfirmation
from speciosa.clinic.writes import SubmissionBodyMismatch, SubmissionConflict


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"doses-0-amount": [...]}`` (the services' keys)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = NON_FIELD_ERRORS if key == api_settings.NON_FIELD_ERRORS_KEY else str(key)
            sub = f"{prefix}-{name}" if prefix else name
            for k, v in flatten(value, sub).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list) and detail and all(isinstance(x, str) for x in detail):
        out[prefix or NON_FIELD_ERRORS] = [str(x) for x in detail]
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            if value:
                for k, v in flatten(value, f"{prefix}-{i}" if prefix else str(i)).items():
                    out.setdefault(k, []).extend(v)
    elif detail not in (None, ""):
        out[prefix or NON_FIELD_ERRORS] = [str(detail)]
    return out


def validation_response(exc: DjangoValidationError) -> Response:
    """A service's ValidationError as a 400 with its messages unchanged."""
    if hasattr(exc, "error_dict"):
        errors = {key: [str(m) for m in messages] for key, messages in exc.message_dict.items()}
    else:
        errors = {NON_FIELD_ERRORS: [str(m) for m in exc.messages]}
    code = "needs_confirmation" if isinstance(exc, NeedsConfirmation) else "invalid"
    return Response({"errors": errors, "code": code}, status=status.HTTP_400_BAD_REQUEST)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn service and framework exceptions into the API's error shape."""
    if isinstance(exc, SubmissionBodyMismatch):
        return Response({"errors": {"Idempotency-Key": [SubmissionBodyMismatch.MESSAGE]},
                         "code": "key_reused_with_different_body"},
                        status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, SubmissionConflict):
        return Response({"errors": {"Idempotency-Key": [SubmissionConflict.MESSAGE]}, "code": "key_reused"},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        return validation_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):  # AccessDenied from the services included
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        errors = flatten(exc.detail)
        response = drf_exception_handler(exc, context)
        if response is not None:
            response.data = {"errors": errors, "code": "invalid"}
        return response
    return drf_exception_handler(exc, context)
