"""Speciosa: supervised recovery when a patient uses kratom (Mitragyna speciosa).

Not a medical device: Speciosa supports a supervising clinician's decisions and never
recommends a kratom dose.
"""

__version__ = "0.1.0"
