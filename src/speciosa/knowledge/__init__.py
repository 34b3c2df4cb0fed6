"""Clinical knowledge core: facts as data plus pure functions, no Django and no I/O.

Modules
-------
evidence
    Evidence registry: citations and claims with verdicts (``data/evidence/*.toml``).
labs
    Lab catalogue: LOINC, UCUM units, exact conversions, reference ranges, plausibility.
prolactin
    Prolactin interpretation with cited considerations.
instruments
    Clinical instruments as data and one scorer.
"""
