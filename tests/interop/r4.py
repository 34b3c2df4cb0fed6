"""Parse a resource with fhirclient's FHIR R4 (4.0.1) models, strictly: an element R4 does
not define, a wrong type or a missing required element raises."""

from __future__ import annotations

import importlib


def parse_r4(resource: dict):
    """The fhirclient R4 model of ``resource`` (raises ``FHIRValidationError``)."""
    rtype = resource["resourceType"]
    module = importlib.import_module(f"fhirclient.models.{rtype.lower()}")
    model = getattr(module, rtype)(resource, strict=True)
    assert model.resource_type == rtype
    return model


def r4_version() -> str:
    """The FHIR version fhirclient's models were generated from (``4.0.1``)."""
    source = importlib.import_module("fhirclient.models.observation").__file__
    with open(source, encoding="utf-8") as fh:
        head = fh.read(300)
    return head.split("Generated from FHIR ", 1)[1].split("-", 1)[0]


