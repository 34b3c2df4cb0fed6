"""Pharmacology engine: kratom dose log -> estimated mitragynine and 7-OH exposure.

Pure numpy, no Django and no I/O. A model estimate for supervised care; it never suggests
a dose. See ``docs/pharmacology.md`` and the docstrings of :mod:`.model` (structure,
parameters and their derivation), :mod:`.doses` (unit conversions) and :mod:`.exposure`
(course, band, summary, taper preview).
"""

from speciosa.pharmacology.doses import (
    UNITS,
    Dose,
    DoseConversionError,
    MitragynineDose,
    convert_all,
    daily_mitragynine_mg,
    to_mitragynine,
)
from speciosa.pharmacology.exposure import (
    DailyExposure,
    ExposureSummary,
    PatientExposure,
    patient_exposure,
    taper_preview,
)
from speciosa.pharmacology.model import TYPICAL, VARIABILITY, Parameter, simulate

__all__ = [
    "TYPICAL",
    "UNITS",
    "VARIABILITY",
    "DailyExposure",
    "Dose",
    "DoseConversionError",
    "ExposureSummary",
    "MitragynineDose",
    "Parameter",
    "PatientExposure",
    "convert_all",
    "daily_mitragynine_mg",
    "patient_exposure",
    "simulate",
    "taper_preview",
    "to_mitragynine",
]
