"""Research: de-identified, consented cohort data and within-patient statistics.

- :mod:`speciosa.research.deid` - HIPAA Safe Harbor de-identification (keyed pseudonyms,
  per-patient date shifts, ages over 89 grouped) and the 42 CFR Part 2 notice.
- :mod:`speciosa.research.dataset` - the analysis-ready tables (doses, daily exposure,
  assessments, labs, side effects) and ``speciosa export research``.
- :mod:`speciosa.research.analysis` - mixed-effects models of exposure, prolactin, craving
  and withdrawal, with effect sizes, confidence intervals and a plain statement of limits.
"""
