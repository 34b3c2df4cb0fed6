"""A JSON parser that refuses text no database or client can carry, and deep nesting.

JSON may encode NUL characters and unpaired surrogates (``"\\u0000"``, ``"\\ud800"``);
PostgreSQL cannot store the first and UTF-8 cannot encode the second. DRF's string fields
refuse them in values, but not in object keys (instrument items, SOWS answers), so the
whole document is checked once here.

Nesting is capped at :data:`MAX_DEPTH` levels (issue #11, item 12: 3,000 levels gave a 500
from Python's recursion limit on every endpoint): deeper documents are a 400 that says so.
No Speciosa request or FHIR resource comes near it (a FHIR Bundle entry is about 8 deep).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_BAD = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "Text may not contain NUL characters or unpaired surrogates."
MAX_DEPTH = 64
DEPTH_MESSAGE = (f"The JSON is nested too deeply: at most {MAX_DEPTH} levels of objects and "
                 "lists are accepted.")


def check(value: Any) -> None:
    """Raise :class:`ParseError` for bad text anywhere in ``value`` or nesting deeper than
    :data:`MAX_DEPTH` (iterative: no recursion however deep the document)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _BAD.search(item):
                raise ParseError(MESSAGE)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise ParseError(DEPTH_MESSAGE)
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth + 1))
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def loads(text: str | bytes) -> Any:
    """``json.loads`` with :func:`check`; a document too deep for Python's own parser is the
    same :class:`ParseError` (also used by the FHIR import)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ParseError(DEPTH_MESSAGE) from None
    check(data)
    return data


class SafeJSONParser(JSONParser):
    """``application/json`` only, with the checks above."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(DEPTH_MESSAGE) from None
        check(data)
        return data


class FHIRJSONParser(SafeJSONParser):
    """``application/fhir+json``, with the same checks."""

    media_type = "application/fhir+json"
