"""Drug classes the safety rules recognise by name.

Medication and substance names are matched word by word, case-insensitively, against
the generic names below (``"Oxycodone 5 mg tablets"`` matches ``oxycodone``). A class
name itself (``"benzodiazepine"``, ``"opioid"``) also matches, for substances reported
by class. Brand names are not listed: the clinic records generic names.

References
----------
.. [1] pharmacology.md §8.5: other opioids, benzodiazepines and other CNS depressants, and
   alcohol add respiratory and CNS depression to kratom; CYP3A substrates with a narrow
   margin (midazolam, fentanyl, oxycodone) are named there as general pharmacology.
.. [2] US FDA. Drug Development and Drug Interactions: Table of Substrates, Inhibitors and
   Inducers (sensitive index substrates of CYP3A; substrates with a narrow therapeutic
   range) -- evidence id ``fda-ddi-table``.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "ALCOHOL",
    "BENZODIAZEPINES",
    "CYP3A_NARROW_MARGIN",
    "CYP3A_SENSITIVE",
    "GABAPENTINOIDS",
    "OPIOIDS",
    "SEDATIVE_CLASSES",
    "SEDATIVE_HYPNOTICS",
    "classes_of",
    "matching",
    "words",
]

OPIOIDS = frozenset(
    {
        "opioid", "opioids", "opiate", "opiates", "opium",
        "alfentanil", "buprenorphine", "butorphanol", "carfentanil", "codeine",
        "diamorphine", "dihydrocodeine", "fentanyl", "heroin", "hydrocodone",
        "hydromorphone", "levorphanol", "meperidine", "methadone", "morphine",
        "nalbuphine", "o-desmethyltramadol", "oxycodone", "oxymorphone", "pentazocine",
        "pethidine", "remifentanil", "sufentanil", "tapentadol", "tramadol",
    }
)  # fmt: skip

BENZODIAZEPINES = frozenset(
    {
        "benzodiazepine", "benzodiazepines", "benzo", "benzos",
        "alprazolam", "bromazepam", "chlordiazepoxide", "clobazam", "clonazepam",
        "clorazepate", "diazepam", "estazolam", "etizolam", "flualprazolam",
        "flubromazolam", "flunitrazepam", "flurazepam", "lorazepam", "lormetazepam",
        "midazolam", "nitrazepam", "oxazepam", "remimazolam", "temazepam", "triazolam",
    }
)  # fmt: skip

#: Other CNS depressants named as sedative-hypnotics (z-drugs, barbiturates).
SEDATIVE_HYPNOTICS = frozenset(
    {
        "eszopiclone", "zaleplon", "zolpidem", "zopiclone",
        "barbiturate", "barbiturates", "butalbital", "phenobarbital", "secobarbital",
    }
)  # fmt: skip

GABAPENTINOIDS = frozenset({"gabapentinoid", "gabapentinoids", "gabapentin", "pregabalin",
                            "mirogabalin"})

ALCOHOL = frozenset({"alcohol", "ethanol", "beer", "wine", "spirits", "liquor"})

#: Class label -> names, in the order findings list them.
SEDATIVE_CLASSES: dict[str, frozenset[str]] = {
    "opioid": OPIOIDS,
    "benzodiazepine": BENZODIAZEPINES,
    "gabapentinoid": GABAPENTINOIDS,
    "other sedative-hypnotic": SEDATIVE_HYPNOTICS,
    "alcohol": ALCOHOL,
}

#: CYP3A substrates with a narrow margin between effective and toxic exposure
#: (pharmacology.md §8.5 names midazolam, fentanyl and oxycodone; FDA table).
CYP3A_NARROW_MARGIN = frozenset(
    {
        "alfentanil", "ciclosporin", "cyclosporine", "dihydroergotamine", "ergotamine",
        "everolimus", "fentanyl", "midazolam", "oxycodone", "pimozide", "quinidine",
        "sirolimus", "tacrolimus", "triazolam",
    }
)  # fmt: skip

#: Other sensitive CYP3A substrates (FDA table of sensitive index substrates).
CYP3A_SENSITIVE = frozenset(
    {
        "avanafil", "budesonide", "buspirone", "conivaptan", "darifenacin", "darunavir",
        "dasatinib", "dronedarone", "ebastine", "eletriptan", "eplerenone", "felodipine",
        "ibrutinib", "indinavir", "lomitapide", "lovastatin", "lurasidone", "maraviroc",
        "naloxegol", "nisoldipine", "quetiapine", "saquinavir", "sildenafil", "simvastatin",
        "ticagrelor", "tipranavir", "tolvaptan", "vardenafil",
    }
)  # fmt: skip

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@functools.lru_cache(maxsize=8192)
def words(name: str) -> frozenset[str]:
    """The lower-case words of a medication or substance name (hyphenated words kept)."""
    lowered = name.lower()
    found = set(_WORD.findall(lowered))
    for word in list(found):
        if "-" in word:
            found.update(word.split("-"))
    return frozenset(found)


def classes_of(name: str, classes: dict[str, frozenset[str]]) -> list[str]:
    """The labels of ``classes`` whose names occur as a word of ``name``."""
    w = words(name)
    return [label for label, members in classes.items() if not w.isdisjoint(members)]


def matching(name: str, members: frozenset[str]) -> str | None:
    """The alphabetically first member of ``members`` that is a word of ``name``, or None."""
    found = words(name) & members
    return min(found) if found else None
