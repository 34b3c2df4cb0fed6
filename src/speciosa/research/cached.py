"""The research page's cohort analysis, computed off the request and cached until the data change.

The analysis (mixed-effects models over every consented patient) takes seconds; the page must
not. It is stored under a key made of the data's fingerprint (:func:`fingerprint`: it changes
whenever a patient, consent, diary day, dose, assessment or lab is added, corrected or
retracted, and every day), so any write invalidates it. It is computed

- by the task :func:`speciosa.tasks.research_analysis` on the task queue (with a broker: the
  worker fills the shared cache), queued after every clinical write (:func:`schedule`) and when
  the page finds no analysis of the current data;
- without a broker, in a background thread of the serving process when
  ``settings.RESEARCH_ANALYSIS_BACKGROUND`` is on (``speciosa serve`` turns it on; it also
  warms the cache at start), else in the request itself (the tests, a bare WSGI setup).

Meanwhile the page shows the latest analysis computed, said to be from before the latest
changes, or, the very first time, that the analysis is being computed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max

log = logging.getLogger(__name__)

#: Seconds an analysis is kept (it is keyed by the data's fingerprint, so never stale).
CACHE_SECONDS = 24 * 3600
#: The latest analysis computed, whatever the data since: shown while the new one is made.
LATEST = "research-analysis:latest"
#: Seconds a computation in progress keeps others from starting the same one.
LOCK_SECONDS = 300

_thread_lock = threading.Lock()


def fingerprint() -> str:
    """Changes whenever a patient, consent, diary day, dose, assessment or lab is added,
    corrected (a correction is a new row) or retracted, and every day (the withheld recent
    days are counted back from today)."""
    from django.utils import timezone

    from speciosa.clinic.models import Assessment, Consent, DiaryDay, Dose, LabResult, Patient

    parts = [timezone.now().date().isoformat()]
    for model in (Patient, Consent, DiaryDay, Dose, Assessment, LabResult):
        agg = model.objects.aggregate(n=Count("pk"), last=Max("pk"))
        parts.append(f"{agg['n']}:{agg['last']}")
    parts += [str(model.objects.filter(retracted=True).count())  # a retraction adds no row
              for model in (Dose, Assessment, LabResult)]
    return "research-analysis:" + "|".join(parts)


def compute(key: str | None = None) -> tuple[Any, dict[str, int], dict]:
    """Run the analysis now and cache it under the data's fingerprint (and as the latest)."""
    from . import analysis

    key = key or fingerprint()
    ds, result = analysis.run_cohort_analysis()
    hit = (result, dict(ds.counts), ds.report)
    cache.set(key, hit, CACHE_SECONDS)
    cache.set(LATEST, (key, hit), CACHE_SECONDS)
    cache.delete(f"{key}:computing")
    return hit


def _background() -> bool:
    return bool(getattr(settings, "RESEARCH_ANALYSIS_BACKGROUND", False))


def _broker() -> bool:
    return not settings.CELERY_TASK_ALWAYS_EAGER


def _thread(key: str) -> None:
    from django.db import connection

    try:
        with _thread_lock:
            if cache.get(key) is None:
                compute(key)
    except Exception:  # noqa: BLE001 - logged; the page asks again next time
        log.exception("research analysis failed")
        cache.delete(f"{key}:computing")
    finally:
        if threading.current_thread().name == "research-analysis":  # its own connection
            connection.close()


def schedule(key: str | None = None) -> bool:
    """Have the analysis of the current data computed off the request, once (True when it
    was queued or started now; False when it already is, or there is no way off the request)."""
    if not (_broker() or _background()):
        return False
    key = key or fingerprint()
    if cache.get(key) is not None or not cache.add(f"{key}:computing", 1, LOCK_SECONDS):
        return False
    if _broker():
        from speciosa import tasks

        tasks.research_analysis.delay()
    else:
        threading.Thread(target=_thread, args=(key,), name="research-analysis", daemon=True).start()
    return True


def get() -> tuple[tuple[Any, dict[str, int], dict] | None, bool]:
    """``(analysis, current)``: the analysis of the current data (current True), else the
    latest one computed (current False, the new one scheduled), else ``(None, False)``;
    computed in the request when it cannot be computed elsewhere."""
    key = fingerprint()
    hit = cache.get(key)
    if hit is not None:
        return hit, True
    if not schedule(key) and not (_broker() or _background()):
        return compute(key), True
    latest = cache.get(LATEST)
    return (latest[1] if latest else None), False


def refresh() -> bool:
    """The task's body: compute the analysis of the current data unless it is cached."""
    key = fingerprint()
    if cache.get(key) is not None:
        return False
    compute(key)
    return True


def after_write() -> None:
    """The clinical write hook's part: recompute the analysis for the changed data, off the
    request (with a broker one task per burst of writes; nothing at all when there is no way
    off the request: the page then computes it when next opened)."""
    from django.db import transaction

    if _broker():
        def queue():
            if cache.add("research-analysis:queued", 1, 30):
                from speciosa import tasks

                tasks.research_analysis.delay()
        transaction.on_commit(queue)
    elif _background():
        transaction.on_commit(lambda: schedule())
