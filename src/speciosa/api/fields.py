"""Strict JSON fields: they parse the JSON type the schema promises and nothing else.

DRF's own fields are lenient (``"5"`` is accepted as an integer, ``5`` as a string); an API
whose schema says ``integer`` must not quietly accept a string, or clients written against
the schema and clients written against the server drift apart. These fields only check the
JSON *type*; what a value means (a craving of 11, a negative dose) is checked by
:mod:`speciosa.clinic.services`, whose messages the API returns unchanged.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class StrictCharField(serializers.CharField):
    """A JSON string (numbers and booleans are refused, not turned into text)."""

    default_error_messages = {"invalid": "Send text (a JSON string)."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false``."""

    default_error_messages = {"invalid": "Send true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


@extend_schema_field(OpenApiTypes.INT)
class StrictIntegerField(serializers.Field):
    """A JSON number, passed on as given so that the service judges it.

    Whole numbers (``5`` or ``5.0``) are what the schema asks for; a fraction is passed on
    too, so that the scorer's own message ("Enter a whole number ...") is what the client
    reads.
    """

    default_error_messages = {"invalid": "Send a number (not text)."}

    def to_internal_value(self, data: Any) -> int | float:
        if not _is_number(data):
            self.fail("invalid")
        if isinstance(data, float) and data.is_integer():
            return int(data)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class StrictDecimalField(serializers.DecimalField):
    """A JSON number with at most the digits the database stores (as the web form).

    Text is refused; text with a decimal comma (``"1,5"``) gets the message the web form and
    the services give (:data:`speciosa.clinic.services.COMMA_DECIMAL`), saying to send a number
    with a point.
    """

    default_error_messages = {
        "invalid": "Send a number (not text), with a point for decimals, e.g. 1.5.",
        "comma": "Use a point for decimals: write 1.5, not 1,5 (and send it as a JSON number).",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("coerce_to_string", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any):
        if isinstance(data, str) and "," in data:
            self.fail("comma")
        if not _is_number(data):
            self.fail("invalid")
        return super().to_internal_value(data)
