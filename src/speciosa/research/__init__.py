"""Research: de-identified, consented cohort data and within-patient statistics.

- :mod:`speciosa.research.deid` - de-identification primitives (keyed pseudonyms, time as
  days in care, withheld recent days, implausible dates, age bands top-coded at 90) and the
  42 CFR Part 2 notice. A measured method, not HIPAA Safe Harbor (docs/research.md).
- :mod:`speciosa.research.anonymity` - k-anonymity of the patients table: measured, and
  reached by generalising and suppressing.
- :mod:`speciosa.research.dataset` - the analysis-ready tables (doses, daily exposure,
  assessments, labs, side effects) and ``speciosa export research``.
- :mod:`speciosa.research.analysis` - mixed-effects models of exposure, prolactin, craving
  and withdrawal, with effect sizes, confidence intervals and a plain statement of limits.
"""
