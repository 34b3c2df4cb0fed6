"""A JSON parser that refuses text no database or client can carry.

JSON may encode NUL characters and unpaired surrogates (``"\\u0000"``, ``"\\ud800"``);
PostgreSQL cannot store the first and UTF-8 cannot encode the second. DRF's string fields
refuse them in values, but not in object keys (instrument items, SOWS answers), so the
whole document is checked once here.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_BAD = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "Text may not contain NUL characters or unpaired surrogates."


def _check(value: Any) -> None:
    if isinstance(value, str):
        if _BAD.search(value):
            raise ParseError(MESSAGE)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, list):
        for item in value:
            _check(item)


class SafeJSONParser(JSONParser):
    """``application/json`` only, with the check above."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check(data)
        return data
