import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
application = get_wsgi_application()


def _freeze_loaded() -> None:
    """Load the URL configuration (and with it every view, form and template tag module) now,
    then move everything loaded so far out of the garbage collector's generations.

    Django, the apps, their models and the URL configuration live as long as the process; left
    in the collector's oldest generation, every full collection walks them again: about 190,000
    objects, 100-150 ms of CPU, once every 15-25 requests of the patient page on the load
    benchmark's clinic, which landed on exactly those requests' latency (docs/load.md, issue 18).
    Frozen, a full collection walks only what was made after start-up. Nothing frozen is ever
    freed; it is only what a worker keeps for its whole life anyway.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URL conf: the views and their modules
    gc.collect()  # free the start-up garbage first, so that it is not kept for ever
    gc.freeze()


_freeze_loaded()
